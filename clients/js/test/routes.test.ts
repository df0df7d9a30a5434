// Ticker groups (docs/protocol.md, "Ticker groups") with a scripted socket: a `wrong_group`
// refusal moves the ticker to a connection for its route key (`/ws?route=KEY`), whose
// messages reach the same listeners; a route connection left empty is closed, one that
// drops reconnects and resumes its tickers, and the connection state is the worst of all.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { StockfeedClient, type StockfeedClientOptions } from "../src/client.js";
import type { FetchLike } from "../src/rest.js";
import { FakeSocket } from "./fakeSocket.js";

const URL = "ws://feed.test/ws";
const ROUTE_URL = `${URL}?route=g2-0`;
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
const snapshot = (ticker: string, seq: number, epoch: string) => ({ ...update(ticker, seq), type: "snapshot", epoch });
const wrongGroup = (ticker: string, route: string) => ({
  type: "error",
  code: "wrong_group",
  message: `${ticker} is served by ticker group 2 of 2, this process is group 1/2: connect by the ticker's name, or with ?route=${route}`,
  ticker,
  route,
});

let clients: StockfeedClient[] = [];
function make(opts: StockfeedClientOptions = {}): StockfeedClient {
  const c = new StockfeedClient(URL, { WebSocket: FakeSocket, jitter: () => 0, settlePingMs: 0, ...opts });
  clients.push(c);
  return c;
}
const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);
const socketsAt = (url: string) => FakeSocket.all.filter((s) => s.url === url);
const liveAt = (url: string) => socketsAt(url).filter((s) => s.readyState !== 3);

/** A client on AAPL and MSFT whose main server is group 1 and refuses MSFT to g2-0. */
async function routed(opts: StockfeedClientOptions = {}) {
  const c = make({ tickers: ["AAPL", "MSFT"], ...opts });
  const events = { route: [] as unknown[], tickerError: [] as unknown[], messages: [] as string[], quotes: [] as string[] };
  c.on("route", (ev) => events.route.push(ev));
  c.on("tickerError", (ev) => events.tickerError.push(ev));
  c.on("message", (m) => events.messages.push(m.type === "error" ? `error ${m.code}` : m.type));
  c.on("quote", (q) => events.quotes.push(`${q.ticker}#${q.seq}`));
  void c.connect();
  await tick();
  const main = FakeSocket.last;
  main.receive(wrongGroup("MSFT", "g2-0"));
  main.receive({ type: "subscribed", tickers: ["AAPL"], epochs: { AAPL: "a1" } });
  await tick();
  const route = socketsAt(ROUTE_URL)[0]!;
  return { c, main, route, events };
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.reset("open");
});
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
  vi.useRealTimers();
});

describe("StockfeedClient: ticker groups", () => {
  it("follows a wrong_group refusal to the route's connection, with the ticker's bars, and no tickerError", async () => {
    const { c, main, route, events } = await routed({ bars: ["1m"], token: "tok" });
    expect(main.frames).toEqual([{ action: "subscribe", tickers: ["AAPL", "MSFT"], bars: ["1m"] }]);
    expect(route).toBeDefined();
    expect(route.protocols).toEqual(["bearer", "tok"]); // the same token carrier
    expect(route.frames).toEqual([{ action: "subscribe", tickers: ["MSFT"], bars: ["1m"] }]);
    expect(events.tickerError).toEqual([]);
    expect(events.messages).toEqual(["subscribed"]); // the refusal is not a message
    expect(events.route).toEqual([{ ticker: "MSFT", route: "g2-0", from: null, message: expect.stringContaining("?route=g2-0") }]);
    expect(c.routes()).toEqual([{ key: "g2-0", state: "connected", attempt: 0, tickers: ["MSFT"] }]);
    expect(c.tickers).toEqual(["AAPL", "MSFT"]);
    expect(c.connection.state).toBe("connected");
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("merges the route connection's messages into the same events and stores", async () => {
    const { c, main, route, events } = await routed({ bars: ["1m"] });
    route.receive({ type: "subscribed", tickers: ["MSFT"], epochs: { MSFT: "m1" } });
    route.receive(snapshot("MSFT", 7, "m1"));
    main.receive(snapshot("AAPL", 3, "a1"));
    route.receive(update("MSFT", 8));
    route.receive(update("MSFT", 8)); // a duplicate, on whichever connection
    route.receive({ type: "bars", ticker: "MSFT", interval: "1m", seq: 8, bars: [{ time: 60, open: 1, high: 2, low: 1, close: 2, volume: 5 }] });
    route.receive({ type: "market_status", market: "XNYS", is_open: true, session: "regular", next_open: null, next_close: null });
    expect(events.quotes).toEqual(["MSFT#7", "AAPL#3", "MSFT#8"]);
    expect(c.quote("MSFT")?.seq).toBe(8);
    expect(c.bars("MSFT", "1m")).toHaveLength(1);
    expect(c.markets.XNYS?.is_open).toBe(true);
    expect(c.resumePoints()).toEqual({ AAPL: { seq: 3, epoch: "a1" }, MSFT: { seq: 8, epoch: "m1" } });
    expect(c.stats().duplicates).toBe(1);
    expect(events.messages).toEqual(["subscribed", "subscribed", "snapshot", "snapshot", "price_update", "bars", "market_status"]);
  });

  it("sends later subscribes and unsubscribes of a routed ticker to its connection, and closes it when empty", async () => {
    const { c, main, route } = await routed();
    route.receive({ type: "subscribed", tickers: ["MSFT"], epochs: { MSFT: "m1" } });
    c.subscribe("MSFT", { bars: ["5m"] });
    await tick();
    expect(route.frames.at(-1)).toEqual({ action: "subscribe", tickers: ["MSFT"], bars: ["5m"] });
    expect(main.frames).toHaveLength(1);
    c.unsubscribe("MSFT");
    await tick();
    expect(route.readyState).toBe(3);
    expect(c.routes()).toEqual([]);
    expect(main.frames).toHaveLength(1); // nothing for MSFT on the main connection
    expect(c.connection.state).toBe("connected");
    // Asked for again: straight to a new connection for its route.
    c.subscribe("MSFT");
    await tick();
    const again = liveAt(ROUTE_URL);
    expect(again).toHaveLength(1);
    expect(again[0]!.frames).toEqual([{ action: "subscribe", tickers: ["MSFT"] }]);
    expect(main.frames).toHaveLength(1);
    // setTickers without it: closed again.
    c.setTickers(["AAPL"]);
    await tick();
    expect(liveAt(ROUTE_URL)).toHaveLength(0);
  });

  it("reconnects a dropped route connection with backoff and resumes its tickers; the state says it is down meanwhile", async () => {
    const { c, main, route } = await routed();
    route.receive({ type: "subscribed", tickers: ["MSFT"], epochs: { MSFT: "m1" } });
    route.receive(snapshot("MSFT", 7, "m1"));
    const states: string[] = [];
    c.on("state", (s) => states.push(`${s.state}${s.attempt || ""}`));
    route.serverClose(1006);
    expect(c.connection.state).toBe("reconnecting");
    expect(c.routes()[0]).toMatchObject({ key: "g2-0", state: "reconnecting", attempt: 1 });
    await tick(1999);
    expect(socketsAt(ROUTE_URL)).toHaveLength(1); // the same backoff as the main connection
    await tick(1);
    const next = socketsAt(ROUTE_URL)[1]!;
    await tick(1);
    expect(next.frames).toEqual([{ action: "subscribe", tickers: ["MSFT"], resume: { MSFT: { seq: 7, epoch: "m1" } } }]);
    expect(c.connection.state).toBe("connected");
    expect(states).toEqual(["reconnecting1", "connected"]);
    expect(c.connection.reconnects).toBe(1);
    expect(main.readyState).toBe(1); // the main connection was never touched
    expect(main.frames).toHaveLength(1);
  });

  it("does not follow a route key unfit for a URL: the refusal is a tickerError", async () => {
    const c = make({ tickers: ["AAPL", "MSFT", "IBM", "SPY"] });
    const errors: string[] = [];
    const routes: unknown[] = [];
    c.on("tickerError", (e) => errors.push(`${e.ticker} ${e.code}`));
    c.on("route", (e) => routes.push(e));
    void c.connect();
    await tick();
    const main = FakeSocket.last;
    main.receive(wrongGroup("MSFT", "../admin?x=1"));
    main.receive(wrongGroup("IBM", "g".repeat(33)));
    main.receive({ type: "error", code: "wrong_group", message: "elsewhere", ticker: "SPY" }); // no route
    main.receive({ type: "error", code: "forbidden_ticker", message: "not for you", ticker: "AAPL", route: "g2-0" }); // not wrong_group
    await tick();
    expect(FakeSocket.all).toHaveLength(1);
    expect(routes).toEqual([]);
    expect(errors).toEqual(["MSFT wrong_group", "IBM wrong_group", "SPY wrong_group", "AAPL forbidden_ticker"]);
    expect(c.routes()).toEqual([]);
  });

  it("surfaces other errors of a route connection, and a refusal naming the connection's own key", async () => {
    const { route, events } = await routed();
    route.receive({ type: "error", code: "ticker_limit", message: "full", ticker: "MSFT" });
    route.receive(wrongGroup("MSFT", "g2-0"));
    expect(events.tickerError).toEqual([
      { ticker: "MSFT", code: "ticker_limit", message: "full" },
      { ticker: "MSFT", code: "wrong_group", message: expect.any(String) },
    ]);
    await tick();
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("closes a route connection whose last ticker its server refuses", async () => {
    const { c, route, events } = await routed();
    route.receive({ type: "error", code: "forbidden_ticker", message: "not for you", ticker: "MSFT" });
    await tick();
    expect(events.tickerError).toEqual([{ ticker: "MSFT", code: "forbidden_ticker", message: "not for you" }]);
    expect(route.readyState).toBe(3);
    expect(c.routes()).toEqual([]);
    expect(c.tickers).toEqual(["AAPL"]);
  });

  it("a main connection back on the other group: its tickers move to their own route, resuming", async () => {
    const { c, main, route } = await routed();
    main.receive(snapshot("AAPL", 4, "a1"));
    main.serverClose(1006);
    await tick(2000);
    await tick(1);
    const main2 = liveAt(URL)[0]!;
    expect(main2.frames).toEqual([{ action: "subscribe", tickers: ["AAPL"], resume: { AAPL: { seq: 4, epoch: "a1" } } }]);
    // `/ws` has no route: the balancer sent it to group 2 this time.
    main2.receive(wrongGroup("AAPL", "g1-1"));
    await tick();
    await tick(1);
    const g1 = liveAt(`${URL}?route=g1-1`)[0]!;
    expect(g1.frames).toEqual([{ action: "subscribe", tickers: ["AAPL"], resume: { AAPL: { seq: 4, epoch: "a1" } } }]);
    expect(route.readyState).toBe(1);
    expect(c.routes().map((r) => [r.key, r.tickers])).toEqual([
      ["g2-0", ["MSFT"]],
      ["g1-1", ["AAPL"]],
    ]);
    g1.receive(update("AAPL", 5));
    expect(c.quote("AAPL")?.seq).toBe(5);
  });

  it("moves a ticker on from a route connection to another key, and closes the one left empty", async () => {
    const { c, route } = await routed();
    route.receive(wrongGroup("MSFT", "g3-1"));
    await tick();
    expect(route.readyState).toBe(3);
    const third = liveAt(`${URL}?route=g3-1`);
    expect(third).toHaveLength(1);
    expect(third[0]!.frames).toEqual([{ action: "subscribe", tickers: ["MSFT"] }]);
    expect(c.routes().map((r) => r.key)).toEqual(["g3-1"]);
  });

  it("connects a route with the routeUrl option", async () => {
    const { route } = await routed({ routeUrl: (key) => `ws://group.test:9001/ws?key=${key}` });
    expect(route).toBeUndefined();
    expect(FakeSocket.last.url).toBe("ws://group.test:9001/ws?key=g2-0");
    expect(FakeSocket.last.frames).toEqual([{ action: "subscribe", tickers: ["MSFT"] }]);
  });

  it("closes route connections on close(), and opens them again, resuming, on connect()", async () => {
    const { c, main, route } = await routed();
    route.receive({ type: "subscribed", tickers: ["MSFT"], epochs: { MSFT: "m1" } });
    route.receive(snapshot("MSFT", 9, "m1"));
    c.close();
    expect(main.readyState).toBe(3);
    expect(route.readyState).toBe(3);
    expect(c.routes()).toEqual([]);
    void c.connect();
    await tick();
    await tick(1);
    const main2 = liveAt(URL)[0]!;
    const route2 = liveAt(ROUTE_URL)[0]!;
    expect(main2.frames).toEqual([{ action: "subscribe", tickers: ["AAPL"] }]);
    expect(route2.frames).toEqual([{ action: "subscribe", tickers: ["MSFT"], resume: { MSFT: { seq: 9, epoch: "m1" } } }]);
  });

  it("counts a route connection that gives up: error, or with polling the fallback until it is back", async () => {
    const { c, route } = await routed({ maxAttempts: 1 });
    FakeSocket.mode = "fail";
    route.serverClose(1006);
    await tick(2000);
    await tick(1);
    expect(c.routes()[0]?.state).toBe("error");
    expect(c.connection.state).toBe("error");

    FakeSocket.reset("open");
    const calls: string[] = [];
    const fetch: FetchLike = async (url) => {
      calls.push(url);
      const body = url.includes("/api/quotes") ? { AAPL: update("AAPL", 1), MSFT: update("MSFT", 1) } : {};
      return { ok: true, status: 200, statusText: "OK", json: async () => body };
    };
    const p = await routed({ maxAttempts: 1, fetch, polling: { intervalMs: 5000, probeIntervalMs: 3000 } });
    const quoteCalls = () => calls.filter((u) => u.includes("/api/quotes")).length;
    expect(quoteCalls()).toBe(1); // the start
    FakeSocket.mode = "fail";
    p.route.serverClose(1006);
    await tick(2000);
    await tick(1);
    // The main connection is fine, but MSFT is not live: every wanted ticker is polled.
    expect(p.c.connection).toMatchObject({ state: "polling", fallback: true });
    expect(quoteCalls()).toBe(2);
    expect(calls.at(-1)).toContain("tickers=AAPL,MSFT");
    FakeSocket.mode = "open";
    await tick(3000);
    await tick(1);
    expect(p.c.routes()[0]?.state).toBe("connected");
    expect(p.c.connection).toMatchObject({ state: "connected", fallback: false });
    expect(quoteCalls()).toBe(3); // the switch back fetched once
    liveAt(ROUTE_URL)[0]!.receive({ type: "subscribed", tickers: ["MSFT"], epochs: { MSFT: "m1" } });
    await tick(20_000);
    expect(quoteCalls()).toBe(3); // and polling stopped
  });
});
