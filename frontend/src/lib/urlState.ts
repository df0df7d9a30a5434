// The chart's state in the address bar: `?ticker=AAPL&interval=5m&range=5D`, so a link shows
// the same chart, a reload keeps it and the back button steps back through what was shown.
// Other parameters (token, poll, probe) are kept as they are.

import { INTERVALS, type Interval } from "./candles";
import { normalizeTicker } from "./market";
import { isRangePreset, type RangePreset } from "./ranges";

export interface UrlState {
  ticker: string | null;
  interval: Interval | null;
  range: RangePreset | null;
}

const isInterval = (v: unknown): v is Interval => typeof v === "string" && (INTERVALS as string[]).includes(v);

/** What the query string asks for; a value that is not valid is left out (null). */
export function readUrlState(search: string): UrlState {
  const q = new URLSearchParams(search);
  const ticker = q.get("ticker");
  const interval = q.get("interval");
  const range = q.get("range")?.toUpperCase() ?? null;
  return {
    ticker: ticker === null ? null : normalizeTicker(ticker),
    interval: isInterval(interval) ? interval : null,
    range: isRangePreset(range) ? range : null,
  };
}

/** The query string with the state written in (the others untouched), "?…" or "". */
export function writeUrlState(search: string, s: UrlState): string {
  const q = new URLSearchParams(search);
  const set = (k: string, v: string | null) => (v ? q.set(k, v) : q.delete(k));
  set("ticker", s.ticker);
  set("interval", s.interval);
  set("range", s.range);
  const text = q.toString().replace(/%5E/g, "^").replace(/%3D/g, "=");
  return text ? `?${text}` : "";
}

export function sameUrlState(a: UrlState, b: UrlState): boolean {
  return a.ticker === b.ticker && a.interval === b.interval && a.range === b.range;
}
