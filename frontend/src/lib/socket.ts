// The WebSocket connection's life, outside React: connect, heartbeat, dead-connection
// detection, exponential backoff, giving up. useWebSocket wraps it; keeping it a plain
// class makes every transition explicit and lets messages reach listeners without any
// React state update per message.

import { backoffDelay, randomJitter, type Jitter } from "./backoff";
import { CloseCode } from "./protocol";
import type { ServerMessage } from "./types";

export type WsState = "connecting" | "connected" | "reconnecting" | "closed" | "error";

export interface SocketOptions {
  url: string;
  /** Reconnect attempts after a loss before giving up (state `error`). */
  maxAttempts?: number;
  /** First reconnect delay; attempt k waits base * 2^(k-1) plus jitter. */
  baseDelayMs?: number;
  jitter?: Jitter;
  /** A `ping` is sent on open and then this often; its `pong` gives the latency. */
  pingIntervalMs?: number;
  /** With a ping outstanding and nothing at all heard for this long, the connection is dead. */
  pongTimeoutMs?: number;
  /** One more ping this long after open (0 = none): the ping on open is answered while the
   * page is still busy loading history and drawing, so its latency reads tens of ms high;
   * without a second one that figure would stand for a whole ping interval. */
  settlePingMs?: number;
  WebSocketImpl?: typeof WebSocket;
  now?: () => number;
}

export interface SocketSnapshot {
  state: WsState;
  attempt: number; // the reconnect attempt in progress (1..maxAttempts), 0 when none
  reconnectCount: number; // reconnect attempts made since the page loaded
  latencyMs: number | null;
  closeCode?: number | null; // set when the server refused us (4401 / 4403)
}

export interface SocketEvents {
  onChange(snapshot: SocketSnapshot): void;
  onMessage(msg: ServerMessage, raw: string): void;
  /** The socket opened; `reconnected` is false only for the very first connection. */
  onOpen(reconnected: boolean): void;
}

export const DEFAULTS = {
  maxAttempts: 3,
  baseDelayMs: 2000,
  pingIntervalMs: 30_000,
  pongTimeoutMs: 10_000,
  settlePingMs: 2_000,
};

export class SocketController {
  private ws: WebSocket | null = null;
  private snap: SocketSnapshot = { state: "closed", attempt: 0, reconnectCount: 0, latencyMs: null };
  private everOpened = false;
  private disposed = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private settleTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private pingId = 0;
  private pings = new Map<number, number>();
  private minNextDelay = 0;
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
      maxAttempts: opts.maxAttempts ?? DEFAULTS.maxAttempts,
      baseDelayMs: opts.baseDelayMs ?? DEFAULTS.baseDelayMs,
      jitter: opts.jitter ?? randomJitter,
      pingIntervalMs: opts.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
      pongTimeoutMs: opts.pongTimeoutMs ?? DEFAULTS.pongTimeoutMs,
      settlePingMs: opts.settlePingMs ?? DEFAULTS.settlePingMs,
      WebSocketImpl: opts.WebSocketImpl ?? WebSocket,
      now: opts.now ?? Date.now,
      url: opts.url,
    };
  }

  get snapshot(): SocketSnapshot {
    return this.snap;
  }

  start(): void {
    this.connect();
  }

  /** After giving up: try once more now (a failure goes straight back to `error`). */
  retry(): void {
    if (this.disposed || this.snap.state !== "error") return;
    this.probing = true;
    this.connect();
  }

  send(msg: object): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== ws.OPEN) return false;
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
      next.reconnectCount === s.reconnectCount &&
      next.latencyMs === s.latencyMs &&
      next.closeCode === s.closeCode
    ) {
      return;
    }
    this.snap = next;
    this.events.onChange(next);
  }

  private connect(): void {
    this.reconnectTimer = null;
    let ws: WebSocket;
    try {
      ws = new this.o.WebSocketImpl(this.o.url);
    } catch {
      this.lost();
      return;
    }
    this.ws = ws;
    if (!this.probing) this.update({ state: this.snap.attempt > 0 ? "reconnecting" : "connecting" });
    ws.onopen = () => {
      if (ws !== this.ws) return;
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.probing = false;
      this.update({ state: "connected", attempt: 0, closeCode: null });
      this.startHeartbeat();
      this.events.onOpen(reconnected);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (ws !== this.ws) return;
      this.heard();
      const raw = typeof ev.data === "string" ? ev.data : "";
      let msg: ServerMessage;
      try {
        msg = JSON.parse(raw) as ServerMessage;
      } catch {
        return; // not ours to crash on: the server only sends JSON objects
      }
      if (msg === null || typeof msg !== "object") return;
      if (msg.type === "pong" && typeof msg.id === "number") {
        const sent = this.pings.get(msg.id);
        if (sent !== undefined) {
          this.pings.delete(msg.id);
          this.update({ latencyMs: Math.max(0, this.o.now() - sent) });
        }
      } else if (msg.type === "server_shutdown") {
        // The server says when to come back; never earlier than our own backoff.
        this.minNextDelay = Math.max(0, Number(msg.retry_after_ms) || 0);
      }
      this.events.onMessage(msg, raw);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (ws !== this.ws) return;
      if (ev.code === CloseCode.unauthorized || ev.code === CloseCode.forbidden) {
        // Refused for its token: retrying with the same token cannot help.
        this.ws = null;
        this.clearTimers();
        this.probing = false;
        this.update({ state: "error", attempt: 0, closeCode: ev.code });
        return;
      }
      this.lost();
    };
    ws.onerror = () => {
      /* a close event follows; the loss is handled there */
    };
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
    const id = this.pingId;
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
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code);
    } catch {
      /* already closed */
    }
  }

  private clearTimers(): void {
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
    if (this.probing || this.snap.attempt >= this.o.maxAttempts) {
      this.probing = false;
      this.update({ state: "error", attempt: 0 });
      return;
    }
    const attempt = this.snap.attempt + 1;
    const delay = Math.max(backoffDelay(attempt, this.o.baseDelayMs, this.o.jitter), this.minNextDelay);
    this.minNextDelay = 0;
    this.update({ state: "reconnecting", attempt, reconnectCount: this.snap.reconnectCount + 1 });
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}
