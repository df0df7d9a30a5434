import { describe, expect, it } from "vitest";
import { connectionView, isStale, type ConnectionInput } from "../src/lib/status";

const base: ConnectionInput = {
  state: "connected",
  attempt: 0,
  maxAttempts: 3,
  reconnectCount: 2,
  latencyMs: 12.4,
  realtimeEnabled: true,
  fallback: false,
  lastMessageAgeMs: 1500,
};

describe("connectionView", () => {
  it("maps every state to a colour, a state name and a sentence", () => {
    expect(connectionView(base)).toMatchObject({ color: "green", state: "connected" });
    expect(connectionView({ ...base, state: "connecting" })).toMatchObject({ color: "yellow", state: "connecting" });
    expect(connectionView({ ...base, state: "reconnecting", attempt: 2 })).toMatchObject({
      color: "yellow",
      state: "reconnecting",
      title: "Reconnecting (attempt 2 of 3)",
    });
    expect(connectionView({ ...base, state: "error", fallback: true })).toMatchObject({ color: "red", state: "polling" });
    expect(connectionView({ ...base, state: "closed", realtimeEnabled: false })).toMatchObject({ color: "red", state: "polling" });
    expect(connectionView({ ...base, state: "closed" })).toMatchObject({ color: "red", state: "disconnected" });
  });

  it("says state, latency, reconnects and last message age in words (the chip: feedStatus.test.tsx)", () => {
    expect(connectionView(base).detail).toBe(
      "Connection: Live (WebSocket), latency 12 ms, 2 reconnects, last message 1.5s ago",
    );
  });
});

describe("isStale", () => {
  it("trusts the server's mark, and otherwise the age when prices should move", () => {
    const now = 1_000_000;
    expect(isStale({ stale: true, timestamp: now }, now, 30_000, false)).toBe(true);
    expect(isStale({ stale: false, timestamp: now - 31_000 }, now, 30_000, true)).toBe(true);
    expect(isStale({ stale: false, timestamp: now - 29_000 }, now, 30_000, true)).toBe(false);
    expect(isStale({ stale: false, timestamp: now - 31_000 }, now, 30_000, false)).toBe(false);
  });
});

