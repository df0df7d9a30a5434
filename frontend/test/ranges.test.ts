import { describe, expect, it } from "vitest";
import { historyRange, intervalFor, presetFor, presetView } from "../src/lib/ranges";
import { sessionOf } from "../src/lib/sessions";

describe("range presets", () => {
  it("a long preset picks the finest bar size that reaches it; a fine bar size shortens the preset", () => {
    expect(intervalFor("1Y", "1m")).toBe("1h");
    expect(intervalFor("1M", "1m")).toBe("5m");
    expect(intervalFor("5D", "1m")).toBe("1m");
    expect(presetFor("1m", "1Y")).toBe("5D");
    expect(presetFor("1d", "1D")).toBe("1D");
  });

  it("asks the server for at least the bar size's usual span, never more than it has", () => {
    expect(historyRange("1m", "1D")).toBe("1d");
    expect(historyRange("1m", "5D")).toBe("5d");
    expect(historyRange("1d", "1D")).toBe("1y");
    expect(historyRange("5m", "1D")).toBe("5d");
    expect(historyRange("1h", "1Y")).toBe("1y");
  });

  it("the view starts at the first bar inside the span back from the newest", () => {
    const day = 86400;
    const times = [0, day, 2 * day, 3 * day, 3 * day + 60];
    expect(presetView(times, "1D")).toEqual({ from: 2.5, to: 8 });
    expect(presetView([], "1D")).toBeNull();
    expect(presetView(times, "1Y")).toEqual({ from: 0, to: 8 });
  });
});

describe("sessions", () => {
  // 2026-11-30 (a Monday, EST: UTC-5).
  const at = (h: number, m: number) => Date.UTC(2026, 10, 30, h + 5, m) / 1000;
  it("XNYS: pre before 09:30 New York time, post from 16:00, regular between", () => {
    expect(sessionOf(at(4, 0), "XNYS")).toBe("pre");
    expect(sessionOf(at(9, 29), "XNYS")).toBe("pre");
    expect(sessionOf(at(9, 30), "XNYS")).toBe("regular");
    expect(sessionOf(at(15, 59), "XNYS")).toBe("regular");
    expect(sessionOf(at(16, 0), "XNYS")).toBe("post");
  });
  it("summer time moves the UTC hours, not the New York ones", () => {
    const july = Date.UTC(2026, 6, 1, 13, 30) / 1000; // 09:30 EDT
    expect(sessionOf(july, "XNYS")).toBe("regular");
    expect(sessionOf(july - 60, "XNYS")).toBe("pre");
  });
  it("one-session markets are not shaded", () => {
    expect(sessionOf(at(3, 0), "CRYPTO")).toBeNull();
    expect(sessionOf(at(3, 0), "SIM")).toBeNull();
  });
});
