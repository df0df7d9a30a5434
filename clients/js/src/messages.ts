// The wire protocol's messages (docs/protocol.md, the AsyncAPI document at /asyncapi.yaml)
// as TypeScript types, and the parser that checks a frame against them.
//
// The vocabulary (message types, error and close codes) is generated into protocol.ts from
// the server's enums; the shapes are here. Each server message's fields are listed once, in
// FIELDS: the parser checks what it lists, the compile-time checks at the bottom tie it to
// the interfaces, and test/vocabulary.test.ts ties it to the AsyncAPI document. A message
// type the server sends that has no interface here fails the typecheck.

import type { MessageType, Session } from "./protocol.js";

/** A market's session: `market_status.session`, and (v1.2) a quote's `session`. */
export type SessionName = Session;

/** The quote of a `price_update` or `snapshot`. Fields the source lacks are null. */
export interface QuoteData {
  price: number;
  change: number | null;
  change_percent: number | null;
  /** Cumulative volume of the day. */
  volume: number | null;
  open: number | null;
  high: number | null;
  low: number | null;
  prev_close: number | null;
  /** Epoch ms of the quote at the source. */
  market_time: number | null;
  /** Decimals the instrument quotes in (v1.1: sent in snapshots). */
  price_decimals?: number;
  /** v1.2: a rolling 24 h volume (Coinbase), never the day's `volume`. */
  volume_24h?: number;
  /** v1.2 provenance: the source of this update (`alpaca`, `coinbase`, `yfinance`, `sim`...). */
  source?: string;
  /** v1.2 provenance: the vendor's feed where it has several (`iex`, `sip`), else null. */
  feed?: string | null;
  /** v1.2 provenance: seconds behind real time (0, or 900 for a 15-minute delayed feed). */
  delayed?: number;
  /** v1.2, instruments with sessions (US equities, ETFs, indices): the session the quote's
   * time falls in. `prev_close` is then the last regular close before its trading day, at
   * every hour (pre-market change = price - that close). */
  session?: SessionName;
  /** v1.2: once the trading day's regular session has closed, its close ("At close
   * 254.50 · After hours 255.26 +0.30 %": the after-hours change is price - regular_close). */
  regular_close?: number;
}

export interface PriceUpdate {
  type: "price_update";
  ticker: string;
  /** Per ticker, +1 for each update. */
  seq: number;
  /** Epoch ms (may have a fraction) when the update was published. */
  timestamp: number;
  data: QuoteData;
  /** Only on quotes read over REST: the quote is older than the server's freshness TTL. */
  stale?: boolean;
  age_ms?: number;
}

/** The latest cached update, sent after a subscribe. `gap: true`: updates were lost before it. */
export interface Snapshot {
  type: "snapshot";
  ticker: string;
  seq: number;
  timestamp: number;
  data: QuoteData;
  epoch: string;
  stale?: boolean;
  age_ms?: number;
  gap?: boolean;
}

export type PriceMessage = PriceUpdate | Snapshot;

/** The intervals of `/api/history` and of bars on the wire. */
export type BarInterval = "1m" | "5m" | "15m" | "1h" | "1d";
export const BAR_INTERVALS: readonly BarInterval[] = ["1m", "5m", "15m", "1h", "1d"];

/** One candle. `time` is the bucket start in epoch seconds (for `1d`, 00:00 UTC of the
 * session's date; v1.2: a `1d` bar of an instrument with sessions is its regular session's,
 * its close the regular close); REST bars have no `final`. */
export interface Bar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number | null;
  /** The bar will not change any more. */
  final?: boolean;
}

/** v1.1: the recent bars of a ticker and interval, oldest first, ending with the forming one. */
export interface BarsMessage {
  type: "bars";
  ticker: string;
  interval: BarInterval;
  seq: number;
  bars: Bar[];
}

/** v1.1: a bar changed; a `time` already seen replaces that bar. */
export interface BarMessage {
  type: "bar";
  ticker: string;
  interval: BarInterval;
  seq: number;
  bar: Bar;
}

export interface MarketStatus {
  type: "market_status";
  market: string;
  /** The ticker whose subscription this status answers (on the socket). */
  ticker?: string;
  is_open: boolean;
  session: SessionName;
  next_open: string | null;
  next_close: string | null;
  stale?: boolean;
  last_good?: number;
}

export interface Heartbeat {
  type: "heartbeat";
  timestamp: number;
}

export interface Pong {
  type: "pong";
  id: number | string | null;
}

export interface Subscribed {
  type: "subscribed";
  tickers: string[];
  /** Per ticker, the seq space its `seq`s belong to (keep it to resume). */
  epochs: Record<string, string>;
}

export interface Unsubscribed {
  type: "unsubscribed";
  tickers: string[];
}

export interface Conflated {
  type: "conflated";
  ticker: string;
  dropped: number;
}

export interface ServerShutdown {
  type: "server_shutdown";
  retry_after_ms: number;
}

export interface ErrorMessage {
  type: "error";
  code: string;
  message: string;
  ticker?: string;
  /** `wrong_group`: the key a load balancer routes to the ticker's group (`/ws?route=KEY`). */
  route?: string;
}

/** Every message a stockfeed server sends. */
export type ServerMessage =
  | PriceUpdate
  | Snapshot
  | BarsMessage
  | BarMessage
  | MarketStatus
  | Heartbeat
  | Pong
  | Subscribed
  | Unsubscribed
  | Conflated
  | ServerShutdown
  | ErrorMessage;

/** A message of a type this version does not know (a newer server): passed on as is. */
export interface UnknownMessage {
  type: string;
  [field: string]: unknown;
}

// -- client -> server ---------------------------------------------------------------------

export interface PingFrame {
  type: "ping";
  id: number | string;
}

/** Where to resume a ticker from: the last seq taken, in the epoch it belongs to. */
export interface ResumePoint {
  seq: number;
  epoch: string;
}

export type ResumeMap = Record<string, ResumePoint>;

export interface SubscribeFrame {
  action: "subscribe";
  tickers: string[];
  /** v1.1: bars wanted for these tickers. */
  bars?: BarInterval[];
  /** Present only when at least one ticker has a resume point. */
  resume?: ResumeMap;
}

export interface UnsubscribeFrame {
  action: "unsubscribe";
  tickers: string[];
}

export type ClientFrame = SubscribeFrame | UnsubscribeFrame;

// -- the fields of each server message, and the parser ------------------------------------

type Kind = "string" | "number" | "integer" | "boolean" | "object" | "array" | "id";
type Spec = Readonly<Record<string, Kind | `${Kind}?` | `${Kind}|null` | `${Kind}|null?`>>;

/** Each server message's fields (besides `type`): `kind` required, `kind?` optional,
 * `kind|null` required and nullable, `kind|null?` optional and nullable. */
export const FIELDS = {
  price_update: { ticker: "string", seq: "integer", timestamp: "number", data: "object", stale: "boolean?", age_ms: "integer?" },
  snapshot: {
    ticker: "string",
    seq: "integer",
    timestamp: "number",
    data: "object",
    epoch: "string",
    stale: "boolean?",
    age_ms: "integer?",
    gap: "boolean?",
  },
  bars: { ticker: "string", interval: "string", seq: "integer", bars: "array" },
  bar: { ticker: "string", interval: "string", seq: "integer", bar: "object" },
  market_status: {
    market: "string",
    ticker: "string?",
    is_open: "boolean",
    session: "string",
    next_open: "string|null",
    next_close: "string|null",
    stale: "boolean?",
    last_good: "number?",
  },
  heartbeat: { timestamp: "number" },
  pong: { id: "id" },
  subscribed: { tickers: "array", epochs: "object" },
  unsubscribed: { tickers: "array" },
  conflated: { ticker: "string", dropped: "integer" },
  server_shutdown: { retry_after_ms: "integer" },
  error: { code: "string", message: "string", ticker: "string?", route: "string?" },
} as const satisfies Record<ServerMessage["type"], Spec>;

const QUOTE_FIELDS: Spec = {
  price: "number",
  change: "number|null",
  change_percent: "number|null",
  volume: "number|null",
  open: "number|null",
  high: "number|null",
  low: "number|null",
  prev_close: "number|null",
  market_time: "number|null",
  price_decimals: "integer?",
  volume_24h: "number?",
  source: "string?",
  feed: "string|null?",
  delayed: "integer?",
  session: "string?",
  regular_close: "number?",
};

const BAR_FIELDS: Spec = {
  time: "integer",
  open: "number",
  high: "number",
  low: "number",
  close: "number",
  volume: "number|null",
  final: "boolean?",
};

function is(kind: Kind, v: unknown): boolean {
  switch (kind) {
    case "string":
      return typeof v === "string";
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "integer":
      return Number.isInteger(v);
    case "boolean":
      return typeof v === "boolean";
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    case "array":
      return Array.isArray(v);
    case "id":
      return v === null || typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
  }
}

/** null when `obj` has every field of `spec` with the right type, else what is wrong. */
function check(obj: Record<string, unknown>, spec: Spec, where = ""): string | null {
  for (const [name, rule] of Object.entries(spec)) {
    const [kind, ...mods] = rule.split(/(?=[?|])/) as [Kind, ...string[]];
    const v = obj[name];
    if (v === undefined && mods.includes("?")) continue;
    if (v === null && mods.includes("|null")) continue;
    if (!is(kind, v)) return `${where}${name} must be ${kind}${mods.includes("|null") ? " or null" : ""}`;
  }
  return null;
}

export class ProtocolError extends Error {}

/**
 * One server frame as a typed message. A frame that breaks the protocol (not JSON, a known
 * type with a missing or mistyped field) throws ProtocolError; an unknown `type` comes back
 * as an UnknownMessage (`known: false`), so a newer server does not break an older client.
 */
export function parseMessage(raw: string): { known: true; message: ServerMessage } | { known: false; message: UnknownMessage } {
  let obj: unknown;
  try {
    obj = JSON.parse(raw);
  } catch {
    throw new ProtocolError("frame is not valid JSON");
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new ProtocolError("frame is not a JSON object");
  const o = obj as Record<string, unknown>;
  if (typeof o.type !== "string") throw new ProtocolError("message has no string type");
  const spec = (FIELDS as Record<string, Spec>)[o.type];
  if (!spec) return { known: false, message: o as UnknownMessage };
  const problem =
    check(o, spec) ??
    (o.type === "price_update" || o.type === "snapshot" ? check(o.data as Record<string, unknown>, QUOTE_FIELDS, "data.") : null) ??
    (o.type === "bar" ? check(o.bar as Record<string, unknown>, BAR_FIELDS, "bar.") : null) ??
    (o.type === "bars" ? barsProblem(o.bars as unknown[]) : null) ??
    (o.type === "subscribed" || o.type === "unsubscribed" ? stringsProblem(o.tickers as unknown[], "tickers") : null) ??
    (o.type === "subscribed" ? stringsProblem(Object.values(o.epochs as object), "epochs") : null);
  if (problem) throw new ProtocolError(`${o.type}: ${problem}`);
  return { known: true, message: o as unknown as ServerMessage };
}

function barsProblem(bars: unknown[]): string | null {
  for (const [i, b] of bars.entries()) {
    if (!is("object", b)) return `bars[${i}] must be an object`;
    const p = check(b as Record<string, unknown>, BAR_FIELDS, `bars[${i}].`);
    if (p) return p;
  }
  return null;
}

function stringsProblem(values: unknown[], name: string): string | null {
  return values.every((v) => typeof v === "string") ? null : `${name} must hold strings`;
}

// -- compile-time checks ------------------------------------------------------------------

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
type Of<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;
type Listed<T extends ServerMessage["type"]> = keyof (typeof FIELDS)[T];

/** Every message type of the generated vocabulary has an interface here. */
export type _EveryTypeHasAnInterface = Assert<MessageType extends ServerMessage["type"] ? true : false>;
/** Each interface's fields are exactly those FIELDS lists (and `type`). */
export type _FieldsMatchInterfaces = Assert<
  Equal<{ [T in ServerMessage["type"]]: Equal<Exclude<keyof Of<T>, "type">, Listed<T>> }, { [T in ServerMessage["type"]]: true }>
>;
