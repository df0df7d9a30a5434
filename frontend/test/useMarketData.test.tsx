import { renderHook } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import WS from "vitest-websocket-mock";
import type { ReactNode } from "react";
import { useStockfeed } from "@stockfeed/client/react";
import { FeedProvider } from "../src/components/FeedProvider";
import type { FeedOptions } from "../src/hooks/useFeedClient";
import { useMarketData, type MarketDataOptions } from "../src/hooks/useMarketData";
import { connectionView } from "../src/lib/status";
import { advance, countingWebSocket, stubFetch } from "./helpers";

const URL = "ws://localhost:1235/ws";
const FAIL = 4; // mock-socket: a connection to a stopped server fails after 4 ms; frames arrive 4 ms late

const data = (price: number) => ({
  price,
  change: 1,
  change_percent: 1,
  volume: 10,
  open: 99,
  high: 103,
  low: 98,
  prev_close: 99,
  market_time: Date.now(),
});

/** The REST side: /api/quotes answers `rest.quote` (changed by the test), market-status XNYS. */
function restServer() {
  const rest = { seq: 10, price: 100 };
  const stub = stubFetch((url) => {
    if (url.startsWith("/api/quotes?tickers=AAPL")) {
      return { AAPL: { type: "price_update", ticker: "AAPL", seq: rest.seq, timestamp: Date.now(), data: data(rest.price) } };
    }
    if (url.startsWith("/api/market-status?tickers=AAPL")) {
      return {
        AAPL: { type: "market_status", market: "XNYS", is_open: true, session: "regular", next_open: null, next_close: "2026-11-27T18:00:00Z" },
      };
    }
    return undefined;
  });
  const quoteCalls = () => stub.calls.filter((u) => u.startsWith("/api/quotes")).length;
  return { rest, stub, quoteCalls };
}

/** useMarketData under the page's FeedProvider (its client: this URL, no jitter, counted sockets). */
function render(opts: { enableRealTime?: boolean; pollIntervalMs?: number } = {}) {
  const ws = countingWebSocket();
  const pollIntervalMs = opts.pollIntervalMs ?? 60_000;
  const feed: FeedOptions = { url: URL, jitter: () => 0, pollIntervalMs, probeIntervalMs: 10_000, WebSocketImpl: ws.Impl };
  const hook = renderHook((p: Partial<MarketDataOptions>) => useMarketData({ tickers: ["AAPL"], enableRealTime: true, pollIntervalMs, ...opts, ...p }), {
    initialProps: {},
    wrapper: ({ children }: { children: ReactNode }) => <FeedProvider options={feed}>{children}</FeedProvider>,
  });
  return { hook, ws };
}

const dot = (h: ReturnType<typeof render>["hook"], enabled = true) =>
  connectionView({
    ...h.result.current.connection,
    realtimeEnabled: enabled,
    fallback: h.result.current.fallback,
    lastMessageAgeMs: null,
  });

describe("useMarketData", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  it("streams, falls back to polling after the 3rd failed reconnect with a toast, and returns to WebSocket", async () => {
    const { rest, quoteCalls } = restServer();
    const server = new WS(URL, { jsonProtocol: true });
    const { hook } = render();
    await advance(FAIL);
    await server.connected;
    expect(hook.result.current.mode).toBe("realtime");
    expect(dot(hook)).toMatchObject({ color: "green", state: "connected" });
    expect(quoteCalls()).toBe(1); // the start fetches the latest quotes

    await advance(FAIL);
    // No epoch known yet: a plain subscribe (a resume needs the epoch).
    expect(server.messages).toContainEqual({ action: "subscribe", tickers: ["AAPL"] });
    server.send({ type: "subscribed", tickers: ["AAPL"], epochs: { AAPL: "e1" } });
    server.send({ type: "snapshot", ticker: "AAPL", seq: 11, timestamp: Date.now(), data: data(100.25), epoch: "e1" });
    server.send({ type: "price_update", ticker: "AAPL", seq: 12, timestamp: Date.now(), data: data(100.5) });
    server.send({ type: "price_update", ticker: "AAPL", seq: 12, timestamp: Date.now(), data: data(999) }); // a repeat
    await advance(100);
    expect(hook.result.current.quotes.AAPL).toMatchObject({ seq: 12, data: { price: 100.5 } });

    // The server dies; while it is down REST would say seq 15 (e.g. another node).
    rest.seq = 15;
    rest.price = 102;
    server.close();
    expect(dot(hook)).toMatchObject({ color: "yellow", state: "reconnecting", title: "Reconnecting (attempt 1 of 3)" });
    await advance(2000 + FAIL + 4000 + FAIL);
    expect(dot(hook).title).toBe("Reconnecting (attempt 3 of 3)");
    expect(hook.result.current.toasts).toEqual([]);
    await advance(8000 + FAIL);

    // Third failure: polling, a toast, a red dot, and the latest quotes fetched at once.
    expect(hook.result.current.mode).toBe("polling");
    expect(hook.result.current.fallback).toBe(true);
    expect(dot(hook)).toMatchObject({ color: "red", state: "polling" });
    expect(hook.result.current.toasts).toHaveLength(1);
    expect(hook.result.current.toasts[0]).toMatchObject({ kind: "warn" });
    expect(hook.result.current.toasts[0]?.text).toMatch(/polling/i);
    expect(quoteCalls()).toBe(2);
    await advance(100);
    expect(hook.result.current.quotes.AAPL).toMatchObject({ seq: 15, data: { price: 102 } });

    await advance(60_000);
    expect(quoteCalls()).toBe(3); // polling every 60 s

    // The server is back: the background retry (every 10 s) finds it.
    const back = new WS(URL, { jsonProtocol: true });
    // Retries run at 10 s, 20 s, … after the fallback; 60.1 s have passed: the next is at 70 s.
    await advance(70_000 - 60_100 - 1);
    expect(hook.result.current.mode).toBe("polling");
    await advance(1 + FAIL);
    await back.connected;
    expect(hook.result.current.mode).toBe("realtime");
    expect(dot(hook)).toMatchObject({ color: "green", state: "connected" });
    expect(hook.result.current.toasts.map((t) => t.kind)).toEqual(["warn", "ok"]);
    expect(quoteCalls()).toBe(4); // the switch back fetches too
    await advance(FAIL);
    // It resumes from the last seq it saw, in the epoch it knows.
    expect(back.messages).toContainEqual({ action: "subscribe", tickers: ["AAPL"], resume: { AAPL: { seq: 15, epoch: "e1" } } });
  });

  it("resumes after a short outage without polling", async () => {
    restServer();
    const server = new WS(URL, { jsonProtocol: true });
    const { hook } = render();
    await advance(FAIL);
    await server.connected;
    server.send({ type: "subscribed", tickers: ["AAPL"], epochs: { AAPL: "e7" } });
    server.send({ type: "snapshot", ticker: "AAPL", seq: 41, timestamp: Date.now(), data: data(10), epoch: "e7" });
    server.close();
    const again = new WS(URL, { jsonProtocol: true });
    await advance(2000 + FAIL);
    await again.connected;
    await advance(FAIL);
    expect(again.messages).toContainEqual({ action: "subscribe", tickers: ["AAPL"], resume: { AAPL: { seq: 41, epoch: "e7" } } });
    expect(hook.result.current.mode).toBe("realtime");
    expect(hook.result.current.toasts).toEqual([]);
    // A new epoch (the server restarted its seq space): lower seqs are accepted again.
    again.send({ type: "subscribed", tickers: ["AAPL"], epochs: { AAPL: "e8" } });
    again.send({ type: "price_update", ticker: "AAPL", seq: 2, timestamp: Date.now(), data: data(11) });
    await advance(100);
    expect(hook.result.current.quotes.AAPL).toMatchObject({ seq: 2, data: { price: 11 } });
  });

  it("polls without a socket when real time is off, and connects when turned on", async () => {
    const { quoteCalls } = restServer();
    const server = new WS(URL, { jsonProtocol: true });
    const { hook, ws } = render({ enableRealTime: false, pollIntervalMs: 5000 });
    await advance(FAIL);
    expect(ws.opened).toHaveLength(0);
    expect(hook.result.current.mode).toBe("polling");
    expect(dot(hook, false)).toMatchObject({ color: "red", state: "polling" });
    expect(quoteCalls()).toBe(1);
    await advance(5000);
    expect(quoteCalls()).toBe(2);
    expect(hook.result.current.markets.XNYS).toMatchObject({ is_open: true });
    expect(hook.result.current.toasts).toEqual([]);

    hook.rerender({ enableRealTime: true });
    await advance(FAIL);
    await server.connected;
    expect(hook.result.current.mode).toBe("realtime");
    expect(quoteCalls()).toBe(3); // the switch fetched the latest quotes
    await advance(20_000);
    expect(quoteCalls()).toBe(3); // and polling stopped
  });

  it("subscribes and unsubscribes as the watchlist changes", async () => {
    restServer();
    const server = new WS(URL, { jsonProtocol: true });
    const { hook } = render();
    await advance(FAIL);
    await server.connected;
    hook.rerender({ tickers: ["AAPL", "MSFT"] });
    await advance(FAIL);
    expect(server.messages).toContainEqual({ action: "subscribe", tickers: ["MSFT"] });
    hook.rerender({ tickers: ["MSFT"] });
    await advance(FAIL);
    expect(server.messages).toContainEqual({ action: "unsubscribe", tickers: ["AAPL"] });
  });

  it("the page's one client: the same across renders, a new one when the token changes, closed when it goes", async () => {
    restServer();
    const server = new WS(URL, { jsonProtocol: true });
    const ws = countingWebSocket();
    const token = { value: "t1" };
    const hook = renderHook(() => useStockfeed(), {
      wrapper: ({ children }: { children: ReactNode }) => <FeedProvider options={{ url: URL, jitter: () => 0, WebSocketImpl: ws.Impl, token: token.value }}>{children}</FeedProvider>,
    });
    await advance(FAIL);
    await server.connected;
    const first = hook.result.current;
    expect(first.connection.state).toBe("connected");
    hook.rerender();
    expect(hook.result.current).toBe(first);
    token.value = "t2";
    hook.rerender();
    await advance(FAIL);
    expect(hook.result.current).not.toBe(first);
    expect(first.connection.state).toBe("closed");
    expect(ws.opened).toHaveLength(2);
    const second = hook.result.current;
    hook.unmount();
    expect(second.connection.state).toBe("closed");
  });
});
