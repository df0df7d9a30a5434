// The wire messages and feed types the dashboard reads come from @stockfeed/client (the
// package in clients/js, one source for the protocol's types); the chart's bar is its own.

export type { MarketStatus, PriceMessage, Quote, QuoteData, ServerMessage, Tick } from "@stockfeed/client";

/** The WebSocket's state as the dashboard shows it: `error` when it gave up (or was refused),
 * `closed` when real time is off. */
export type WsState = "connecting" | "connected" | "reconnecting" | "closed" | "error";

/** A candle as the chart draws it (REST history, or built from ticks). */
export interface Bar {
  time: number; // bucket start, epoch seconds
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}
