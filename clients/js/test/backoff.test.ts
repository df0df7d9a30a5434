import { describe, expect, it } from "vitest";
import { backoffDelay, randomJitter } from "../src/backoff.js";

describe("backoffDelay", () => {
  it("is 2 s, 4 s, 8 s, then stays at 8 s, without jitter", () => {
    expect([1, 2, 3, 4, 10].map((a) => backoffDelay(a, 2000, () => 0))).toEqual([2000, 4000, 8000, 8000, 8000]);
  });
  it("adds the jitter, within 20% of the attempt's delay with the default", () => {
    expect(backoffDelay(2, 2000, () => 123)).toBe(4123);
    expect(backoffDelay(2, 2000, (_a, delay) => delay / 10)).toBe(4400);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, 2000, randomJitter);
      expect(d).toBeGreaterThanOrEqual(8000);
      expect(d).toBeLessThanOrEqual(9600);
    }
  });
});
