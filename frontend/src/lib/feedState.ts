// FeedState: the bookkeeping of one client's feed, with no React, no DOM and no socket.
//
// It takes the server's messages (and quotes polled over REST) and says what each one
// changed; it builds the frames to send. What it keeps per ticker:
// - the last `seq` taken and the `epoch` (seq space) it belongs to, so a `price_update` at or
//   below that seq is dropped (duplicates, replays, out of order) and a reconnect can
//   `resume` from it ({"seq", "epoch"} only: a seq from an unknown epoch would skip the new
//   stream);
// - the latest quote, so a polled quote no newer than it is dropped;
// - the tickers the connection holds, so watchlist edits become subscribe/unsubscribe frames.
// A `snapshot` is always taken and restarts the seq (a `gap: true` one is flagged: history
// broke there); a `subscribed` reply whose epoch differs from the one known forgets the
// ticker's seq (a new seq space). The wire protocol is docs/protocol.md
// (shared DESIGN.md, "Resume and epochs"); the Python client (stockfeed.client.core) keeps
// the same rules.

import type { MarketStatus, PriceMessage, Quote, ServerMessage, Tick } from "./types";

/** Where to resume a ticker from: the last seq taken, in the epoch it belongs to. */
export interface ResumePoint {
  seq: number;
  epoch: string;
}

export type ResumeMap = Record<string, ResumePoint>;

export interface SubscribeFrame {
  action: "subscribe";
  tickers: string[];
  /** Present only when at least one ticker has a resume point. */
  resume?: ResumeMap;
}

export interface UnsubscribeFrame {
  action: "unsubscribe";
  tickers: string[];
}

export type ClientFrame = SubscribeFrame | UnsubscribeFrame;

/** How a quote arrived: pushed on the socket or polled over REST. */
export type QuoteSource = "ws" | "rest";

/** Why a quote was not taken. */
export type DropReason =
  | "malformed" // no ticker, seq or data
  | "duplicate" // the same seq (socket) or timestamp (REST) as the one held
  | "older"; // a lower seq (socket) or an older timestamp (REST) than the one held

/** What one message changed. */
export type FeedChange =
  | {
      kind: "quote";
      source: QuoteSource;
      quote: Quote;
      /** For the chart; null when the quote has no price. */
      tick: Tick | null;
      /** A `snapshot` with `gap: true`: updates were lost before it. */
      gap: boolean;
    }
  | { kind: "drop"; source: QuoteSource; reason: DropReason; ticker: string | null; seq: number | null }
  /** A `subscribed` reply: `reset` names the tickers whose seq space changed (seq forgotten). */
  | { kind: "epochs"; reset: string[] }
  | { kind: "market"; status: MarketStatus }
  | { kind: "ticker_error"; ticker: string; code: string; message: string }
  /** Nothing the feed's state keeps (heartbeat, pong, an error without a ticker, ...). */
  | { kind: "other"; message: ServerMessage };

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

export class FeedState {
  private readonly seqs = new Map<string, number>();
  private readonly epochs = new Map<string, string>();
  private readonly latest = new Map<string, Quote>();
  private held = new Set<string>();

  /** A message from the socket. `now` (epoch ms) stamps the quote's `receivedAt`. */
  receive(msg: ServerMessage, now: number = Date.now()): FeedChange {
    switch (msg.type) {
      case "price_update":
      case "snapshot":
        return this.take(msg, "ws", now);
      case "subscribed": {
        const reset: string[] = [];
        for (const [ticker, epoch] of Object.entries(msg.epochs ?? {})) {
          // A new epoch is a new seq space: what we saw before no longer orders updates.
          if (this.epochs.get(ticker) !== epoch) {
            this.seqs.delete(ticker);
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

  /** The socket opened holding nothing: it will hold `tickers`; the frame that asks for
   * them, resuming where possible (null when there are none). */
  connected(tickers: readonly string[]): SubscribeFrame | null {
    this.held = new Set(tickers);
    return tickers.length > 0 ? this.subscribeFrame(tickers) : null;
  }

  /** The frames that take the connection from what it holds to `want` (null: nothing to
   * send). Nothing changes until `applied` says a frame went out. */
  changes(want: Iterable<string>): { subscribe: SubscribeFrame | null; unsubscribe: UnsubscribeFrame | null } {
    const wanted = new Set(want);
    const added = [...wanted].filter((t) => !this.held.has(t));
    const removed = [...this.held].filter((t) => !wanted.has(t));
    return {
      subscribe: added.length > 0 ? this.subscribeFrame(added) : null,
      unsubscribe: removed.length > 0 ? { action: "unsubscribe", tickers: removed } : null,
    };
  }

  /** A frame was sent: the connection now holds (or no longer holds) its tickers. */
  applied(frame: ClientFrame): void {
    if (frame.action === "subscribe") frame.tickers.forEach((t) => this.held.add(t));
    else frame.tickers.forEach((t) => this.held.delete(t));
  }

  /** A subscribe frame for `tickers`, with a `resume` map when any can resume. */
  subscribeFrame(tickers: readonly string[]): SubscribeFrame {
    const resume = this.resumeMap(tickers);
    return Object.keys(resume).length > 0
      ? { action: "subscribe", tickers: [...tickers], resume }
      : { action: "subscribe", tickers: [...tickers] };
  }

  /** Resume points of `tickers` (default: those the connection holds) that have both a
   * seq and an epoch. */
  resumeMap(tickers: Iterable<string> = this.held): ResumeMap {
    const resume: ResumeMap = {};
    for (const t of tickers) {
      const seq = this.seqs.get(t);
      const epoch = this.epochs.get(t);
      if (seq !== undefined && epoch !== undefined) resume[t] = { seq, epoch };
    }
    return resume;
  }

  /** The tickers the connection holds (as far as the frames sent say). */
  holding(): string[] {
    return [...this.held];
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

  private take(msg: PriceMessage, source: QuoteSource, now: number): FeedChange {
    const t = msg.ticker;
    if (typeof t !== "string" || typeof msg.seq !== "number" || !msg.data) {
      return { kind: "drop", source, reason: "malformed", ticker: typeof t === "string" ? t : null, seq: null };
    }
    if (source === "ws") {
      // Within one epoch the server never repeats or lowers a seq; a snapshot restarts.
      const seen = this.seqs.get(t);
      if (msg.type === "price_update" && seen !== undefined && msg.seq <= seen) {
        return { kind: "drop", source, reason: msg.seq === seen ? "duplicate" : "older", ticker: t, seq: msg.seq };
      }
    } else {
      // The socket may already have delivered this quote or a newer one.
      const prev = this.latest.get(t);
      if (prev && msg.timestamp <= prev.timestamp) {
        return { kind: "drop", source, reason: msg.timestamp === prev.timestamp ? "duplicate" : "older", ticker: t, seq: msg.seq };
      }
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
    const gap = source === "ws" && msg.type === "snapshot" && msg.gap === true;
    return { kind: "quote", source, quote, tick: tickOf(quote), gap };
  }
}
