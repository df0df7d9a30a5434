// StockfeedClient: one connection to a stockfeed server's `/ws` endpoint that stays up.
//
//   const client = new StockfeedClient("ws://localhost:8000/ws", { tickers: ["AAPL"] });
//   client.on("quote", (q) => console.log(q.ticker, q.seq, q.data.price));
//   await client.connect();
//
// It reconnects by itself (2 s, 4 s, 8 s plus up to 20 % jitter, or when a `server_shutdown`
// said to come back), subscribes again with `resume` (the last seq and epoch of each
// ticker) so that the server replays what was missed, drops duplicates, and passes a gap
// snapshot on (the `gap` event) when the server could not replay: each ticker's seq only
// goes up, and a jump is always explained. Against a deployment split into ticker groups
// (docs/protocol.md, "Ticker groups") it follows the server's `wrong_group` refusals: the
// ticker moves to a connection of its own group (`/ws?route=KEY`, one per key, opened when
// first needed, closed when it holds nothing), whose messages reach the same listeners; the
// connection state is the worst of the connections'. The pieces: socket.ts (the socket's life),
// feedState.ts (seq/epoch bookkeeping, frames), transport.ts (URL, token, WebSocket
// implementation), rest.ts (the polling fallback's requests).

import { BAR_INTERVALS, parseMessage, ProtocolError } from "./messages.js";
import type { Bar, BarInterval, ErrorMessage, MarketStatus, PriceMessage, ServerMessage, Snapshot, UnknownMessage } from "./messages.js";
import { FeedState, type FeedChange, type Quote, type QuoteSource, type Tick } from "./feedState.js";
import { CloseCode, ErrorCode } from "./protocol.js";
import { ApiError, getJson, type FetchLike } from "./rest.js";
import { SocketController, type SocketSnapshot, type SocketState, type WebSocketConstructor } from "./socket.js";
import {
  AuthError,
  ConnectError,
  httpBase,
  openSocket,
  resolveToken,
  resolveWebSocket,
  socketUrl,
  type TokenCarrier,
  type TokenSource,
} from "./transport.js";
import type { Jitter } from "./backoff.js";

/**
 * - `connecting`, `connected`, `reconnecting`: the WebSocket's life; with route connections
 *   (ticker groups), the worst of them all (a ticker on a connection that is down is not
 *   live): `error` over `reconnecting` over `connecting` over `connected`;
 * - `polling`: quotes come over REST, because the socket gave up (`fallback`) or because
 *   real time was turned off (`realtime: false`);
 * - `error`: gave up (refused token, or out of attempts) with no polling to fall back on;
 * - `closed`: not started, or closed.
 */
export type ConnectionState = "closed" | "connecting" | "connected" | "reconnecting" | "polling" | "error";

export interface ConnectionInfo {
  state: ConnectionState;
  /** The reconnect attempt in progress (1..maxAttempts), 0 when none (of the connection
   * whose state `state` is, with route connections). */
  attempt: number;
  maxAttempts: number;
  /** Reconnect attempts made since the client was created. */
  reconnects: number;
  /** Round trip of the last answered ping on the main connection, ms. */
  latencyMs: number | null;
  /** The close code the server refused us with (4401, 4403), and its reason. */
  closeCode: number | null;
  closeReason: string | null;
  /** Real time wanted (false: polling by choice). */
  realtime: boolean;
  /** Polling because the socket gave up; it keeps being tried in the background. */
  fallback: boolean;
  /** The server refused the token (socket or REST): what it said. */
  authError: string | null;
}

export interface PollingOptions {
  /** How often quotes are fetched while polling (default 60 s). */
  intervalMs?: number;
  /** While polling after a failure, how often the socket is tried again (default 10 s). */
  probeIntervalMs?: number;
}

export interface SubscribeOptions {
  /** Bars wanted for these tickers (v1.1: `bars` then `bar` messages). */
  bars?: readonly BarInterval[];
}

export interface StockfeedClientOptions {
  /** Tickers to subscribe on connect. */
  tickers?: readonly string[];
  /** Bar intervals wanted for `tickers`. */
  bars?: readonly BarInterval[];
  /** A JWT when the server has auth on, or a function asked before each attempt. */
  token?: TokenSource;
  /** Where the token goes on the handshake (default `protocol`: the `bearer` subprotocol). */
  tokenIn?: TokenCarrier;
  /** The WebSocket implementation; default: the platform's, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect attempts in a row before giving up (default: never give up). */
  maxAttempts?: number;
  /** First reconnect delay (default 2000 ms: 2 s, 4 s, 8 s, 8 s, …). */
  baseDelayMs?: number;
  /** Extra wait per attempt (default: up to 20 % of the delay, at random). */
  jitter?: Jitter;
  /** Ping period (default 30 s); the pong gives `latencyMs`. */
  pingIntervalMs?: number;
  /** No answer to a ping (and no message) for this long: the connection is dead (10 s). */
  pongTimeoutMs?: number;
  /** A second ping this long after open, for a settled latency figure (2 s; 0: none). */
  settlePingMs?: number;
  /** An attempt not open after this long fails (10 s). */
  openTimeoutMs?: number;
  /** Fall back to polling `/api/quotes` when the socket gives up (needs a finite
   * `maxAttempts`, or a refused token), and allow `setRealtime(false)`. Off by default. */
  polling?: boolean | PollingOptions;
  /** Start polling by choice, not on the socket (with `polling`). */
  realtime?: boolean;
  /** The REST base (default: the WebSocket URL's host, http(s)). */
  httpUrl?: string;
  fetch?: FetchLike;
  /** Bars kept per ticker and interval (default 1000). */
  maxBars?: number;
  /** Where the connection for a ticker group's route key goes (see "Ticker groups" in the
   * README); default: this client's URL with `?route=KEY`, which a load balancer
   * (deploy/nginx/ticker-groups.conf) sends to the right group. */
  routeUrl?: (key: string) => string;
  now?: () => number;
}

export interface QuoteEvent {
  source: QuoteSource;
  /** For a chart; null when the quote has no price. */
  tick: Tick | null;
  gap: boolean;
}

export interface GapEvent {
  ticker: string;
  /** The `snapshot` with `gap: true` that stands in for the updates that were lost. */
  snapshot: Snapshot;
  quote: Quote;
}

export interface BarsEvent {
  ticker: string;
  interval: BarInterval;
  /** Every bar held now, oldest first. */
  bars: readonly Bar[];
  /** What this message brought: the recent series (`whole`, a `bars` message) or the one
   * bar that changed (a `bar`). */
  changed: readonly Bar[];
  whole: boolean;
}

export interface TickerErrorEvent {
  ticker: string;
  code: string;
  message: string;
}

export interface RouteEvent {
  ticker: string;
  /** The route key the server named: the ticker now goes to that connection. */
  route: string;
  /** The connection that refused it: null for the main one, else its route key. */
  from: string | null;
  /** The server's `wrong_group` message. */
  message: string;
}

/** A route connection (ticker groups): its key, its socket's state, what it holds. */
export interface RouteInfo {
  key: string;
  state: SocketState;
  attempt: number;
  tickers: string[];
}

export interface ClientEvents {
  /** Every typed server message, duplicates and the answers to the client's own pings left out. */
  message: (msg: ServerMessage) => void;
  /** The connection changed (state, attempt, latency, ...). */
  state: (info: ConnectionInfo, prev: ConnectionInfo) => void;
  /** A ticker's history broke: the server could not replay what was missed. */
  gap: (ev: GapEvent) => void;
  /** A quote taken (socket or REST), in seq order, never twice. */
  quote: (quote: Quote, ev: QuoteEvent) => void;
  /** Bars of a ticker and interval changed. */
  bars: (ev: BarsEvent) => void;
  /** A market's session changed (socket, or REST while polling). */
  market: (status: MarketStatus) => void;
  /** The server refused a ticker (`invalid_ticker`, `unknown_ticker`, `forbidden_ticker`, ...;
   * a `wrong_group` the client follows is a `route` event instead). */
  tickerError: (ev: TickerErrorEvent) => void;
  /** A message of a type this version does not know. */
  unknown: (msg: UnknownMessage) => void;
  /** A `wrong_group` refusal followed: the ticker moved to its ticker group's connection.
   * For logs and debugging; such a refusal is neither a `message` nor a `tickerError`. */
  route: (ev: RouteEvent) => void;
}

export interface ClientStats {
  /** Frames received on the socket. */
  messages: number;
  lastMessageAt: number | null;
  /** Quotes and bars dropped as already seen. */
  duplicates: number;
  /** Frames that broke the protocol (skipped). */
  malformed: number;
  gaps: number;
}

/** Per-ticker errors after which a ticker is not asked for again (until subscribed anew). */
const REFUSING = new Set<string>([ErrorCode.invalidTicker, ErrorCode.unknownTicker, ErrorCode.subscriptionLimit, ErrorCode.forbiddenTicker]);

/** What a route key may be before it goes into a URL; any other is not followed. */
const ROUTE_KEY = /^[A-Za-z0-9.=^-]{1,32}$/;
/** A ticker moved this many times with no `subscribed` holding it: a loop between
 * misconfigured groups; the next refusal is a `tickerError` like any other. */
const MAX_ROUTE_HOPS = 4;

const normalize = (t: string) => t.trim().toUpperCase();
const barKey = (ticker: string, interval: string) => `${ticker} ${interval}`;

type Handlers = { [K in keyof ClientEvents]: Set<ClientEvents[K]> };

/** A connection to a ticker group's route key (`/ws?route=KEY`). */
interface RouteConn {
  key: string;
  socket: SocketController;
  snap: SocketSnapshot;
}

const RANK: Record<SocketState, number> = { closed: 0, connected: 1, connecting: 2, reconnecting: 3, error: 4 };

export class StockfeedClient {
  /** The `/ws` endpoint (without the token). */
  readonly url: string;
  /** The REST API's base. */
  readonly httpUrl: string;

  private readonly o: StockfeedClientOptions;
  private readonly wsUrl: URL;
  private readonly feed = new FeedState();
  private readonly handlers: Handlers = {
    message: new Set(),
    state: new Set(),
    gap: new Set(),
    quote: new Set(),
    bars: new Set(),
    market: new Set(),
    tickerError: new Set(),
    unknown: new Set(),
    route: new Set(),
  };
  private readonly explicit = new Map<string, Set<BarInterval>>();
  private readonly retained = new Map<string, Map<BarInterval | "", number>>();
  private readonly refused = new Set<string>();
  private readonly barStore = new Map<string, readonly Bar[]>();
  private marketStore: Readonly<Record<string, MarketStatus>> = {};
  private socket: SocketController | null = null;
  private socketSnap: SocketSnapshot | null = null;
  private Impl: WebSocketConstructor | null = null;
  /** Ticker groups: the route key of each ticker a server sent elsewhere (kept while the
   * client lives: asked for again, the ticker goes straight there). */
  private readonly routeOf = new Map<string, string>();
  private readonly routeConns = new Map<string, RouteConn>();
  /** Moves per ticker since a `subscribed` last held it (MAX_ROUTE_HOPS). */
  private readonly hops = new Map<string, number>();
  private info: ConnectionInfo;
  private running = false;
  private realtime: boolean;
  private restAuthError: string | null = null;
  private carried = { reconnects: 0, messages: 0, lastMessageAt: null as number | null, latencyMs: null as number | null };
  private counts = { duplicates: 0, malformed: 0, gaps: 0 };
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private probeTimer: ReturnType<typeof setInterval> | null = null;
  private restAbort: AbortController | null = null;
  private syncQueued = false;
  /** What the last REST refresh asked for (tickers and their bar intervals). */
  private polled = "";
  private pending: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void; settled: boolean } | null = null;

  constructor(url: string, options: StockfeedClientOptions = {}) {
    this.o = options;
    this.wsUrl = socketUrl(url);
    this.url = this.wsUrl.toString();
    this.httpUrl = (options.httpUrl ?? httpBase(this.wsUrl)).replace(/\/$/, "");
    this.realtime = options.realtime ?? true;
    for (const t of options.tickers ?? []) this.explicit.set(normalize(t), new Set(options.bars ?? []));
    this.info = this.compute();
  }

  // -- events ------------------------------------------------------------------------------

  /** Listen to `event`; returns the function that stops listening. */
  on<K extends keyof ClientEvents>(event: K, handler: ClientEvents[K]): () => void {
    const set = this.handlers[event] as Set<ClientEvents[K]>;
    set.add(handler);
    return () => {
      set.delete(handler);
    };
  }

  private emit<K extends keyof ClientEvents>(event: K, ...args: Parameters<ClientEvents[K]>): void {
    for (const fn of [...this.handlers[event]] as ((...a: Parameters<ClientEvents[K]>) => void)[]) {
      try {
        fn(...args);
      } catch (err) {
        // One listener's bug must not cost the others (or the client) this message.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }

  // -- reading the feed --------------------------------------------------------------------

  /** The connection as it is now (the same object until something changes). */
  get connection(): ConnectionInfo {
    return this.info;
  }

  /** The latest quote of `ticker` (socket or REST), if any. */
  quote(ticker: string): Quote | undefined {
    return this.feed.quote(normalize(ticker));
  }

  /** The bars held for `ticker` and `interval`, oldest first (the same array until one changes). */
  bars(ticker: string, interval: BarInterval): readonly Bar[] {
    return this.barStore.get(barKey(normalize(ticker), interval)) ?? EMPTY_BARS;
  }

  /** Market sessions by market (`XNYS`, `CRYPTO`, `FX`): the same object until one changes. */
  get markets(): Readonly<Record<string, MarketStatus>> {
    return this.marketStore;
  }

  /** The last seq taken and its epoch, per ticker held: where a reconnect resumes from. */
  resumePoints(): Record<string, { seq: number; epoch: string }> {
    return this.feed.resumeMap();
  }

  /** The tickers the client asks for (explicitly or for a component), minus refused ones. */
  get tickers(): string[] {
    return [...this.want().keys()];
  }

  stats(): ClientStats {
    const sockets = this.sockets();
    const last = sockets.map((s) => s.lastMessageAt).filter((t): t is number => t !== null);
    return {
      messages: this.carried.messages + sockets.reduce((n, s) => n + s.messages, 0),
      lastMessageAt: last.length > 0 ? Math.max(...last) : this.carried.lastMessageAt,
      ...this.counts,
    };
  }

  /** The route connections open now (ticker groups), by key: empty against a deployment
   * that is not split. */
  routes(): RouteInfo[] {
    return [...this.routeConns.values()].map((c) => ({ key: c.key, state: c.snap.state, attempt: c.snap.attempt, tickers: this.feed.holding(c.key) }));
  }

  private sockets(): SocketController[] {
    return [...(this.socket ? [this.socket] : []), ...[...this.routeConns.values()].map((c) => c.socket)];
  }

  // -- lifecycle ---------------------------------------------------------------------------

  /**
   * Start: open the socket (or, with `realtime: false`, start polling). Resolves once data
   * flows (the server answered on the socket, or polling took over); rejects with AuthError
   * when the server refuses the token, ConnectError when the client gives up (only with a
   * finite `maxAttempts` and no polling). Called again while running: the same promise.
   */
  connect(): Promise<void> {
    if (this.running && this.pending && this.info.state !== "error") return this.pending.promise;
    if (this.running) this.close(); // gave up: start again
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    this.pending = { promise, resolve, reject, settled: false };
    this.running = true;
    if (this.pollingEnabled()) void this.refresh();
    if (this.realtime) void this.startSocket();
    else this.startPolling(false);
    this.publish();
    return promise;
  }

  /** Close the socket and stop polling; `connect()` starts again (resuming). */
  close(): void {
    this.running = false;
    this.stopSocket();
    this.stopPolling();
    this.restAbort?.abort();
    this.restAbort = null;
    this.settle(null);
    this.publish();
  }

  /** Turn real time on (the socket) or off (polling by choice; needs `polling`). */
  setRealtime(on: boolean): void {
    if (on === this.realtime) return;
    if (!on && !this.pollingEnabled()) throw new Error("setRealtime(false) needs the `polling` option");
    this.realtime = on;
    if (!this.running) {
      this.publish();
      return;
    }
    if (on) {
      this.stopPolling();
      void this.startSocket();
    } else {
      this.stopSocket();
      this.startPolling(false);
    }
    // Every switch fetches the latest quotes, so nothing published meanwhile is missed.
    void this.refresh();
    this.publish();
  }

  // -- subscriptions -----------------------------------------------------------------------

  /** Add tickers (with bars); sent now when connected, and on every reconnect. */
  subscribe(tickers: string | readonly string[], opts: SubscribeOptions = {}): void {
    for (const t of (typeof tickers === "string" ? [tickers] : tickers).map(normalize)) {
      const bars = this.explicit.get(t) ?? new Set<BarInterval>();
      for (const b of opts.bars ?? this.o.bars ?? []) bars.add(b);
      this.explicit.set(t, bars);
      this.refused.delete(t);
    }
    this.scheduleSync();
  }

  /** Remove tickers (a ticker a component still shows through a hook stays). */
  unsubscribe(tickers: string | readonly string[]): void {
    for (const t of (typeof tickers === "string" ? [tickers] : tickers).map(normalize)) this.explicit.delete(t);
    this.scheduleSync();
  }

  /** Ask for exactly these tickers (a watchlist): subscribe the new, unsubscribe the gone. */
  setTickers(tickers: readonly string[], opts: SubscribeOptions = {}): void {
    const next = new Set(tickers.map(normalize));
    for (const t of [...this.explicit.keys()]) if (!next.has(t)) this.explicit.delete(t);
    const added = [...next].filter((t) => !this.explicit.has(t) || opts.bars);
    if (added.length > 0) this.subscribe(added, opts);
    else this.scheduleSync();
  }

  /** Want `ticker` (and bars of `interval`) until the returned function is called: what
   * the React hooks use, so that a ticker is held while some component shows it. */
  retain(ticker: string, interval?: BarInterval): () => void {
    const t = normalize(ticker);
    const key: BarInterval | "" = interval ?? "";
    const counts = this.retained.get(t) ?? new Map<BarInterval | "", number>();
    counts.set(key, (counts.get(key) ?? 0) + 1);
    this.retained.set(t, counts);
    this.scheduleSync();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (counts.get(key) ?? 1) - 1;
      if (n > 0) counts.set(key, n);
      else counts.delete(key);
      if (counts.size === 0 && this.retained.get(t) === counts) this.retained.delete(t);
      this.scheduleSync();
    };
  }

  private want(): Map<string, BarInterval[]> {
    const out = new Map<string, Set<BarInterval>>();
    const add = (t: string, bars: Iterable<BarInterval | "">) => {
      if (this.refused.has(t)) return;
      const set = out.get(t) ?? new Set<BarInterval>();
      for (const b of bars) if (b) set.add(b);
      out.set(t, set);
    };
    for (const [t, bars] of this.explicit) add(t, bars);
    for (const [t, counts] of this.retained) add(t, counts.keys());
    return new Map([...out].map(([t, s]) => [t, BAR_INTERVALS.filter((b) => s.has(b))]));
  }

  private scheduleSync(): void {
    if (this.syncQueued) return;
    this.syncQueued = true;
    // Once per turn: a render that mounts twenty hooks sends one frame, not twenty.
    void Promise.resolve().then(() => {
      this.syncQueued = false;
      this.sync();
    });
  }

  /** What the connection `key` (`""`: the main one) should hold, of `want`. */
  private wantFor(key: string, want = this.want()): Map<string, BarInterval[]> {
    return new Map([...want].filter(([t]) => (this.routeOf.get(t) ?? "") === key));
  }

  private sync(): void {
    const want = this.want();
    this.syncSocket("", this.socket, want);
    // Ticker groups: a connection for each route key a wanted ticker has, and none for a
    // key with nothing left to hold.
    if (this.running && this.realtime && this.socket) {
      for (const t of want.keys()) {
        const key = this.routeOf.get(t);
        if (key !== undefined && !this.routeConns.has(key)) this.openRoute(key);
      }
    }
    for (const [key, conn] of [...this.routeConns]) {
      if (this.wantFor(key, want).size === 0) this.closeRoute(key, true);
      else this.syncSocket(key, conn.socket, want);
    }
    // While polling, tickers new to the list are fetched at once.
    if (this.info.state === "polling" && wantKey(want) !== this.polled) void this.refresh();
  }

  private syncSocket(key: string, socket: SocketController | null, want: Map<string, BarInterval[]>): void {
    if (socket?.snapshot.state !== "connected") return;
    const { subscribe, unsubscribe } = this.feed.changes(this.wantFor(key, want), key);
    for (const frame of [...(unsubscribe ? [unsubscribe] : []), ...subscribe]) {
      if (socket.send(frame)) this.feed.applied(frame, key);
    }
  }

  // -- the socket --------------------------------------------------------------------------

  private async startSocket(): Promise<void> {
    let Impl: WebSocketConstructor;
    try {
      Impl = await resolveWebSocket(this.o.WebSocket);
    } catch (err) {
      this.settle(err as Error);
      return;
    }
    if (!this.running || !this.realtime || this.socket) return;
    this.Impl = Impl;
    const socket = this.makeSocket(Impl, "");
    this.socket = socket;
    this.socketSnap = socket.snapshot;
    socket.start();
    // Tickers routed before a close() or a polling spell: their connections again.
    if (this.routeOf.size > 0) this.scheduleSync();
  }

  /** The connection for `key` (`""`: the main one, else a ticker group's route key). */
  private makeSocket(Impl: WebSocketConstructor, key: string): SocketController {
    const url = key === "" ? this.wsUrl : this.routeUrl(key);
    const current = () => (key === "" ? this.socket : (this.routeConns.get(key)?.socket ?? null)) === socket;
    const socket: SocketController = new SocketController(
      {
        open: async () => openSocket(Impl, url, await resolveToken(this.o.token), this.o.tokenIn ?? "protocol"),
        maxAttempts: this.o.maxAttempts,
        baseDelayMs: this.o.baseDelayMs,
        jitter: this.o.jitter,
        pingIntervalMs: this.o.pingIntervalMs,
        pongTimeoutMs: this.o.pongTimeoutMs,
        settlePingMs: this.o.settlePingMs,
        openTimeoutMs: this.o.openTimeoutMs,
        now: this.o.now,
      },
      {
        onChange: (snap) => {
          if (current()) this.socketChanged(key, snap);
        },
        onText: (raw) => {
          if (current()) this.onText(raw, key, socket);
        },
        onOpen: () => {
          if (!current()) return;
          for (const frame of this.feed.connected(this.wantFor(key), key)) socket.send(frame);
        },
        onPong: () => {
          if (current()) this.settle(null);
        },
      },
    );
    return socket;
  }

  /** The URL of a route key's connection: `routeUrl`, else this client's with `?route=`. */
  private routeUrl(key: string): URL {
    if (this.o.routeUrl) return socketUrl(this.o.routeUrl(key));
    const url = new URL(this.wsUrl);
    url.searchParams.set("route", key);
    return url;
  }

  private openRoute(key: string): void {
    const Impl = this.Impl;
    if (!Impl) return; // startSocket syncs once it has one
    const socket = this.makeSocket(Impl, key);
    this.routeConns.set(key, { key, socket, snap: socket.snapshot });
    socket.start();
  }

  /** Close a route connection: `forget` when it has nothing left to hold (its tickers'
   * seqs go, as on an unsubscribe), not when the client stops (they resume later). */
  private closeRoute(key: string, forget: boolean): void {
    const conn = this.routeConns.get(key);
    if (!conn) return;
    this.routeConns.delete(key);
    this.carry(conn.socket);
    conn.socket.close();
    if (!forget) return; // the client stops: its caller says so
    this.feed.disconnected(key);
    this.socketChanged(key, null);
  }

  private carry(s: SocketController): void {
    this.carried.reconnects += s.snapshot.reconnects;
    this.carried.messages += s.messages;
    this.carried.lastMessageAt = Math.max(s.lastMessageAt ?? 0, this.carried.lastMessageAt ?? 0) || null;
  }

  private stopSocket(): void {
    for (const key of [...this.routeConns.keys()]) this.closeRoute(key, false);
    const s = this.socket;
    if (!s) return;
    this.carry(s);
    this.carried.latencyMs = s.snapshot.latencyMs ?? this.carried.latencyMs;
    this.socket = null;
    this.socketSnap = null;
    s.close();
  }

  /** A connection's state changed (`snap` null: a route connection closed). */
  private socketChanged(key: string, snap: SocketSnapshot | null): void {
    const conn = this.routeConns.get(key);
    const before = key === "" ? this.socketSnap?.state : conn?.snap.state;
    if (key === "") this.socketSnap = snap;
    else if (conn && snap) conn.snap = snap;
    if (snap?.state === "error" && before !== "error" && this.pollingEnabled() && this.probeTimer === null) this.startPolling(true);
    if (this.probeTimer !== null && !this.snaps().some((s) => s.state === "error")) {
      // Back on the socket(s) after a fallback: stop polling, and fetch once so that
      // nothing published while switching is missed.
      this.stopPolling();
      void this.refresh();
    }
    this.publish();
  }

  /** The snapshots of the main connection and of every route connection. */
  private snaps(): SocketSnapshot[] {
    return [...(this.socketSnap ? [this.socketSnap] : []), ...[...this.routeConns.values()].map((c) => c.snap)];
  }

  /** A `wrong_group` refusal on connection `from`: move the ticker to the connection of
   * the route key it names. False when it cannot be followed (no key, a key not fit for a
   * URL, the key of the refusing connection, too many moves): a `tickerError` then. */
  private follow(msg: ErrorMessage, from: string): boolean {
    const route = msg.route;
    if (msg.code !== ErrorCode.wrongGroup || !msg.ticker || typeof route !== "string" || !ROUTE_KEY.test(route) || route === from) return false;
    const t = normalize(msg.ticker);
    // Late news from a connection the ticker already left: nothing to do.
    if ((this.routeOf.get(t) ?? "") !== from) return true;
    const hops = (this.hops.get(t) ?? 0) + 1;
    if (hops > MAX_ROUTE_HOPS) return false;
    this.hops.set(t, hops);
    this.feed.refused(t, from);
    this.routeOf.set(t, route);
    this.emit("route", { ticker: t, route, from: from === "" ? null : from, message: msg.message });
    this.scheduleSync();
    return true;
  }

  private onText(raw: string, key: string, socket: SocketController): void {
    let parsed: ReturnType<typeof parseMessage>;
    try {
      parsed = parseMessage(raw);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.counts.malformed += 1;
      return;
    }
    if (!parsed.known) {
      this.emit("unknown", parsed.message);
      return;
    }
    const msg = parsed.message;
    // The server is serving us (a refused token gets an `error`, then the close).
    if (msg.type !== "error") this.settle(null);
    if (msg.type === "server_shutdown") socket.shutdownHint(msg.retry_after_ms);
    else if (msg.type === "subscribed") {
      socket.healthy();
      for (const t of msg.tickers) if ((this.routeOf.get(t) ?? "") === key) this.hops.delete(t);
    } else if (msg.type === "error" && this.follow(msg, key)) return;
    const change = this.feed.receive(msg, (this.o.now ?? Date.now)());
    if (change.kind === "drop") {
      if (change.reason === "duplicate" || change.reason === "older") this.counts.duplicates += 1;
      return;
    }
    this.emit("message", msg);
    this.apply(change, msg);
  }

  /** What a change taken from the socket or REST means for the stores and the events. */
  private apply(change: FeedChange, msg: ServerMessage | PriceMessage): void {
    switch (change.kind) {
      case "quote":
        this.emit("quote", change.quote, { source: change.source, tick: change.tick, gap: change.gap });
        if (change.gap && msg.type === "snapshot") {
          this.counts.gaps += 1;
          this.emit("gap", { ticker: change.quote.ticker, snapshot: msg, quote: change.quote });
        }
        break;
      case "bars":
        this.storeBars(change.ticker, change.interval, change.bars, change.reset);
        break;
      case "market":
        this.setMarket(change.status);
        break;
      case "ticker_error":
        if (REFUSING.has(change.code)) {
          // Not asked for again after a reconnect (a new subscribe() asks again).
          const t = normalize(change.ticker);
          this.refused.add(t);
          this.feed.refused(t, this.routeOf.get(t) ?? "");
          // A route connection may be left with nothing to hold: closed by the sync.
          if (this.routeOf.has(t)) this.scheduleSync();
        }
        this.emit("tickerError", { ticker: change.ticker, code: change.code, message: change.message });
        break;
      default:
        break;
    }
  }

  private storeBars(ticker: string, interval: BarInterval, bars: readonly Bar[], whole: boolean): void {
    const key = barKey(ticker, interval);
    const max = this.o.maxBars ?? 1000;
    // Merged by time, a `bars` message too (after a resume it repeats recent bars):
    // a bar of a known time replaces it, the rest keep their order.
    const next = mergeBars(this.barStore.get(key) ?? EMPTY_BARS, bars, max);
    this.barStore.set(key, next);
    this.emit("bars", { ticker, interval, bars: next, changed: bars, whole });
  }

  private setMarket(status: MarketStatus): void {
    const prev = this.marketStore[status.market];
    if (prev && JSON.stringify(prev) === JSON.stringify(status)) return;
    this.marketStore = { ...this.marketStore, [status.market]: status };
    this.emit("market", status);
  }

  // -- polling -----------------------------------------------------------------------------

  private pollingEnabled(): boolean {
    return this.o.polling !== undefined && this.o.polling !== false;
  }

  private pollingOptions(): Required<PollingOptions> {
    const p = typeof this.o.polling === "object" ? this.o.polling : {};
    return { intervalMs: p.intervalMs ?? 60_000, probeIntervalMs: p.probeIntervalMs ?? 10_000 };
  }

  private startPolling(fallback: boolean): void {
    this.stopPolling();
    const { intervalMs, probeIntervalMs } = this.pollingOptions();
    if (fallback) void this.refresh();
    this.pollTimer = setInterval(() => void this.refresh(), intervalMs);
    // After a failure the socket keeps being tried; when it opens, polling stops.
    if (fallback) this.probeTimer = setInterval(() => this.sockets().forEach((s) => s.retry()), probeIntervalMs);
  }

  private stopPolling(): void {
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    this.pollTimer = this.probeTimer = null;
  }

  /** The latest quotes (and market sessions, and bars) of the tickers wanted, over REST. */
  async refresh(): Promise<void> {
    const want = this.want();
    const names = [...want.keys()];
    this.polled = wantKey(want);
    if (names.length === 0 || !this.running) return;
    const ctl = new AbortController();
    this.restAbort = ctl;
    const list = names.map(encodeURIComponent).join(",");
    const token = await resolveToken(this.o.token);
    try {
      const quotes = await this.getJson<Record<string, PriceMessage | null>>(`/api/quotes?tickers=${list}`, token, ctl.signal);
      if (ctl.signal.aborted) return;
      for (const msg of Object.values(quotes)) {
        if (!msg) continue;
        const change = this.feed.receivePolled(msg, (this.o.now ?? Date.now)());
        if (change.kind === "quote") this.apply(change, msg);
      }
      this.setRestAuthError(null);
    } catch (err) {
      // Unreachable: the connection state says so. Refused: say why.
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) this.setRestAuthError(err.message);
      return;
    }
    try {
      const body = await this.getJson<Record<string, MarketStatus | null>>(`/api/market-status?tickers=${list}`, token, ctl.signal);
      if (ctl.signal.aborted) return;
      for (const s of Object.values(body)) if (s) this.setMarket(s);
    } catch {
      /* an older server without the endpoint: the socket's market_status only */
    }
    await this.refreshBars(want, token, ctl.signal);
  }

  /**
   * The bars wanted, over REST: `/api/history` ends with the bars the server builds for the
   * socket, so merged by time they are the socket's bars (no hole after a polling spell, no
   * flat candles from one sample a minute). Two requests at a time: a server computes few
   * history answers at once, and a watchlist of sparklines is many pairs.
   */
  private async refreshBars(want: Map<string, BarInterval[]>, token: string | null, signal: AbortSignal): Promise<void> {
    const pairs = [...want].flatMap(([ticker, intervals]) => intervals.map((interval) => ({ ticker, interval })));
    const next = async (): Promise<void> => {
      for (let pair = pairs.shift(); pair && !signal.aborted; pair = pairs.shift()) {
        const { ticker, interval } = pair;
        try {
          const path = `/api/history/${encodeURIComponent(ticker)}?interval=${interval}&range=${POLL_RANGE[interval]}`;
          const body = await this.getJson<{ bars?: Bar[] }>(path, token, signal);
          if (signal.aborted || !Array.isArray(body.bars) || !this.want().get(ticker)?.includes(interval)) continue;
          this.storeBars(ticker, interval, body.bars, false);
        } catch {
          /* unreachable or refused: the quotes' request says so; the next poll tries again */
        }
      }
    };
    await Promise.all([next(), next()]);
  }

  /** GET a REST endpoint of this server (`/api/...`) with the client's token. */
  async getJson<T>(path: string, token?: string | null, signal?: AbortSignal): Promise<T> {
    const t = token === undefined ? await resolveToken(this.o.token) : token;
    return getJson<T>(`${this.httpUrl}${path}`, t, signal, this.o.fetch);
  }

  private setRestAuthError(message: string | null): void {
    if (this.restAuthError === message) return;
    this.restAuthError = message;
    this.publish();
  }

  // -- the connection's state --------------------------------------------------------------

  private compute(): ConnectionInfo {
    const main = this.socketSnap;
    // With route connections (ticker groups), the worst of them all: a ticker whose
    // connection is down is not live, however well the others do.
    const snaps = this.snaps();
    const s = main ? snaps.reduce((w, x) => (RANK[x.state] > RANK[w.state] ? x : w), main) : null;
    const pollingOn = this.pollingEnabled();
    let state: ConnectionState;
    if (!this.running) state = "closed";
    else if (!this.realtime) state = "polling";
    else if (!s) state = "connecting";
    else if (s.state === "error") state = pollingOn ? "polling" : "error";
    else state = s.state;
    const refused = snaps.find((x) => x.closeCode !== null) ?? null;
    const socketAuth = refused ? `WebSocket refused (${refused.closeCode}${refused.closeReason ? `: ${refused.closeReason}` : ""})` : null;
    return {
      state,
      attempt: s?.attempt ?? 0,
      maxAttempts: this.o.maxAttempts ?? Infinity,
      reconnects: this.carried.reconnects + snaps.reduce((n, x) => n + x.reconnects, 0),
      latencyMs: main?.latencyMs ?? this.carried.latencyMs,
      closeCode: refused?.closeCode ?? null,
      closeReason: refused?.closeReason ?? null,
      realtime: this.realtime,
      fallback: this.running && this.realtime && s?.state === "error" && pollingOn,
      authError: this.restAuthError ?? socketAuth,
    };
  }

  private publish(): void {
    const prev = this.info;
    const next = this.compute();
    const keys = Object.keys(next) as (keyof ConnectionInfo)[];
    if (keys.every((k) => next[k] === prev[k])) return;
    this.info = next;
    this.emit("state", next, prev);
    // `connected` alone does not settle connect(): a server refusing the token accepts
    // the socket first, then closes it; the first answer settles it (onText, onPong).
    if (next.state === "polling") this.settle(null);
    else if (next.state === "error") {
      const err =
        next.closeCode === CloseCode.unauthorized || next.closeCode === CloseCode.forbidden
          ? new AuthError(`${this.url}: ${next.authError}`, next.closeCode, next.closeReason)
          : new ConnectError(`cannot connect to ${this.url} (gave up after ${next.maxAttempts} attempts)`);
      this.settle(err);
    }
  }

  private settle(err: Error | null): void {
    const p = this.pending;
    if (!p || p.settled) return;
    p.settled = true;
    if (err) p.reject(err);
    else p.resolve();
  }
}

const EMPTY_BARS: readonly Bar[] = Object.freeze([]);

/** The history range a poll asks for, per interval: the span a socket's `bars` covers (120
 * bars) or more, in as few bars as the server's ranges allow. */
const POLL_RANGE: Record<BarInterval, string> = { "1m": "1d", "5m": "1d", "15m": "5d", "1h": "1mo", "1d": "6mo" };

const wantKey = (want: Map<string, readonly BarInterval[]>): string => [...want].map(([t, i]) => `${t}:${i.join("+")}`).join(",");

/** `bars` into `list` (sorted by time): a bar of a time already there replaces it, the
 * others are inserted in order; at most `max` kept (the newest). A new array. */
function mergeBars(list: readonly Bar[], bars: readonly Bar[], max: number): readonly Bar[] {
  const out = list.slice();
  for (const bar of bars) {
    let i = out.length - 1;
    while (i >= 0 && out[i]!.time > bar.time) i -= 1;
    if (i >= 0 && out[i]!.time === bar.time) out[i] = bar;
    else out.splice(i + 1, 0, bar);
  }
  if (out.length > max) out.splice(0, out.length - max);
  return out;
}
