import { render, renderHook, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ConnectionStatus } from "../src/components/ConnectionStatus";
import { useReconnectStats } from "../src/hooks/useReconnectStats";
import { feedStatus, type FeedStatusInput } from "../src/lib/feedStatus";
import { quoteStanding } from "../src/lib/quoteStanding";

const base: FeedStatusInput = {
  paused: false,
  realtimeEnabled: true,
  wsState: "connected",
  attempt: 0,
  maxAttempts: 3,
  fallback: false,
  restReachable: null,
  pollSeconds: 60,
  probeSeconds: 10,
};

describe("feedStatus", () => {
  it("gives each state its own kind, colour and words", () => {
    const cases: [Partial<FeedStatusInput>, string, string, string][] = [
      [{}, "live", "connected", "green"],
      [{ wsState: "connecting" }, "connecting", "connecting", "yellow"],
      [{ wsState: "reconnecting", attempt: 2 }, "reconnecting", "reconnecting", "yellow"],
      [{ wsState: "error", fallback: true, restReachable: true }, "polling-auto", "polling", "orange"],
      [{ wsState: "error", fallback: true, restReachable: null }, "polling-auto", "polling", "orange"],
      [{ wsState: "error", fallback: true, restReachable: false }, "unreachable", "disconnected", "red"],
      [{ wsState: "polling", restReachable: false }, "unreachable", "disconnected", "red"],
      [{ realtimeEnabled: false, wsState: "closed" }, "polling-manual", "polling", "blue"],
      [{ realtimeEnabled: false, wsState: "closed", restReachable: false }, "unreachable", "disconnected", "red"],
      [{ paused: true, wsState: "closed", restReachable: false }, "paused", "paused", "grey"],
    ];
    for (const [patch, kind, state, color] of cases) {
      expect(feedStatus({ ...base, ...patch }), JSON.stringify(patch)).toMatchObject({ kind, state, color });
    }
    const colors = new Set(cases.map((c) => c[3]));
    expect(colors.size).toBe(6);
  });

  it("never calls a dead feed real-time, and says which polling", () => {
    expect(feedStatus({ ...base, wsState: "reconnecting", attempt: 1 })).toMatchObject({
      title: "Reconnecting 1/3",
      mode: "Reconnecting…",
      flowing: false,
    });
    expect(feedStatus({ ...base, wsState: "error", fallback: true }).mode).toBe("Polling · every 60 s (WebSocket down)");
    expect(feedStatus({ ...base, realtimeEnabled: false }).mode).toBe("Polling · every 60 s");
    expect(feedStatus({ ...base, wsState: "error", fallback: true, restReachable: false })).toMatchObject({
      title: "Server unreachable",
      mode: "No data · server unreachable",
      flowing: false,
    });
  });
});

describe("ConnectionStatus", () => {
  it("shows words and a colour, the latency only when live, the last data when not", () => {
    const { rerender } = render(<ConnectionStatus view={feedStatus(base)} latencyMs={12.4} lastData="14:32:05 ET (3s ago)" />);
    const el = screen.getByTestId("connection-status");
    expect(el.getAttribute("data-state")).toBe("connected");
    expect(el.textContent).toMatch(/^Live12 ms/);
    rerender(
      <ConnectionStatus view={feedStatus({ ...base, wsState: "error", fallback: true, restReachable: false })} latencyMs={12.4} lastData="14:32:05 ET (3s ago)" />,
    );
    expect(el.getAttribute("data-color")).toBe("red");
    expect(el.textContent).not.toMatch(/12 ms/);
    expect(el.textContent).toMatch(/Server unreachablelast data 14:32:05 ET/);
    expect(el.getAttribute("title")).toMatch(/^Server unreachable: neither WebSocket nor polling gets through/);
  });
});

describe("useReconnectStats", () => {
  it("counts reconnections apart from failed attempts", () => {
    const { result, rerender } = renderHook(({ s, a }) => useReconnectStats(s, a), { initialProps: { s: "connecting", a: 0 } });
    const step = (s: string, a: number) => rerender({ s, a });
    step("connected", 0);
    expect(result.current).toEqual({ reconnections: 0, failedAttempts: 0, latencyCurrent: true });
    step("reconnecting", 1); // dropped
    expect(result.current.latencyCurrent).toBe(false);
    step("reconnecting", 2); // attempt 1 failed
    step("reconnecting", 3); // attempt 2 failed
    step("error", 0); // attempt 3 failed: polling
    expect(result.current).toMatchObject({ reconnections: 0, failedAttempts: 3 });
    step("connected", 0); // a background probe opened
    expect(result.current).toMatchObject({ reconnections: 1, failedAttempts: 3 });
    step("closed", 0); // real-time turned off, then on: not a reconnection
    step("connecting", 0);
    step("connected", 0);
    expect(result.current).toMatchObject({ reconnections: 1, failedAttempts: 3 });
  });
});

describe("quoteStanding", () => {
  const now = 1_000_000;
  const ctx = { now, expectedMs: 30_000, pricesExpected: true, session: "regular" as const };
  it("tells ok, stale and closed apart", () => {
    expect(quoteStanding({ stale: false, timestamp: now - 1000 }, ctx)).toBe("ok");
    expect(quoteStanding({ stale: true, timestamp: now - 1000 }, ctx)).toBe("stale");
    expect(quoteStanding({ stale: false, timestamp: now - 31_000 }, ctx)).toBe("stale");
    expect(quoteStanding({ stale: false, timestamp: now - 31_000 }, { ...ctx, pricesExpected: false })).toBe("ok");
    // Closed: the session's last price, even when the server marks it stale.
    expect(quoteStanding({ stale: true, timestamp: now - 3_600_000 }, { ...ctx, session: "closed" })).toBe("closed");
    // A quote still moving after the close (a simulator outside hours) is not "closed".
    expect(quoteStanding({ stale: false, timestamp: now - 1000 }, { ...ctx, session: "closed" })).toBe("ok");
  });
});
