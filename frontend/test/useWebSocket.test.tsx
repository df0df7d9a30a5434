import { renderHook } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import WS from "vitest-websocket-mock";
import { useWebSocket, type WsState } from "../src/hooks/useWebSocket";
import { advance, countingWebSocket } from "./helpers";

const URL = "ws://localhost:1234/ws";
const MOCK_FAIL_MS = 4; // mock-socket fails a connection to a stopped server after 4 ms

function setup(extra: Partial<Parameters<typeof useWebSocket>[0]> = {}) {
  const renders = { count: 0 };
  const server = new WS(URL, { jsonProtocol: true });
  const ws = countingWebSocket();
  const states: WsState[] = [];
  const hook = renderHook((props: { enabled: boolean }) => {
    renders.count += 1;
    return useWebSocket({
      url: URL,
      enabled: props.enabled,
      jitter: () => 0,
      WebSocketImpl: ws.Impl,
      onStateChange: (_prev, next) => states.push(next),
      ...extra,
    });
  },
    { initialProps: { enabled: true } },
  );
  return { server, ws, states, hook, renders };
}

describe("useWebSocket", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  it("connects on mount, then reconnects at exactly 2 s, 4 s and 8 s, then gives up", async () => {
    const { server, ws, states, hook } = setup();
    await advance(MOCK_FAIL_MS);
    await server.connected;
    expect(hook.result.current.state).toBe("connected");
    expect(ws.opened).toEqual([URL]);

    server.close(); // the server goes away: every later attempt fails
    expect(hook.result.current.state).toBe("reconnecting");
    expect(hook.result.current.attempt).toBe(1);

    const schedule = [2000, 4000, 8000];
    for (const [i, delay] of schedule.entries()) {
      await advance(delay - 1);
      expect(ws.opened).toHaveLength(i + 1); // not one millisecond early
      await advance(1);
      expect(ws.opened).toHaveLength(i + 2); // attempt i+1 now
      expect(hook.result.current.state).toBe("reconnecting");
      expect(hook.result.current.attempt).toBe(i + 1);
      await advance(MOCK_FAIL_MS); // it fails
    }
    expect(hook.result.current.state).toBe("error");
    expect(hook.result.current.reconnectCount).toBe(3);
    await advance(60_000);
    expect(ws.opened).toHaveLength(4); // at most 3 attempts
    expect(states).toEqual(["connecting", "connected", "reconnecting", "error"]);
  });

  it("reconnects after a loss when the server is back, and counts it", async () => {
    const { server, ws, states, hook } = setup();
    await advance(MOCK_FAIL_MS);
    await server.connected;
    server.close();
    const again = new WS(URL, { jsonProtocol: true });
    await advance(2000);
    await advance(MOCK_FAIL_MS);
    await again.connected;
    expect(hook.result.current.state).toBe("connected");
    expect(hook.result.current.reconnectCount).toBe(1);
    expect(ws.opened).toHaveLength(2);
    expect(states).toEqual(["connecting", "connected", "reconnecting", "connected"]);
  });

  it("jitter lengthens the wait within the window it returns", async () => {
    const { server, ws } = setup({ jitter: (attempt) => attempt * 100 });
    await advance(MOCK_FAIL_MS);
    await server.connected;
    server.close();
    await advance(2099);
    expect(ws.opened).toHaveLength(1);
    await advance(1);
    expect(ws.opened).toHaveLength(2);
  });

  it("pings on open, measures latency from the pong, and drops a silent connection", async () => {
    const { server, hook } = setup({
      pingIntervalMs: 30_000,
      pongTimeoutMs: 10_000,
      settlePingMs: 0,
    });
    await advance(MOCK_FAIL_MS);
    await server.connected;
    const openedAt = Date.now(); // fake clock: the first ping left now
    await advance(4); // mock-socket delivers client frames 4 ms later
    expect(server.messages).toEqual([{ type: "ping", id: 1 }]);
    await advance(38); // the ping left at t=4 ms; the pong comes at t=46 ms
    server.send({ type: "pong", id: 1 });
    expect(hook.result.current.latencyMs).toBe(42);
    await advance(30_000);
    await advance(4);
    expect(server.messages).toEqual([
      { type: "ping", id: 1 },
      { type: "ping", id: 2 },
    ]);
    // No answer, no traffic: after the pong timeout the connection counts as dead.
    // The second ping left at openedAt + 30 s; silence until 10 s after it is tolerated.
    await advance(openedAt + 40_000 - Date.now() - 1);
    expect(hook.result.current.state).toBe("connected");
    await advance(1);
    expect(hook.result.current.state).toBe("reconnecting");
  });

  it("pings once more when the page has settled, so the first busy reading does not stand", async () => {
    const { server, hook } = setup({ pingIntervalMs: 30_000, settlePingMs: 2_000 });
    await advance(MOCK_FAIL_MS);
    await server.connected;
    await advance(4);
    await advance(76);
    server.send({ type: "pong", id: 1 }); // answered while the page was busy: 80 ms
    expect(hook.result.current.latencyMs).toBe(80);
    await advance(2_000 - 80);
    await advance(4);
    expect(server.messages).toEqual([
      { type: "ping", id: 1 },
      { type: "ping", id: 2 },
    ]);
    await advance(1);
    server.send({ type: "pong", id: 2 });
    expect(hook.result.current.latencyMs).toBe(5);
  });

  it("hands every message to subscribers without a render per message", async () => {
    const { server, hook, renders } = setup();
    await advance(MOCK_FAIL_MS);
    await server.connected;
    const got: unknown[] = [];
    const unsubscribe = hook.result.current.subscribe((m) => got.push(m));
    const before = renders.count;
    for (let i = 1; i <= 200; i++) {
      server.send({ type: "price_update", ticker: "AAPL", seq: i, timestamp: i, data: { price: i } });
    }
    await advance(10);
    expect(got).toHaveLength(200);
    expect(renders.count).toBe(before);
    expect(hook.result.current.stats().messages).toBeGreaterThanOrEqual(200);
    unsubscribe();
    server.send({ type: "heartbeat", timestamp: 1 });
    expect(got).toHaveLength(200);
  });

  it("closes when disabled and connects again when enabled", async () => {
    const { server, hook, states } = setup();
    await advance(MOCK_FAIL_MS);
    await server.connected;
    hook.rerender({ enabled: false });
    expect(hook.result.current.state).toBe("closed");
    hook.rerender({ enabled: true });
    await advance(MOCK_FAIL_MS);
    await server.connected;
    expect(hook.result.current.state).toBe("connected");
    expect(states).toEqual(["connecting", "connected", "connecting", "connected"]);
  });

  it("after giving up, retry() tries once and stays in error when it fails", async () => {
    const { server, ws, hook } = setup();
    await advance(MOCK_FAIL_MS);
    await server.connected;
    server.close();
    await advance(2000 + 4000 + 8000 + 3 * MOCK_FAIL_MS);
    expect(hook.result.current.state).toBe("error");
    hook.result.current.retry();
    expect(ws.opened).toHaveLength(5);
    expect(hook.result.current.state).toBe("error"); // a probe does not flip the state
    await advance(MOCK_FAIL_MS);
    expect(hook.result.current.state).toBe("error");
    await advance(60_000);
    expect(ws.opened).toHaveLength(5);
  });
});

describe("useWebSocket refused for its token", () => {
  it("gives up at once on 4401 (no retries)", async () => {
    vi.useFakeTimers();
    const server = new WS(URL, { jsonProtocol: true });
    server.on("connection", (socket) => {
      socket.close({ code: 4401, reason: "token expired", wasClean: true });
    });
    const ws = countingWebSocket();
    const hook = renderHook(() => useWebSocket({ url: URL, jitter: () => 0, WebSocketImpl: ws.Impl }));
    await advance(MOCK_FAIL_MS);
    await advance(MOCK_FAIL_MS);
    expect(hook.result.current.state).toBe("error");
    expect(hook.result.current.closeCode).toBe(4401);
    await advance(30_000);
    expect(ws.opened).toHaveLength(1);
  });
});
