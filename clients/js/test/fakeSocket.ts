// A scripted WebSocket for the timing rules (exact backoff schedule, ping timeouts) that a
// real server cannot be asked to fail on cue. Each `new FakeSocket(url, protocols)` is
// recorded; the test opens, feeds, refuses or closes it.
import type { WebSocketLike } from "../src/socket.js";

export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  /** What the next sockets do by themselves: `open` at once, `fail` (close 1006), or wait. */
  static mode: "open" | "fail" | "manual" = "open";

  readyState = 0;
  sent: unknown[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeSocket.all.push(this);
    const mode = FakeSocket.mode;
    // As a network would: later, once the caller has set its handlers.
    if (mode !== "manual") setTimeout(() => (mode === "open" ? this.open() : this.serverClose(1006)), 0);
  }

  static reset(mode: "open" | "fail" | "manual" = "open"): void {
    FakeSocket.all = [];
    FakeSocket.mode = mode;
  }

  static get last(): FakeSocket {
    const s = FakeSocket.all.at(-1);
    if (!s) throw new Error("no socket opened");
    return s;
  }

  open(): void {
    if (this.readyState !== 0) return;
    this.readyState = 1;
    this.onopen?.({});
  }

  /** A server frame (an object is sent as its JSON). */
  receive(msg: unknown): void {
    this.onmessage?.({ data: typeof msg === "string" ? msg : JSON.stringify(msg) });
  }

  serverClose(code = 1006, reason = ""): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code = 1000): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }

  /** The frames the client sent, pings left out. */
  get frames(): unknown[] {
    return this.sent.filter((f) => (f as { type?: string }).type !== "ping");
  }

  get pings(): { type: "ping"; id: string }[] {
    return this.sent.filter((f) => (f as { type?: string }).type === "ping") as { type: "ping"; id: string }[];
  }
}
