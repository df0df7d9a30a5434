// The wire messages of docs/protocol.md that the dashboard reads.

export interface QuoteData {
  price: number;
  change: number | null;
  change_percent: number | null;
  volume: number | null;
  open: number | null;
  high: number | null;
  low: number | null;
  prev_close: number | null;
  market_time: number | null;
}

/** A `price_update` or `snapshot` (REST quotes are `price_update`s too). */
export interface PriceMessage {
  type: "price_update" | "snapshot";
  ticker: string;
  seq: number;
  timestamp: number;
  data: QuoteData;
  epoch?: string;
  stale?: boolean;
  age_ms?: number;
  gap?: boolean;
}

export interface MarketStatus {
  type: "market_status";
  market: string;
  is_open: boolean;
  session: "closed" | "pre" | "regular" | "post";
  next_open: string | null;
  next_close: string | null;
  stale?: boolean;
  last_good?: number;
}

export interface Bar {
  time: number; // bucket start, epoch seconds
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** What the watchlist shows per ticker: the latest quote and when it arrived here. */
export interface Quote {
  ticker: string;
  seq: number;
  timestamp: number; // published, epoch ms
  data: QuoteData;
  stale: boolean; // the server marked it stale
  receivedAt: number; // epoch ms, this browser
}

/** One tick as the chart needs it. */
export interface Tick {
  ticker: string;
  time: number; // epoch ms of the quote
  price: number;
  volume: number | null; // cumulative day volume
}

export type ServerMessage =
  | PriceMessage
  | MarketStatus
  | { type: "heartbeat"; timestamp: number }
  | { type: "pong"; id: unknown }
  | { type: "subscribed"; tickers: string[]; epochs?: Record<string, string> }
  | { type: "unsubscribed"; tickers: string[] }
  | { type: "conflated"; ticker: string; dropped: number }
  | { type: "server_shutdown"; retry_after_ms: number }
  | { type: "error"; code: string; message: string; ticker?: string };
