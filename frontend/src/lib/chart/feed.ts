// Where the chart's bars come from: REST history for the range preset, then the wire's bars
// through the page's StockfeedClient (`bars` then `bar` upserts on the socket, the same bars
// over REST while polling). The controller takes both as narrow interfaces, so a test can
// hand it its own.

import type { BarsEvent } from "@stockfeed/client";
import { getJson } from "../api";
import type { Interval, WireBar } from "../candles";
import { historyRange, type RangePreset } from "../ranges";

/** What the chart needs of StockfeedClient (which is one). */
export interface BarFeed {
  on(event: "bars", handler: (ev: BarsEvent) => void): () => void;
  /** The bars held for the ticker and interval now, oldest first. */
  bars(ticker: string, interval: Interval): readonly WireBar[];
  /** Want the ticker's bars of `interval` until the returned function is called. */
  retain(ticker: string, interval: Interval): () => void;
}

export type HistoryLoader = (ticker: string, interval: Interval, preset: RangePreset, signal: AbortSignal) => Promise<readonly WireBar[]>;

/** The REST history a chart of `ticker` starts from (lib/ranges.ts: at least the preset). */
export const historyPath = (ticker: string, interval: Interval, preset: RangePreset): string =>
  `/api/history/${encodeURIComponent(ticker)}?interval=${interval}&range=${historyRange(interval, preset)}`;

/** History from this page's server, with the token if there is one. */
export function restHistory(token: string | null): HistoryLoader {
  return async (ticker, interval, preset, signal) => (await getJson<{ bars: WireBar[] }>(historyPath(ticker, interval, preset), token, signal)).bars;
}
