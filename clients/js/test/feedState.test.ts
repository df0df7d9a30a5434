import { describe, expect, it } from "vitest";
import { FeedState, type FeedChange } from "../src/feedState.js";
import type { BarInterval, BarMessage, BarsMessage, PriceMessage, Snapshot } from "../src/messages.js";

const NOW = 1_764_101_234_567;

function msg(type: PriceMessage["type"], seq: number, extra: Partial<Snapshot> = {}): PriceMessage {
  return {
    type,
    epoch: type === "snapshot" ? "e1" : undefined,
    ticker: "AAPL",
    seq,
    timestamp: NOW + seq,
    data: {
      price: 100 + seq,
      change: null,
      change_percent: null,
      volume: 10 * seq,
      open: null,
      high: null,
      low: null,
      prev_close: null,
      market_time: NOW - 1000 + seq,
    },
    ...extra,
  } as PriceMessage;
}
const update = (seq: number, extra: Partial<Snapshot> = {}) => msg("price_update", seq, extra);
const snapshot = (seq: number, extra: Partial<Snapshot> = {}) => msg("snapshot", seq, extra);
const subscribed = (epochs: Record<string, string>) => ({ type: "subscribed" as const, tickers: Object.keys(epochs), epochs });

/** The seqs of the quotes taken among `changes`. */
const taken = (changes: FeedChange[]) => changes.flatMap((c) => (c.kind === "quote" ? [c.quote.seq] : []));

describe("FeedState", () => {
  it("takes a quote with its tick and receivedAt", () => {
    const feed = new FeedState();
    const change = feed.receive(update(1, { stale: true }), 42);
    expect(change).toEqual({
      kind: "quote",
      source: "ws",
      gap: false,
      quote: { ticker: "AAPL", seq: 1, timestamp: NOW + 1, data: update(1).data, stale: true, receivedAt: 42 },
      tick: { ticker: "AAPL", time: NOW - 999, price: 101, volume: 10 },
    });
    expect(feed.lastSeq("AAPL")).toBe(1);
    expect(feed.quote("AAPL")?.seq).toBe(1);
  });

  it("drops duplicates", () => {
    const feed = new FeedState();
    feed.receive(update(5));
    expect(feed.receive(update(5, { data: { ...update(5).data, price: 999 } }))).toEqual({
      kind: "drop",
      source: "ws",
      reason: "duplicate",
      ticker: "AAPL",
      seq: 5,
    });
    expect(feed.quote("AAPL")?.data.price).toBe(105);
  });

  it("drops older and out-of-order seqs, keeps the newest", () => {
    const feed = new FeedState();
    const changes = [7, 8, 6, 10, 9, 11].map((seq) => feed.receive(update(seq)));
    expect(taken(changes)).toEqual([7, 8, 10, 11]);
    expect(changes[2]).toMatchObject({ kind: "drop", reason: "older", seq: 6 });
    expect(feed.lastSeq("AAPL")).toBe(11);
  });

  it("keeps seqs per ticker", () => {
    const feed = new FeedState();
    feed.receive(update(9));
    expect(feed.receive(update(3, { ticker: "MSFT" })).kind).toBe("quote");
    expect(feed.lastSeq("AAPL")).toBe(9);
    expect(feed.lastSeq("MSFT")).toBe(3);
  });

  it("drops a malformed quote", () => {
    const feed = new FeedState();
    const broken = { ...update(1), seq: "1" } as unknown as PriceMessage;
    expect(feed.receive(broken)).toMatchObject({ kind: "drop", reason: "malformed", ticker: "AAPL" });
    expect(feed.lastSeq("AAPL")).toBeUndefined();
  });

  it("a new epoch resets the seq: lower seqs are taken again", () => {
    const feed = new FeedState();
    expect(feed.receive(subscribed({ AAPL: "e1" }))).toEqual({ kind: "epochs", reset: ["AAPL"] });
    feed.receive(update(41));
    // The same epoch again (a reconnect that resumed): the seq stays.
    expect(feed.receive(subscribed({ AAPL: "e1" }))).toEqual({ kind: "epochs", reset: [] });
    expect(feed.receive(update(41)).kind).toBe("drop");
    // The server restarted its seq space.
    expect(feed.receive(subscribed({ AAPL: "e2" }))).toEqual({ kind: "epochs", reset: ["AAPL"] });
    expect(feed.lastSeq("AAPL")).toBeUndefined();
    expect(feed.epoch("AAPL")).toBe("e2");
    expect(feed.receive(update(2))).toMatchObject({ kind: "quote", quote: { seq: 2 } });
  });

  it("passes a gap snapshot on, flagged, and restarts the seq from it", () => {
    const feed = new FeedState();
    feed.receive(subscribed({ AAPL: "e1" }));
    feed.receive(update(50));
    const change = feed.receive(snapshot(30, { gap: true, epoch: "e1" }));
    expect(change).toMatchObject({ kind: "quote", gap: true, quote: { seq: 30 } });
    expect(feed.lastSeq("AAPL")).toBe(30);
    expect(feed.receive(update(31)).kind).toBe("quote");
    // A plain snapshot at or below the seq taken, same epoch: a duplicate.
    expect(feed.receive(snapshot(31))).toMatchObject({ kind: "drop", reason: "duplicate" });
    expect(feed.receive(snapshot(12))).toMatchObject({ kind: "drop", reason: "older" });
    // A newer one is taken; one of another epoch restarts the seq.
    expect(feed.receive(snapshot(40))).toMatchObject({ kind: "quote", gap: false, quote: { seq: 40 } });
    expect(feed.receive(snapshot(3, { epoch: "e9" }))).toMatchObject({ kind: "quote", gap: false, quote: { seq: 3 } });
    expect(feed.epoch("AAPL")).toBe("e9");
    expect(feed.lastSeq("AAPL")).toBe(3);
  });

  it("resumes after a reconnect with seq and epoch, only where both are known", () => {
    const feed = new FeedState();
    // Before any epoch is known: a plain subscribe.
    expect(feed.connected(["AAPL", "MSFT"])).toEqual([{ action: "subscribe", tickers: ["AAPL", "MSFT"] }]);
    feed.receive(subscribed({ AAPL: "e1", MSFT: "m1" }));
    feed.receive(snapshot(41, { epoch: "e1" }));
    feed.receive(update(42));
    // MSFT has an epoch but no seq yet: not resumed.
    expect(feed.resumeMap()).toEqual({ AAPL: { seq: 42, epoch: "e1" } });
    expect(feed.connected(["AAPL", "MSFT"])).toEqual([
      {
        action: "subscribe",
        tickers: ["AAPL", "MSFT"],
        resume: { AAPL: { seq: 42, epoch: "e1" } },
      },
    ]);
    expect(feed.connected([])).toEqual([]);
  });

  it("a seq without an epoch (polled before subscribing) is not a resume point", () => {
    const feed = new FeedState();
    feed.receivePolled(update(10));
    expect(feed.lastSeq("AAPL")).toBe(10);
    expect(feed.subscribeFrames(["AAPL"])).toEqual([{ action: "subscribe", tickers: ["AAPL"] }]);
  });

  it("keeps what each connection holds apart (ticker groups' route connections), seqs per ticker", () => {
    const feed = new FeedState();
    feed.connected(["AAPL", "MSFT"]);
    feed.receive(subscribed({ AAPL: "e1" }));
    feed.receive(update(5));
    // MSFT was sent to the route g2-0: the main connection no longer holds it.
    feed.refused("MSFT");
    expect(feed.connected(["MSFT"], "g2-0")).toEqual([{ action: "subscribe", tickers: ["MSFT"] }]);
    feed.receive(subscribed({ MSFT: "m1" }));
    feed.receive(update(7, { ticker: "MSFT" }));
    expect(feed.holding()).toEqual(["AAPL"]);
    expect(feed.holding("g2-0")).toEqual(["MSFT"]);
    expect(feed.resumeMap()).toEqual({ AAPL: { seq: 5, epoch: "e1" }, MSFT: { seq: 7, epoch: "m1" } });
    expect(feed.changes(["AAPL"])).toEqual({ subscribe: [], unsubscribe: null });
    expect(feed.changes([], "g2-0")).toEqual({ subscribe: [], unsubscribe: { action: "unsubscribe", tickers: ["MSFT"] } });
    // A route connection reconnecting resumes its tickers; the main one's are not touched.
    expect(feed.connected(["MSFT"], "g2-0")).toEqual([{ action: "subscribe", tickers: ["MSFT"], resume: { MSFT: { seq: 7, epoch: "m1" } } }]);
    expect(feed.holding()).toEqual(["AAPL"]);
    // Closed for good: its tickers are unsubscribed (late messages dropped, seqs forgotten).
    feed.disconnected("g2-0");
    expect(feed.holding("g2-0")).toEqual([]);
    expect(feed.receive(update(8, { ticker: "MSFT" }))).toMatchObject({ kind: "drop", reason: "unwanted" });
    expect(feed.resumeMap()).toEqual({ AAPL: { seq: 5, epoch: "e1" } });
  });

  it("turns watchlist edits into frames; unsubscribed tickers leave the resume map", () => {
    const feed = new FeedState();
    feed.connected(["AAPL"]);
    feed.receive(subscribed({ AAPL: "e1" }));
    feed.receive(update(5));
    const add = feed.changes(["AAPL", "MSFT"]);
    expect(add).toEqual({ subscribe: [{ action: "subscribe", tickers: ["MSFT"] }], unsubscribe: null });
    // Not sent (socket closed in between): nothing changes, the next edit asks again.
    expect(feed.changes(["AAPL", "MSFT"]).subscribe[0]?.tickers).toEqual(["MSFT"]);
    feed.applied(add.subscribe[0]!);
    feed.receive(subscribed({ AAPL: "e1", MSFT: "m1" }));
    feed.receive(update(7, { ticker: "MSFT" }));
    expect(feed.holding()).toEqual(["AAPL", "MSFT"]);
    expect(feed.resumeMap()).toEqual({ AAPL: { seq: 5, epoch: "e1" }, MSFT: { seq: 7, epoch: "m1" } });

    const drop = feed.changes(["MSFT"]);
    expect(drop).toEqual({ subscribe: [], unsubscribe: { action: "unsubscribe", tickers: ["AAPL"] } });
    feed.applied(drop.unsubscribe!);
    expect(feed.holding()).toEqual(["MSFT"]);
    expect(feed.resumeMap()).toEqual({ MSFT: { seq: 7, epoch: "m1" } });
    // What was in flight for the dropped ticker is not taken; its seq is forgotten, so
    // asked for again it starts afresh (a plain snapshot, no old resume point).
    expect(feed.receive(update(6))).toMatchObject({ kind: "drop", reason: "unwanted" });
    expect(feed.lastSeq("AAPL")).toBeUndefined();
    // The reconnect subscribes the watchlist as it is now.
    expect(feed.connected(["MSFT"])).toEqual([{ action: "subscribe", tickers: ["MSFT"], resume: { MSFT: { seq: 7, epoch: "m1" } } }]);
    expect(feed.changes(["MSFT"])).toEqual({ subscribe: [], unsubscribe: null });
  });

  it("asks for bars, grouped by intervals, and again for a held ticker wanting a new interval", () => {
    const feed = new FeedState();
    const want = new Map<string, BarInterval[]>([
      ["AAPL", ["1m", "5m"]],
      ["MSFT", ["1m", "5m"]],
      ["TSLA", []],
    ]);
    expect(feed.connected(want)).toEqual([
      { action: "subscribe", tickers: ["AAPL", "MSFT"], bars: ["1m", "5m"] },
      { action: "subscribe", tickers: ["TSLA"] },
    ]);
    const more = feed.changes(new Map([...want, ["TSLA", ["1h"]]]));
    expect(more).toEqual({ subscribe: [{ action: "subscribe", tickers: ["TSLA"], bars: ["1h"] }], unsubscribe: null });
    feed.applied(more.subscribe[0]!);
    expect(feed.changes(new Map([...want, ["TSLA", ["1h"]]]))).toEqual({ subscribe: [], unsubscribe: null });
  });

  it("an interval no longer wanted: the ticker is dropped and asked again, resuming, with the rest", () => {
    const feed = new FeedState();
    feed.connected(new Map<string, BarInterval[]>([["AAPL", ["1m", "5m"]], ["MSFT", ["5m"]]]));
    feed.receive(subscribed({ AAPL: "e1", MSFT: "m1" }));
    feed.receive(update(5));
    const fewer = feed.changes(new Map<string, BarInterval[]>([["AAPL", ["5m"]], ["MSFT", ["5m"]]]));
    expect(fewer).toEqual({
      unsubscribe: { action: "unsubscribe", tickers: ["AAPL"] },
      subscribe: [{ action: "subscribe", tickers: ["AAPL"], bars: ["5m"], resume: { AAPL: { seq: 5, epoch: "e1" } } }],
    });
    feed.applied(fewer.unsubscribe!);
    for (const f of fewer.subscribe) feed.applied(f);
    expect(feed.changes(new Map<string, BarInterval[]>([["AAPL", ["5m"]], ["MSFT", ["5m"]]]))).toEqual({ subscribe: [], unsubscribe: null });
    // No bars at all any more: the same, without `bars`.
    const none = feed.changes(new Map<string, BarInterval[]>([["AAPL", []], ["MSFT", ["5m"]]]));
    expect(none.unsubscribe).toEqual({ action: "unsubscribe", tickers: ["AAPL"] });
    expect(none.subscribe.map((f) => [f.tickers, f.bars])).toEqual([[["AAPL"], undefined]]);
  });

  it("splits a long subscribe into frames of 25 tickers", () => {
    const feed = new FeedState();
    const tickers = Array.from({ length: 60 }, (_, i) => `T${i}`);
    expect(feed.connected(tickers).map((f) => f.tickers.length)).toEqual([25, 25, 10]);
  });

  it("takes bars: a bars message resets, a bar is dropped when already seen", () => {
    const feed = new FeedState();
    const bar = (time: number, close: number) => ({ time, open: 1, high: 2, low: 0.5, close, volume: 10, final: false });
    const bars: BarsMessage = { type: "bars", ticker: "AAPL", interval: "1m", seq: 10, bars: [bar(60, 1), bar(120, 1.5)] };
    const one = (seq: number, time: number, close: number): BarMessage => ({ type: "bar", ticker: "AAPL", interval: "1m", seq, bar: bar(time, close) });
    expect(feed.receive(bars)).toMatchObject({ kind: "bars", reset: true, seq: 10, bars: bars.bars });
    expect(feed.receive(one(11, 120, 1.6))).toMatchObject({ kind: "bars", reset: false, bars: [{ time: 120, close: 1.6 }] });
    // One update closes a bar and opens the next: the same seq, two times.
    expect(feed.receive(one(12, 120, 1.7))).toMatchObject({ kind: "bars" });
    expect(feed.receive(one(12, 180, 1.7))).toMatchObject({ kind: "bars" });
    // A replay repeats them: dropped.
    expect(feed.receive(one(12, 180, 1.7))).toMatchObject({ kind: "drop", reason: "duplicate" });
    expect(feed.receive(one(11, 120, 1.6))).toMatchObject({ kind: "drop", reason: "older" });
    // Another interval keeps its own seqs.
    expect(feed.receive({ ...one(11, 0, 1), interval: "5m" })).toMatchObject({ kind: "bars", interval: "5m" });
    // A new epoch forgets them.
    feed.receive(subscribed({ AAPL: "e2" }));
    expect(feed.receive(one(2, 240, 1))).toMatchObject({ kind: "bars" });
  });

  it("merges polled quotes: only newer ones, which move the seq on", () => {
    const feed = new FeedState();
    feed.receive(subscribed({ AAPL: "e1" }));
    feed.receive(update(12));
    // What the socket already delivered, or older: dropped.
    expect(feed.receivePolled(update(12))).toMatchObject({ kind: "drop", source: "rest", reason: "duplicate" });
    expect(feed.receivePolled(update(11))).toMatchObject({ kind: "drop", source: "rest", reason: "older" });
    // Newer (published while the socket was down): taken, and the socket's older seqs drop.
    expect(feed.receivePolled(update(15), 7)).toMatchObject({ kind: "quote", source: "rest", gap: false, quote: { seq: 15, receivedAt: 7 } });
    expect(feed.lastSeq("AAPL")).toBe(15);
    expect(feed.receive(update(14)).kind).toBe("drop");
    expect(feed.resumeMap(["AAPL"])).toEqual({ AAPL: { seq: 15, epoch: "e1" } });
  });

  it("reports market status and per-ticker errors; the rest is other", () => {
    const feed = new FeedState();
    const status = {
      type: "market_status" as const,
      market: "XNYS",
      is_open: true,
      session: "regular" as const,
      next_open: null,
      next_close: null,
    };
    expect(feed.receive(status)).toEqual({ kind: "market", status });
    expect(feed.receive({ type: "error", code: "unknown_ticker", message: "no such ticker", ticker: "ZZZZ" })).toEqual({
      kind: "ticker_error",
      ticker: "ZZZZ",
      code: "unknown_ticker",
      message: "no such ticker",
    });
    expect(feed.receive({ type: "error", code: "bad_message", message: "?" }).kind).toBe("other");
    expect(feed.receive({ type: "heartbeat", timestamp: NOW }).kind).toBe("other");
  });

  it("gives no tick for a quote without a price, and falls back to the timestamp for time", () => {
    const feed = new FeedState();
    const noPrice = update(1, { data: { ...update(1).data, price: null as unknown as number } });
    expect(feed.receive(noPrice)).toMatchObject({ kind: "quote", tick: null });
    const noMarketTime = update(2, { data: { ...update(2).data, market_time: null } });
    expect(feed.receive(noMarketTime)).toMatchObject({ tick: { time: NOW + 2 } });
  });
});
