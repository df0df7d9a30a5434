// Ticker groups live: two `stockfeed serve --ticker-group K/2` processes (each its own
// simulator on the memory broker: enough for the routing, which is all this is about; the
// backend's tests/deploy/test_ticker_groups.py runs the real thing, one Redis behind nginx).
// There is no nginx here, so `routeUrl` sends a route key straight to its group's process,
// the way the balancer's `hash` would. AAPL and MSFT are group 2's, GOOG and TSLA group 1's.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { StockfeedClient, type RouteEvent, type TickerErrorEvent } from "../src/client.js";
import { Recorder } from "./recorder.js";
import { haveStockfeed, StockfeedServer, until } from "./server.js";

const clients: StockfeedClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

describe.skipIf(!haveStockfeed)("two ticker groups", () => {
  let g1: StockfeedServer;
  let g2: StockfeedServer;

  beforeAll(async () => {
    [g1, g2] = await Promise.all([StockfeedServer.start({ args: ["--ticker-group", "1/2"] }), StockfeedServer.start({ args: ["--ticker-group", "2/2"] })]);
  });
  afterAll(async () => {
    await Promise.all([g1?.stop(), g2?.stop()]);
  });

  it("follows wrong_group to the other group's process, merges both feeds, survives that process's restart", async () => {
    // Connected to group 1, as a balancer would send `/ws` anywhere.
    const c = new StockfeedClient(g1.ws, {
      tickers: ["AAPL", "GOOG", "MSFT", "TSLA"],
      jitter: () => 0,
      baseDelayMs: 300,
      routeUrl: (key) => (key.startsWith("g2-") ? g2.ws : g1.ws),
    });
    clients.push(c);
    const rec = new Recorder(c);
    const routes: RouteEvent[] = [];
    const errors: TickerErrorEvent[] = [];
    c.on("route", (e) => routes.push(e));
    c.on("tickerError", (e) => errors.push(e));
    await c.connect();
    const all = ["AAPL", "GOOG", "MSFT", "TSLA"];
    await until(() => all.every((t) => rec.count(t) >= 10), 15_000, "10 quotes of each ticker");
    expect(routes.map((r) => `${r.ticker}->${r.route}`).sort()).toEqual(["AAPL->g2-0", "MSFT->g2-0"]);
    expect(errors).toEqual([]);
    expect(rec.messages.filter((m) => m.type === "error")).toEqual([]);
    expect(c.routes()).toEqual([{ key: "g2-0", state: "connected", attempt: 0, tickers: expect.arrayContaining(["AAPL", "MSFT"]) }]);
    expect(c.connection.state).toBe("connected");
    for (const t of all) expect(rec.problems(t), t).toEqual([]);

    // Group 2's process dies: its tickers are not live (the state says so), group 1's flow on.
    await g2.stop("SIGKILL");
    await until(() => c.connection.state === "reconnecting", 5_000, "reconnecting");
    expect(c.routes()[0]?.state).toBe("reconnecting");
    const goog = rec.count("GOOG");
    await until(() => rec.count("GOOG") >= goog + 10, 5_000, "group 1 still streaming");
    const aapl = rec.count("AAPL");
    await g2.start();
    await until(() => c.connection.state === "connected", 15_000, "connected again");
    await until(() => rec.count("AAPL") >= aapl + 10 && rec.count("MSFT") > 0, 10_000, "group 2 streaming again");
    // A restarted memory broker is a new epoch: a gap, said (never a silent one).
    expect(rec.gaps).toEqual(expect.arrayContaining(["AAPL", "MSFT"]));
    for (const t of all) expect(rec.problems(t), t).toEqual([]);

    // Group 2's tickers dropped: its connection closes; group 1's stay.
    c.unsubscribe(["AAPL", "MSFT"]);
    await until(() => c.routes().length === 0, 5_000, "the route connection closed");
    expect(c.tickers).toEqual(["GOOG", "TSLA"]);
    const tsla = rec.count("TSLA");
    await until(() => rec.count("TSLA") >= tsla + 5, 5_000, "group 1 still streaming");
    expect(c.connection.state).toBe("connected");
  });
});
