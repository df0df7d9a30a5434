// Range presets (1D 5D 1M 6M 1Y): how far back the chart looks, chosen apart from the bar
// size. The server has each bar size for a limited range (1m: 5 days; 5m and 15m: a month;
// 1h and 1D: a year; docs/protocol.md, REST history), so a preset and a bar size that do
// not go together are made to: a long preset picks the finest bar size that reaches it,
// a fine bar size shortens the preset to what it has.

import { INTERVALS, type Interval } from "./candles";

export type RangePreset = "1D" | "5D" | "1M" | "6M" | "1Y";

export const RANGE_PRESETS: RangePreset[] = ["1D", "5D", "1M", "6M", "1Y"];

export const isRangePreset = (v: unknown): v is RangePreset => typeof v === "string" && (RANGE_PRESETS as string[]).includes(v);

const DAYS: Record<RangePreset, number> = { "1D": 1, "5D": 5, "1M": 31, "6M": 183, "1Y": 366 };

/** The server's `range` parameter for a preset. */
const PARAM: Record<RangePreset, string> = { "1D": "1d", "5D": "5d", "1M": "1mo", "6M": "6mo", "1Y": "1y" };

/** The longest preset the server has each bar size for. */
const LONGEST: Record<Interval, RangePreset> = { "1m": "5D", "5m": "1M", "15m": "1M", "1h": "1Y", "1d": "1Y" };

/** The least history loaded per bar size, whatever the preset (a 1D chart of daily bars is
 * one candle; loading more lets the user scroll back). */
const LEAST: Record<Interval, RangePreset> = { "1m": "1D", "5m": "5D", "15m": "1M", "1h": "6M", "1d": "1Y" };

export const presetSeconds = (p: RangePreset): number => DAYS[p] * 86400;

export const fits = (interval: Interval, preset: RangePreset): boolean => DAYS[preset] <= DAYS[LONGEST[interval]];

/** The preset kept when the bar size changes to `interval`: shortened when it has less. */
export function presetFor(interval: Interval, preset: RangePreset): RangePreset {
  return fits(interval, preset) ? preset : LONGEST[interval];
}

/** The bar size kept when the preset changes: the same if it reaches that far, else the
 * finest one that does. */
export function intervalFor(preset: RangePreset, interval: Interval): Interval {
  if (fits(interval, preset)) return interval;
  return INTERVALS.find((i) => fits(i, preset)) ?? "1d";
}

/** The `range` to ask `/api/history` for: the preset, or more where the bar size has it. */
export function historyRange(interval: Interval, preset: RangePreset): string {
  const p = DAYS[preset] >= DAYS[LEAST[interval]] ? preset : LEAST[interval];
  return PARAM[fits(interval, p) ? p : LONGEST[interval]];
}

/** The logical range showing the preset's span back from the newest bar (`times` oldest first). */
export function presetView(times: readonly number[], preset: RangePreset, rightOffset = 4): { from: number; to: number } | null {
  const n = times.length;
  if (n === 0) return null;
  const since = times[n - 1]! - presetSeconds(preset);
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid]! > since) hi = mid;
    else lo = mid + 1;
  }
  return { from: Math.max(0, lo - 0.5), to: n - 1 + rightOffset };
}
