// FeedState: the bookkeeping of one client's feed, with no socket, no timers and no React.
//
// It takes the server's messages (and quotes polled over REST) and says what each one
// changed; it builds the frames to send. What it keeps per ticker:
// - the last `seq` taken and the `epoch` (seq space) it belongs to, so a `price_update` at or
//   below that seq is dropped (duplicates, replays, out of order) and a reconnect can
//   `resume` from it ({"seq", "epoch"} only: a seq from an unknown epoch would skip the new
//   stream);
// - the latest quote, so a polled quote no newer than it is dropped;
// - per bar interval, the seq of the last `bar` taken, so a replayed `bar` is dropped too;
// - the tickers the connection holds (and the bar intervals asked for them), so changes to
//   what is wanted become subscribe/unsubscribe frames. A client of a deployment split into
//   ticker groups has more than one connection (docs/protocol.md, "Ticker groups"): the
//   methods about holdings take a connection key (`""`, the default, is the main one; a
//   route key names the others), while seqs, epochs and quotes are per ticker, whichever
//   connection brought them (a ticker is held by one connection at a time).
// A `snapshot` restarts the seq; one with `gap: true` is always taken (history broke there:
// the caller must hear it), a plain one at or below the seq already taken in the same epoch
// is a duplicate. A `subscribed` reply whose epoch differs from the one known forgets the
// ticker's seqs (a new seq space). The wire protocol is docs/protocol.md ("Resume and
// epochs"); the Python client (stockfeed.client.core) keeps the same rules.

import type {
  Bar,
  BarInterval,
  BarMessage,
  BarsMessage,
  ClientFrame,
  MarketStatus,
  PriceMessage,
  QuoteData,
  ResumeMap,
  ServerMessage,
  SubscribeFrame,
  UnsubscribeFrame,
} from "./messages.js";

/** A ticker's latest quote as the client holds it. */
export interface Quote {
  ticker: string;
  seq: number;
  /** Published, epoch ms. */
  timestamp: number;
  data: QuoteData;
  /** The server marked it stale (older than its freshness TTL). */
  stale: boolean;
  /** Epoch ms when this client took it. */
  receivedAt: number;
}

/** One tick as a chart needs it. */
export interface Tick {
  ticker: string;
  /** Epoch ms of the quote at the source (the publish time when the source has none). */
  time: number;
  price: number;
  /** Cumulative day volume. */
  volume: number | null;
}

/** How a quote arrived: pushed on the socket or polled over REST. */
export type QuoteSource = "ws" | "rest";

/** Why a message was not taken. */
export type DropReason =
  | "malformed" // no ticker, seq or data
  | "duplicate" // the same seq (socket) or timestamp (REST) as the one held
  | "older" // a lower seq (socket) or an older timestamp (REST) than the one held
  | "unwanted"; // a ticker the connection no longer holds (in flight when it was dropped)

/** What one message changed. */
export type FeedChange =
  | {
      kind: "quote";
      source: QuoteSource;
      quote: Quote;
      /** For a chart; null when the quote has no price. */
      tick: Tick | null;
      /** A `snapshot` with `gap: true`: updates were lost before it. */
      gap: boolean;
    }
  | { kind: "drop"; source: QuoteSource; reason: DropReason; ticker: string | null; seq: number | null }
  /** A `bars` message (all of them) or a `bar` (one, replacing the bar of its time). */
  | { kind: "bars"; ticker: string; interval: BarInterval; seq: number; bars: Bar[]; reset: boolean }
  /** A `subscribed` reply: `reset` names the tickers whose seq space changed (seqs forgotten). */
  | { kind: "epochs"; reset: string[] }
  | { kind: "market"; status: MarketStatus }
  | { kind: "ticker_error"; ticker: string; code: string; message: string }
  /** Nothing the feed's state keeps (heartbeat, pong, an error without a ticker, ...). */
  | { kind: "other"; message: ServerMessage };

/** What the connection should hold: tickers, with the bar intervals wanted for each. */
export type Want = readonly string[] | ReadonlyMap<string, readonly BarInterval[]>;

/** A subscribe frame stays well under the server's 4096-byte message limit with this many
 * tickers and their resume points. */
export const TICKERS_PER_FRAME = 25;

/** The chart's view of a quote; null when it carries no price. */
export function tickOf(quote: Quote): Tick | null {
  if (typeof quote.data.price !== "number") return null;
  return {
    ticker: quote.ticker,
    time: quote.data.market_time ?? quote.timestamp,
    price: quote.data.price,
    volume: quote.data.volume,
  };
}

function wantMap(want: Want): Map<string, Set<BarInterval>> {
  const out = new Map<string, Set<BarInterval>>();
  if (Array.isArray(want)) for (const t of want as readonly string[]) out.set(t, new Set());
  else for (const [t, bars] of want as ReadonlyMap<string, readonly BarInterval[]>) out.set(t, new Set(bars));
  return out;
}

const barKey = (ticker: string, interval: string) => `${ticker} ${interval}`;

export class FeedState {
  private readonly seqs = new Map<string, number>();
  private readonly epochs = new Map<string, string>();
  private readonly latest = new Map<string, Quote>();
  /** Per "TICKER interval": the seq of the last bar taken and the bar times taken at it. */
  private readonly barSeqs = new Map<string, { seq: number; times: Set<number> }>();
  /** Per connection key (`""`: the main connection): the tickers it holds, with their bars. */
  private readonly conns = new Map<string, Map<string, Set<BarInterval>>>();
  /** Unsubscribed and not asked for since: what still arrives for them was in flight. */
  private readonly gone = new Set<string>();

  /** A message from the socket. `now` (epoch ms) stamps the quote's `receivedAt`. */
  receive(msg: ServerMessage, now: number = Date.now()): FeedChange {
    switch (msg.type) {
      case "price_update":
      case "snapshot":
        return this.take(msg, "ws", now);
      case "bars":
      case "bar":
        return this.takeBars(msg);
      case "subscribed": {
        const reset: string[] = [];
        for (const [ticker, epoch] of Object.entries(msg.epochs ?? {})) {
          // A new epoch is a new seq space: what we saw before no longer orders updates.
          if (this.epochs.get(ticker) !== epoch) {
            this.forgetSeqs(ticker);
            reset.push(ticker);
          }
          this.epochs.set(ticker, epoch);
        }
        return { kind: "epochs", reset };
      }
      case "market_status":
        return { kind: "market", status: msg };
      case "error":
        if (msg.ticker) return { kind: "ticker_error", ticker: msg.ticker, code: msg.code, message: msg.message };
        return { kind: "other", message: msg };
      default:
        return { kind: "other", message: msg };
    }
  }

  /** A quote polled over REST (`/api/quotes`): taken only when newer than the one held. */
  receivePolled(msg: PriceMessage, now: number = Date.now()): FeedChange {
    return this.take(msg, "rest", now);
  }

  /** The socket opened holding nothing: it will hold `want`; the frames that ask for it,
   * resuming where possible (none when nothing is wanted). */
  connected(want: Want, conn = ""): SubscribeFrame[] {
    const held = wantMap(want);
    this.conns.set(conn, held);
    if (conn === "") this.gone.clear();
    else for (const t of held.keys()) this.gone.delete(t);
    return this.subscribeFrames(held);
  }

  /** The connection `conn` is closed for good (a route connection left with nothing to
   * hold): what it held is unsubscribed (seqs forgotten, late messages dropped). */
  disconnected(conn: string): void {
    const tickers = this.holding(conn);
    if (tickers.length > 0) this.applied({ action: "unsubscribe", tickers }, conn);
    this.conns.delete(conn);
  }

  private held(conn: string): Map<string, Set<BarInterval>> {
    let held = this.conns.get(conn);
    if (!held) {
      held = new Map();
      this.conns.set(conn, held);
    }
    return held;
  }

  /** The frames that take the connection from what it holds to `want`. Nothing changes
   * until `applied` says a frame went out. A held ticker wanted with a bar interval it was
   * not asked with is asked again, with that interval. One held with an interval no longer
   * wanted is dropped and asked again (resuming where it is) with those still wanted: the
   * protocol has no way to drop one interval, and a connection's bar streams are counted
   * (`STOCKFEED_MAX_BAR_STREAMS`), so a chart that moves from interval to interval must not
   * keep them all. */
  changes(want: Want, conn = ""): { subscribe: SubscribeFrame[]; unsubscribe: UnsubscribeFrame | null } {
    const wanted = wantMap(want);
    const held = this.held(conn);
    const add = new Map<string, Set<BarInterval>>();
    const narrowed: string[] = [];
    for (const [t, bars] of wanted) {
      const has = held.get(t);
      if (!has) add.set(t, bars);
      else if ([...has].some((b) => !bars.has(b))) {
        narrowed.push(t);
        add.set(t, bars);
      } else {
        const missing = [...bars].filter((b) => !has.has(b));
        if (missing.length > 0) add.set(t, new Set(missing));
      }
    }
    const removed = [...[...held.keys()].filter((t) => !wanted.has(t)), ...narrowed];
    return {
      subscribe: this.subscribeFrames(add),
      unsubscribe: removed.length > 0 ? { action: "unsubscribe", tickers: removed } : null,
    };
  }

  /** A frame was sent: the connection now holds (or no longer holds) its tickers. An
   * unsubscribed ticker's seqs are forgotten: asked for again, it starts afresh. */
  applied(frame: ClientFrame, conn = ""): void {
    const held = this.held(conn);
    if (frame.action === "subscribe") {
      for (const t of frame.tickers) {
        this.gone.delete(t);
        const bars = held.get(t) ?? new Set<BarInterval>();
        for (const b of frame.bars ?? []) bars.add(b);
        held.set(t, bars);
      }
    } else {
      for (const t of frame.tickers) {
        held.delete(t);
        this.gone.add(t);
        this.forgetSeqs(t);
        this.epochs.delete(t);
      }
    }
  }

  /** The server refused a ticker (or sent it to another ticker group's connection): the
   * connection `conn` does not hold it. Its seqs are kept (it may resume elsewhere). */
  refused(ticker: string, conn = ""): void {
    this.conns.get(conn)?.delete(ticker);
  }

  /** Subscribe frames for `want`, grouped by bar intervals, at most TICKERS_PER_FRAME
   * tickers each, with a `resume` map where any ticker can resume. */
  subscribeFrames(want: Want | Map<string, Set<BarInterval>>): SubscribeFrame[] {
    const groups = new Map<string, { bars: BarInterval[]; tickers: string[] }>();
    const entries = want instanceof Map ? [...want] : [...wantMap(want)];
    for (const [t, bars] of entries) {
      const list = [...bars].sort();
      const key = list.join(",");
      const g = groups.get(key) ?? { bars: list, tickers: [] };
      g.tickers.push(t);
      groups.set(key, g);
    }
    const frames: SubscribeFrame[] = [];
    for (const { bars, tickers } of groups.values()) {
      for (let i = 0; i < tickers.length; i += TICKERS_PER_FRAME) {
        const chunk = tickers.slice(i, i + TICKERS_PER_FRAME);
        const frame: SubscribeFrame = { action: "subscribe", tickers: chunk };
        if (bars.length > 0) frame.bars = bars;
        const resume = this.resumeMap(chunk);
        if (Object.keys(resume).length > 0) frame.resume = resume;
        frames.push(frame);
      }
    }
    return frames;
  }

  /** Resume points of `tickers` (default: those every connection holds) that have both a
   * seq and an epoch. */
  resumeMap(tickers: Iterable<string> = [...this.conns.values()].flatMap((held) => [...held.keys()])): ResumeMap {
    const resume: ResumeMap = {};
    for (const t of tickers) {
      const seq = this.seqs.get(t);
      const epoch = this.epochs.get(t);
      if (seq !== undefined && epoch !== undefined) resume[t] = { seq, epoch };
    }
    return resume;
  }

  /** The tickers the connection `conn` holds (as far as the frames sent say). */
  holding(conn = ""): string[] {
    return [...(this.conns.get(conn)?.keys() ?? [])];
  }

  lastSeq(ticker: string): number | undefined {
    return this.seqs.get(ticker);
  }

  epoch(ticker: string): string | undefined {
    return this.epochs.get(ticker);
  }

  quote(ticker: string): Quote | undefined {
    return this.latest.get(ticker);
  }

  private forgetSeqs(ticker: string): void {
    this.seqs.delete(ticker);
    for (const key of this.barSeqs.keys()) if (key.startsWith(`${ticker} `)) this.barSeqs.delete(key);
  }

  private take(msg: PriceMessage, source: QuoteSource, now: number): FeedChange {
    const t = msg.ticker;
    if (typeof t !== "string" || typeof msg.seq !== "number" || !msg.data) {
      return { kind: "drop", source, reason: "malformed", ticker: typeof t === "string" ? t : null, seq: null };
    }
    const drop = (reason: DropReason): FeedChange => ({ kind: "drop", source, reason, ticker: t, seq: msg.seq });
    const gap = source === "ws" && msg.type === "snapshot" && msg.gap === true;
    if (source === "ws") {
      if (this.gone.has(t)) return drop("unwanted");
      // Within one epoch the server never repeats or lowers a seq; a gap snapshot restarts.
      const seen = this.seqs.get(t);
      const sameEpoch = msg.type === "price_update" || !msg.epoch || msg.epoch === (this.epochs.get(t) ?? msg.epoch);
      if (!gap && sameEpoch && seen !== undefined && msg.seq <= seen) {
        return drop(msg.seq === seen ? "duplicate" : "older");
      }
      if (msg.type === "snapshot" && msg.epoch) {
        if (this.epochs.get(t) !== msg.epoch) this.forgetSeqs(t);
        this.epochs.set(t, msg.epoch);
      }
    } else {
      // The socket may already have delivered this quote or a newer one.
      const prev = this.latest.get(t);
      if (prev && msg.timestamp <= prev.timestamp) return drop(msg.timestamp === prev.timestamp ? "duplicate" : "older");
    }
    this.seqs.set(t, msg.seq);
    const quote: Quote = {
      ticker: t,
      seq: msg.seq,
      timestamp: msg.timestamp,
      data: msg.data,
      stale: msg.stale === true,
      receivedAt: now,
    };
    this.latest.set(t, quote);
    return { kind: "quote", source, quote, tick: tickOf(quote), gap };
  }

  private takeBars(msg: BarsMessage | BarMessage): FeedChange {
    const { ticker, interval, seq } = msg;
    const drop = (reason: DropReason): FeedChange => ({ kind: "drop", source: "ws", reason, ticker, seq });
    if (this.gone.has(ticker)) return drop("unwanted");
    const key = barKey(ticker, interval);
    if (msg.type === "bars") {
      // The whole recent series: it stands on its own (after a subscribe or a gap).
      this.barSeqs.set(key, { seq, times: new Set(msg.bars.map((b) => b.time)) });
      return { kind: "bars", ticker, interval, seq, bars: msg.bars, reset: true };
    }
    const last = this.barSeqs.get(key);
    // One update may change two bars (the one it closes and the one it opens): same seq,
    // different times. A replayed bar repeats a seq and time already taken.
    if (last && (seq < last.seq || (seq === last.seq && last.times.has(msg.bar.time)))) {
      return drop(seq === last.seq ? "duplicate" : "older");
    }
    if (!last || seq > last.seq) this.barSeqs.set(key, { seq, times: new Set([msg.bar.time]) });
    else last.times.add(msg.bar.time);
    return { kind: "bars", ticker, interval, seq, bars: [msg.bar], reset: false };
  }
}
