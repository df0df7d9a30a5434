// One WebSocket's life, and the next one's: connect, heartbeat and latency, dead-connection
// detection, reconnecting with backoff (or when the server said to come back), giving up.
// No protocol bookkeeping (that is FeedState) and no React: StockfeedClient drives it, and
// every transition is an explicit call on `events`.

import { backoffDelay, BACKOFF, randomJitter, type Jitter } from "./backoff.js";
import { CloseCode } from "./protocol.js";

export type SocketState = "connecting" | "connected" | "reconnecting" | "closed" | "error";

/** What the client needs of a WebSocket: the browser's, Node's (22+) and the `ws` package's
 * all have it. */
export interface WebSocketLike {
  readonly readyState: number;
  // The event types differ between implementations; only `data`, `code`, `reason` and
  // `message` are read.
  /* eslint-disable @typescript-eslint/no-explicit-any */
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  /* eslint-enable @typescript-eslint/no-explicit-any */
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** `WebSocket` (browsers, Node 22+) or the `ws` package's default export. The third
 * argument (headers) is understood by `ws` only. */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: { headers?: Record<string, string> },
) => WebSocketLike;

const OPEN = 1;

export interface SocketOptions {
  /** Opens one socket (the URL, token and implementation are the caller's). May throw. */
  open: () => WebSocketLike | Promise<WebSocketLike>;
  /** Reconnect attempts in a row before giving up (state `error`); Infinity: never. */
  maxAttempts?: number;
  /** First reconnect delay; attempt k waits base * 2^(k-1) (at most 4 * base) plus jitter. */
  baseDelayMs?: number;
  jitter?: Jitter;
  /** A `ping` is sent on open and then this often; its `pong` gives the latency. */
  pingIntervalMs?: number;
  /** With a ping outstanding and nothing at all heard for this long, the connection is dead. */
  pongTimeoutMs?: number;
  /** One more ping this long after open (0 = none): the ping on open is answered while a
   * page is still busy loading and drawing, so its latency reads tens of ms high; without
   * a second one that figure would stand for a whole ping interval. */
  settlePingMs?: number;
  /** An attempt that has not opened after this long is abandoned (and counts as failed). */
  openTimeoutMs?: number;
  now?: () => number;
}

export interface SocketSnapshot {
  state: SocketState;
  /** The reconnect attempt in progress (1..maxAttempts), 0 when none. */
  attempt: number;
  /** Reconnect attempts made since this controller started. */
  reconnects: number;
  /** Round trip of the last answered ping. */
  latencyMs: number | null;
  /** The close code that made it give up (4401, 4403), null otherwise. */
  closeCode: number | null;
  /** The server's reason with that code (`token expired`, …). */
  closeReason: string | null;
}

export interface SocketEvents {
  onChange(snapshot: SocketSnapshot): void;
  /** A text frame (every one but the answers to our own pings). */
  onText(raw: string): void;
  /** The socket opened; `reconnected` is false only for the very first connection. */
  onOpen(reconnected: boolean): void;
  /** The server answered one of our pings on this socket. */
  onPong?(): void;
}

export const SOCKET_DEFAULTS = {
  maxAttempts: Infinity,
  baseDelayMs: BACKOFF.baseMs,
  pingIntervalMs: 30_000,
  pongTimeoutMs: 10_000,
  settlePingMs: 2_000,
  openTimeoutMs: 10_000,
};

/** Close codes after which retrying with the same token cannot help. */
const REFUSED = new Set<number>([CloseCode.unauthorized, CloseCode.forbidden]);
/** How `ws` reports a refused handshake (an HTTP status instead of 101). */
const HTTP_REFUSAL = /Unexpected server response: (\d{3})/;

export class SocketController {
  private ws: WebSocketLike | null = null;
  private snap: SocketSnapshot = { state: "closed", attempt: 0, reconnects: 0, latencyMs: null, closeCode: null, closeReason: null };
  private everOpened = false;
  private disposed = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private openTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private settleTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private pingId = 0;
  private readonly pings = new Map<string, number>();
  private shutdownHintMs = 0;
  /** Failed attempts in a row: only a connection that served us (healthy()) resets it. */
  private failures = 0;
  // A retry after giving up stays `error` until it opens: the caller is polling meanwhile.
  private probing = false;
  private readonly o: Required<SocketOptions>;

  lastMessageAt: number | null = null;
  messages = 0;

  constructor(
    opts: SocketOptions,
    private readonly events: SocketEvents,
  ) {
    this.o = {
      open: opts.open,
      maxAttempts: opts.maxAttempts ?? SOCKET_DEFAULTS.maxAttempts,
      baseDelayMs: opts.baseDelayMs ?? SOCKET_DEFAULTS.baseDelayMs,
      jitter: opts.jitter ?? randomJitter,
      pingIntervalMs: opts.pingIntervalMs ?? SOCKET_DEFAULTS.pingIntervalMs,
      pongTimeoutMs: opts.pongTimeoutMs ?? SOCKET_DEFAULTS.pongTimeoutMs,
      settlePingMs: opts.settlePingMs ?? SOCKET_DEFAULTS.settlePingMs,
      openTimeoutMs: opts.openTimeoutMs ?? SOCKET_DEFAULTS.openTimeoutMs,
      now: opts.now ?? Date.now,
    };
  }

  get snapshot(): SocketSnapshot {
    return this.snap;
  }

  get maxAttempts(): number {
    return this.o.maxAttempts;
  }

  start(): void {
    void this.connect();
  }

  /** After giving up: try once more now (a failure goes straight back to `error`). */
  retry(): void {
    if (this.disposed || this.snap.state !== "error" || this.ws !== null) return;
    this.probing = true;
    void this.connect();
  }

  /** The server answered us (subscribed, pong): the next outage starts with short delays
   * again. Not on mere open: a server that accepts and closes at once (4429) must still be
   * backed off from. */
  healthy(): void {
    this.failures = 0;
  }

  /** The server announced a shutdown: the next attempt waits at least this long. */
  shutdownHint(retryAfterMs: number): void {
    this.shutdownHintMs = Math.max(0, Number(retryAfterMs) || 0);
  }

  send(msg: object): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  close(): void {
    this.disposed = true;
    this.clearTimers();
    this.drop(1000);
    this.update({ state: "closed", attempt: 0 });
  }

  private update(patch: Partial<SocketSnapshot>): void {
    const next = { ...this.snap, ...patch };
    const s = this.snap;
    if (
      next.state === s.state &&
      next.attempt === s.attempt &&
      next.reconnects === s.reconnects &&
      next.latencyMs === s.latencyMs &&
      next.closeCode === s.closeCode &&
      next.closeReason === s.closeReason
    ) {
      return;
    }
    this.snap = next;
    this.events.onChange(next);
  }

  private async connect(): Promise<void> {
    this.reconnectTimer = null;
    if (!this.probing) this.update({ state: this.snap.attempt > 0 ? "reconnecting" : "connecting" });
    let ws: WebSocketLike;
    try {
      ws = await this.o.open();
    } catch {
      if (!this.disposed) this.lost();
      return;
    }
    if (this.disposed) {
      ws.close(1000);
      return;
    }
    this.ws = ws;
    this.openTimer = setTimeout(() => {
      this.openTimer = null;
      if (ws !== this.ws) return;
      this.drop(4000);
      this.lost();
    }, this.o.openTimeoutMs);
    let refusal: number | null = null;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.clearOpenTimer();
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.probing = false;
      this.update({ state: "connected", attempt: 0, closeCode: null, closeReason: null });
      this.startHeartbeat();
      this.events.onOpen(reconnected);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (ws !== this.ws) return;
      this.heard();
      const raw = typeof ev.data === "string" ? ev.data : "";
      if (this.ownPong(raw)) return;
      this.events.onText(raw);
    };
    ws.onerror = (ev: { message?: unknown; error?: { message?: unknown } }) => {
      // Browsers say nothing here; `ws` says why, e.g. a 401 before the upgrade.
      const why = String(ev?.message ?? ev?.error?.message ?? "");
      const status = Number(HTTP_REFUSAL.exec(why)?.[1]);
      if (status === 401 || status === 403) refusal = status === 401 ? CloseCode.unauthorized : CloseCode.forbidden;
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (ws !== this.ws) return;
      const code = refusal ?? ev.code ?? 1006;
      if (REFUSED.has(code)) {
        // Refused for its token: retrying with the same token cannot help.
        this.ws = null;
        this.clearTimers();
        this.probing = false;
        this.failures = 0;
        this.update({ state: "error", attempt: 0, closeCode: code, closeReason: ev.reason || (refusal ? `HTTP ${refusal === CloseCode.unauthorized ? 401 : 403}` : null) });
        return;
      }
      this.lost();
    };
  }

  /** The answer to one of our pings: the latency, and not the caller's business. */
  private ownPong(raw: string): boolean {
    if (!raw.startsWith('{"type":"pong"')) return false;
    let id: unknown;
    try {
      id = (JSON.parse(raw) as { id?: unknown }).id;
    } catch {
      return false;
    }
    const sent = typeof id === "string" ? this.pings.get(id) : undefined;
    if (sent === undefined || typeof id !== "string") return false;
    this.pings.delete(id);
    this.failures = 0;
    this.update({ latencyMs: Math.max(0, this.o.now() - sent) });
    this.events.onPong?.();
    return true;
  }

  private heard(): void {
    this.lastMessageAt = this.o.now();
    this.messages += 1;
    if (this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
  }

  private startHeartbeat(): void {
    this.ping();
    this.pingTimer = setInterval(() => this.ping(), this.o.pingIntervalMs);
    if (this.o.settlePingMs > 0) {
      this.settleTimer = setTimeout(() => {
        this.settleTimer = null;
        this.ping();
      }, this.o.settlePingMs);
    }
  }

  private ping(): void {
    this.pingId += 1;
    // A string id: the caller's own pings (numbers) are told apart from ours.
    const id = `sf${this.pingId}`;
    if (!this.send({ type: "ping", id })) return;
    this.pings.set(id, this.o.now());
    if (this.pings.size > 16) {
      const oldest = this.pings.keys().next().value;
      if (oldest !== undefined) this.pings.delete(oldest);
    }
    if (this.pongTimer === null) {
      this.pongTimer = setTimeout(() => {
        // Silence with a ping outstanding: a half-open TCP connection would never close
        // by itself, so drop it and reconnect.
        this.pongTimer = null;
        this.drop(4000);
        this.lost();
      }, this.o.pongTimeoutMs);
    }
  }

  /** Forget the current socket without hearing its events any more. */
  private drop(code: number): void {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {}; // `ws` throws on an error event nobody listens to
    try {
      ws.close(code);
    } catch {
      /* already closed, or still connecting (ws) */
    }
  }

  private clearOpenTimer(): void {
    if (this.openTimer !== null) clearTimeout(this.openTimer);
    this.openTimer = null;
  }

  private clearTimers(): void {
    this.clearOpenTimer();
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    if (this.pongTimer !== null) clearTimeout(this.pongTimer);
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.reconnectTimer = this.pingTimer = this.pongTimer = this.settleTimer = null;
    this.pings.clear();
  }

  private lost(): void {
    this.ws = null;
    this.clearTimers();
    if (this.disposed) return;
    if (this.probing || this.failures >= this.o.maxAttempts) {
      this.probing = false;
      this.update({ state: "error", attempt: 0 });
      return;
    }
    this.failures += 1;
    const attempt = this.failures;
    let delay = backoffDelay(this.failures, this.o.baseDelayMs, this.o.jitter);
    const hint = this.shutdownHintMs;
    this.shutdownHintMs = 0;
    // The server said when to come back: never earlier, and spread like the backoff.
    if (hint > delay) delay = Math.round(hint + Math.max(0, this.o.jitter(this.failures, hint)));
    this.update({ state: "reconnecting", attempt, reconnects: this.snap.reconnects + 1 });
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }
}
