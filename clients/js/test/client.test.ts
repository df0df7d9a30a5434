// StockfeedClient's rules with a scripted socket and fake timers: the exact reconnect
// schedule, the server's shutdown hint, pings, refusals, resume frames, duplicates, the
// polling fallback, bars. test/live.test.ts shows the same against a real server.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { StockfeedClient, type StockfeedClientOptions } from "../src/client.js";
import { AuthError, ConnectError } from "../src/transport.js";
import type { FetchLike } from "../src/rest.js";
import { FakeSocket } from "./fakeSocket.js";

const URL = "ws://feed.test/ws";
const data = (price: number) => ({
  price,
  change: null,
  change_percent: null,
  volume: 100,
  open: null,
  high: null,
  low: null,
  prev_close: null,
  market_time: 1_764_101_234_000,
});
const update = (ticker: string, seq: number, price = 100 + seq) => ({ type: "price_update", ticker, seq, timestamp: 1_764_101_234_000 + seq, data: data(price) });
const snapshot = (ticker: string, seq: number, epoch: string, extra: object = {}) => ({ ...update(ticker, seq), type: "snapshot", epoch, ...extra });

let clients: StockfeedClient[] = [];
function make(opts: StockfeedClientOptions = {}): StockfeedClient {
  const c = new StockfeedClient(URL, { WebSocket: FakeSocket, jitter: () => 0, settlePingMs: 0, ...opts });
  clients.push(c);
  return c;
}
const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);
/** The fake network opens or fails a socket this long after it is created. */
const NET = 1;

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.reset("open");
});
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
  vi.useRealTimers();
});

describe("StockfeedClient: connecting", () => {
  it("subscribes on open with its tickers and bars, and resolves once the server answers", async () => {
    const c = make({ tickers: ["aapl", "MSFT"], bars: ["1m"] });
    let done = false;
    void c.connect().then(() => (done = true));
    await tick();
    const ws = FakeSocket.last;
    expect(ws.url).toBe(URL);
    expect(ws.frames).toEqual([{ action: "subscribe", tickers: ["AAPL", "MSFT"], bars: ["1m"] }]);
    expect(ws.pings).toEqual([{ type: "ping", id: "sf1" }]);
    expect(c.connection.state).toBe("connected");
    expect(done).toBe(false);
    ws.receive({ type: "subscribed", tickers: ["AAPL", "MSFT"], epochs: { AAPL: "e1", MSFT: "e1" } });
    await tick();
    expect(done).toBe(true);
  });

  it("carries the token in the bearer subprotocol, or the query; asks a token function each time", async () => {
    let n = 0;
    const c = make({ token: () => `tok${++n}` });
    void c.connect();
    await tick();
    expect(FakeSocket.last.protocols).toEqual(["bearer", "tok1"]);
    FakeSocket.last.serverClose(1006);
    await tick(2000);
    expect(FakeSocket.last.protocols).toEqual(["bearer", "tok2"]);
    const q = make({ token: "secret", tokenIn: "query" });
    void q.connect();
    await tick();
    expect(FakeSocket.last.url).toBe(`${URL}?access_token=secret`);
    expect(FakeSocket.last.protocols).toBeUndefined();
  });

  it("takes ws://host, http:// and a full URL, and finds the REST base next to it", () => {
    expect(new StockfeedClient("ws://h:8000").url).toBe("ws://h:8000/ws");
    expect(new StockfeedClient("https://h/feed/ws").url).toBe("wss://h/feed/ws");
    expect(new StockfeedClient("https://h/feed/ws").httpUrl).toBe("https://h/feed");
    expect(() => new StockfeedClient("ftp://h")).toThrow(/not a WebSocket URL/);
  });
});

describe("StockfeedClient: reconnecting", () => {
  it("reconnects at exactly 2 s, 4 s and 8 s, then gives up (connect() rejects)", async () => {
    const c = make({ maxAttempts: 3 });
    const states: string[] = [];
    c.on("state", (s) => states.push(`${s.state}${s.attempt ? s.attempt : ""}`));
    const result = c.connect().catch((e: unknown) => e);
    await tick();
    FakeSocket.reset("fail");
    FakeSocket.all = [];
    // The server goes away: the open socket closes, every later attempt fails.
    (clients[0] as unknown as { socket: { ws: FakeSocket } }).socket.ws.serverClose(1006);
    for (const delay of [2000, 4000, 8000]) {
      const before = FakeSocket.all.length;
      await tick(delay - 1);
      expect(FakeSocket.all).toHaveLength(before); // not one millisecond early
      await tick(1);
      expect(FakeSocket.all).toHaveLength(before + 1);
      await tick(NET); // it fails
    }
    await tick(60_000);
    expect(FakeSocket.all).toHaveLength(3);
    expect(states).toEqual(["connecting", "connected", "reconnecting1", "reconnecting2", "reconnecting3", "error"]);
    expect(c.connection.reconnects).toBe(3);
    // It had been answered? No (the fake never answered): the promise says it gave up.
    expect(await result).toBeInstanceOf(ConnectError);
  });

  it("keeps trying at 8 s (plus jitter within 20 %) with no maxAttempts", async () => {
    FakeSocket.reset("fail");
    const c = make({ jitter: (_a, d) => d * 0.2 });
    void c.connect();
    await tick();
    const times: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
      const n = FakeSocket.all.length;
      while (FakeSocket.all.length === n) await tick(100);
      times.push(Date.now() - t0);
    }
    // 2.4 s, +4.8 s, +9.6 s, +9.6 s, +9.6 s after each failure (to the 100 ms step)
    expect(times).toEqual([2400, 7300, 16900, 26500, 36100]);
  });

  it("comes back no earlier than the server's retry_after_ms", async () => {
    const c = make({ tickers: ["AAPL"] });
    void c.connect();
    await tick();
    const ws = FakeSocket.last;
    ws.receive({ type: "server_shutdown", retry_after_ms: 5000 });
    ws.serverClose(1001);
    await tick(4999);
    expect(FakeSocket.all).toHaveLength(1);
    await tick(1);
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("resumes with seq and epoch, drops duplicates, and passes a gap snapshot on", async () => {
    const c = make({ tickers: ["AAPL"] });
    const seqs: number[] = [];
    const gaps: number[] = [];
    c.on("message", (m) => (m.type === "price_update" || m.type === "snapshot") && seqs.push(m.seq));
    c.on("gap", (g) => gaps.push(g.snapshot.seq));
    void c.connect();
    await tick();
    let ws = FakeSocket.last;
    ws.receive({ type: "subscribed", tickers: ["AAPL"], epochs: { AAPL: "e1" } });
    ws.receive(snapshot("AAPL", 41, "e1"));
    ws.receive(update("AAPL", 42));
    ws.receive(update("AAPL", 42)); // a repeat
    ws.receive(update("AAPL", 40)); // older
    ws.serverClose(1006);
    await tick(2000 + NET);
    ws = FakeSocket.last;
    expect(ws.frames).toEqual([{ action: "subscribe", tickers: ["AAPL"], resume: { AAPL: { seq: 42, epoch: "e1" } } }]);
    ws.receive({ type: "subscribed", tickers: ["AAPL"], epochs: { AAPL: "e1" } });
    ws.receive(update("AAPL", 42)); // replayed from the server's history: already seen
    ws.receive(update("AAPL", 43));
    // A restart lost the history: a new epoch, a gap snapshot, then the new seqs.
    ws.serverClose(1006);
    await tick(2000 + NET);
    ws = FakeSocket.last;
    ws.receive({ type: "subscribed", tickers: ["AAPL"], epochs: { AAPL: "e2" } });
    ws.receive(snapshot("AAPL", 7, "e2", { gap: true }));
    ws.receive(update("AAPL", 8));
    expect(seqs).toEqual([41, 42, 43, 7, 8]);
    expect(gaps).toEqual([7]);
    expect(c.stats()).toMatchObject({ duplicates: 3, gaps: 1 });
    expect(c.quote("AAPL")?.seq).toBe(8);
  });

  it("pings, measures latency from the pong, and drops a silent connection", async () => {
    const c = make({ pingIntervalMs: 30_000, pongTimeoutMs: 10_000 });
    void c.connect();
    await tick();
    const ws = FakeSocket.last;
    await tick(42);
    ws.receive({ type: "pong", id: "sf1" });
    expect(c.connection.latencyMs).toBe(42);
    await tick(30_000 - 42);
    expect(ws.pings).toHaveLength(2);
    await tick(10_000 - 1);
    expect(c.connection.state).toBe("connected");
    await tick(1);
    expect(c.connection.state).toBe("reconnecting");
  });

  it("a refused token (4401) stops at once: no retries, AuthError with the reason", async () => {
    const c = make();
    const result = c.connect().catch((e: unknown) => e);
    await tick();
    FakeSocket.last.receive({ type: "error", code: "unauthorized", message: "token expired" });
    FakeSocket.last.serverClose(4401, "token expired");
    const err = await result;
    expect(err).toBeInstanceOf(AuthError);
    expect(err).toMatchObject({ code: 4401, reason: "token expired" });
    await tick(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(c.connection).toMatchObject({ state: "error", closeCode: 4401, authError: "WebSocket refused (4401: token expired)" });
  });
});

describe("StockfeedClient: subscriptions and messages", () => {
  it("sends subscribe/unsubscribe as tickers change, once per turn", async () => {
    const c = make({ tickers: ["AAPL"] });
    void c.connect();
    await tick();
    const ws = FakeSocket.last;
    c.subscribe(["msft", "TSLA"]);
    c.subscribe("NVDA", { bars: ["5m"] });
    c.unsubscribe("AAPL");
    await tick();
    expect(ws.frames.slice(1)).toEqual([
      { action: "unsubscribe", tickers: ["AAPL"] },
      { action: "subscribe", tickers: ["MSFT", "TSLA"] },
      { action: "subscribe", tickers: ["NVDA"], bars: ["5m"] },
    ]);
    c.setTickers(["MSFT"]);
    await tick();
    expect(ws.frames.at(-1)).toEqual({ action: "unsubscribe", tickers: ["TSLA", "NVDA"] });
    // A ticker a component holds stays when the list drops it.
    const release = c.retain("MSFT");
    c.setTickers([]);
    await tick();
    expect(c.tickers).toEqual(["MSFT"]);
    release();
    await tick();
    expect(ws.frames.at(-1)).toEqual({ action: "unsubscribe", tickers: ["MSFT"] });
  });

  it("does not ask again for a ticker the server refused", async () => {
    const c = make({ tickers: ["AAPL", "ZZZZ"] });
    const errors: string[] = [];
    c.on("tickerError", (e) => errors.push(`${e.ticker} ${e.code}`));
    void c.connect();
    await tick();
    FakeSocket.last.receive({ type: "error", code: "unknown_ticker", message: "no such ticker", ticker: "ZZZZ" });
    FakeSocket.last.serverClose(1006);
    await tick(2000 + NET);
    expect(FakeSocket.last.frames).toEqual([{ action: "subscribe", tickers: ["AAPL"] }]);
    expect(errors).toEqual(["ZZZZ unknown_ticker"]);
  });

  it("keeps bars: a bars message, then bars replaced by time or appended", async () => {
    const c = make({ tickers: ["AAPL"], bars: ["1m"] });
    const events: string[] = [];
    c.on("bars", (e) => events.push(`${e.interval} ${e.whole ? "bars" : "bar"} ${e.bars.length}`));
    void c.connect();
    await tick();
    const ws = FakeSocket.last;
    const bar = (time: number, close: number, final = false) => ({ time, open: 1, high: 2, low: 0.5, close, volume: 3, final });
    ws.receive({ type: "bars", ticker: "AAPL", interval: "1m", seq: 5, bars: [bar(60, 1, true), bar(120, 1.1)] });
    const first = c.bars("AAPL", "1m");
    ws.receive({ type: "bar", ticker: "AAPL", interval: "1m", seq: 6, bar: bar(120, 1.2, true) });
    ws.receive({ type: "bar", ticker: "AAPL", interval: "1m", seq: 6, bar: bar(180, 1.2) });
    ws.receive({ type: "bar", ticker: "AAPL", interval: "1m", seq: 6, bar: bar(180, 1.2) }); // replayed
    expect(c.bars("AAPL", "1m").map((b) => [b.time, b.close, b.final])).toEqual([
      [60, 1, true],
      [120, 1.2, true],
      [180, 1.2, false],
    ]);
    expect(first).toHaveLength(2); // a new array per change: safe to hold in React state
    expect(events).toEqual(["1m bars 2", "1m bar 2", "1m bar 3"]);
    expect(c.bars("AAPL", "5m")).toEqual([]);
    // After a resume the server sends `bars` afresh: merged by time, nothing lost or doubled.
    ws.receive({ type: "bars", ticker: "AAPL", interval: "1m", seq: 9, bars: [bar(180, 1.4, true), bar(240, 1.5)] });
    expect(c.bars("AAPL", "1m").map((b) => [b.time, b.close])).toEqual([
      [60, 1],
      [120, 1.2],
      [180, 1.4],
      [240, 1.5],
    ]);
  });

  it("skips malformed frames, passes unknown types on their own event, survives a throwing listener", async () => {
    const c = make({ tickers: ["AAPL"] });
    const got: string[] = [];
    const unknown: string[] = [];
    c.on("message", () => {
      throw new Error("a listener's bug");
    });
    c.on("message", (m) => got.push(m.type));
    c.on("unknown", (m) => unknown.push(m.type));
    void c.connect();
    await tick();
    const ws = FakeSocket.last;
    ws.receive("not json");
    ws.receive({ type: "price_update", ticker: "AAPL", seq: "1", timestamp: 1, data: data(1) });
    ws.receive({ type: "news", headline: "x" });
    ws.receive({ type: "heartbeat", timestamp: 1 });
    ws.receive({ type: "pong", id: 7 }); // not ours: the caller's business
    expect(got).toEqual(["heartbeat", "pong"]);
    expect(unknown).toEqual(["news"]);
    expect(c.stats().malformed).toBe(2);
    // The listener's error surfaces later, outside the client.
    await expect(tick()).rejects.toThrow("a listener's bug");
  });
});

describe("StockfeedClient: polling", () => {
  function rest() {
    const state = { seq: 1, calls: [] as string[] };
    const fetch: FetchLike = async (url) => {
      state.calls.push(url);
      const body = url.includes("/api/quotes")
        ? { AAPL: update("AAPL", state.seq) }
        : { AAPL: { type: "market_status", market: "XNYS", is_open: true, session: "regular", next_open: null, next_close: null } };
      return { ok: true, status: 200, statusText: "OK", json: async () => body };
    };
    return { state, fetch, quoteCalls: () => state.calls.filter((u) => u.includes("/api/quotes")).length };
  }

  it("falls back after the last attempt, polls, probes, and switches back", async () => {
    const r = rest();
    const c = make({ tickers: ["AAPL"], maxAttempts: 1, fetch: r.fetch, polling: { intervalMs: 5000, probeIntervalMs: 3000 } });
    const result = c.connect();
    await tick();
    expect(r.quoteCalls()).toBe(1); // the start fetches the latest quotes
    expect(r.state.calls[0]).toBe("http://feed.test/api/quotes?tickers=AAPL");
    FakeSocket.reset("fail");
    (c as unknown as { socket: { ws: FakeSocket } }).socket.ws.serverClose(1006);
    await tick(2000 + NET);
    expect(c.connection).toMatchObject({ state: "polling", fallback: true });
    await result; // polling counts as data flowing
    expect(r.quoteCalls()).toBe(2);
    r.state.seq = 5;
    await tick(5000);
    expect(r.quoteCalls()).toBe(3);
    expect(c.quote("AAPL")?.seq).toBe(5);
    expect(c.markets.XNYS?.is_open).toBe(true);
    // Probing: every 3 s one attempt, which does not flip the state while it fails.
    const n = FakeSocket.all.length;
    await tick(3000 + NET);
    expect(FakeSocket.all.length).toBe(n + 1);
    expect(c.connection.state).toBe("polling");
    FakeSocket.mode = "open";
    await tick(3000 + NET);
    expect(c.connection).toMatchObject({ state: "connected", fallback: false });
    expect(r.quoteCalls()).toBe(4); // the switch back fetched once more
    expect(FakeSocket.last.frames).toEqual([{ action: "subscribe", tickers: ["AAPL"] }]); // no epoch known yet
    FakeSocket.last.receive({ type: "subscribed", tickers: ["AAPL"], epochs: { AAPL: "e1" } });
    await tick(20_000);
    expect(r.quoteCalls()).toBe(4); // and polling stopped
  });

  it("while polling, bars come over REST (two requests at a time), merged by time with the socket's", async () => {
    const calls: string[] = [];
    let inFlight = 0;
    let most = 0;
    const bar = (time: number, close: number) => ({ time, open: close, high: close, low: close, close, volume: 10 });
    const fetch: FetchLike = async (url) => {
      calls.push(url);
      inFlight += 1;
      most = Math.max(most, inFlight);
      await Promise.resolve();
      inFlight -= 1;
      const body = url.includes("/api/quotes")
        ? { AAPL: update("AAPL", 3), MSFT: update("MSFT", 3), TSLA: update("TSLA", 3) }
        : url.includes("/api/history/")
          ? { bars: [bar(60, 1), bar(120, 2)] }
          : {};
      return { ok: true, status: 200, statusText: "OK", json: async () => body };
    };
    const c = make({ tickers: ["AAPL", "MSFT"], bars: ["1m", "5m"], fetch, polling: { intervalMs: 5000 }, realtime: false });
    const release = c.retain("TSLA", "1h");
    const events: string[] = [];
    c.on("bars", (ev) => events.push(`${ev.ticker} ${ev.interval} ${ev.bars.length} ${ev.whole}`));
    void c.connect();
    await tick();
    const history = calls.filter((u) => u.includes("/api/history/"));
    expect(history.sort()).toEqual([
      "http://feed.test/api/history/AAPL?interval=1m&range=1d",
      "http://feed.test/api/history/AAPL?interval=5m&range=1d",
      "http://feed.test/api/history/MSFT?interval=1m&range=1d",
      "http://feed.test/api/history/MSFT?interval=5m&range=1d",
      "http://feed.test/api/history/TSLA?interval=1h&range=1mo",
    ]);
    expect(most).toBeLessThanOrEqual(3); // the quotes' request ended before the bars began: 2 at once
    expect(events).toContain("AAPL 1m 2 false");
    expect(c.bars("TSLA", "1h").map((b) => b.close)).toEqual([1, 2]);
    // A pair no longer wanted is not fetched again.
    release();
    calls.length = 0;
    await tick(5000);
    expect(calls.some((u) => u.includes("TSLA"))).toBe(false);
    // The change refreshed at once, then the poll: 4 pairs each.
    expect(calls.filter((u) => u.includes("/api/history/"))).toHaveLength(8);
  });

  it("polls by choice with setRealtime(false), with no socket and no probing", async () => {
    const r = rest();
    const c = make({ tickers: ["AAPL"], fetch: r.fetch, polling: { intervalMs: 5000 } });
    void c.connect();
    await tick();
    c.setRealtime(false);
    expect(c.connection).toMatchObject({ state: "polling", fallback: false, realtime: false });
    const sockets = FakeSocket.all.length;
    await tick(20_000);
    expect(FakeSocket.all.length).toBe(sockets);
    expect(r.quoteCalls()).toBe(6); // start, switch, 4 polls
    c.setRealtime(true);
    await tick();
    expect(c.connection.state).toBe("connected");
  });
});
