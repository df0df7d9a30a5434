// Range presets (1D 5D 1M 6M 1Y): how far back the chart looks, chosen apart from the bar
// size, as quote sites count it. 1D is the current session (or the last one, while the
// market is closed) and 5D five sessions, counted by the market's session calendar
// (lib/sessions.ts), not 24 or 120 hours back; 1M and 6M are calendar time; 1Y is a year
// of daily bars. Each preset goes with a few bar sizes (a year of hourly bars is ~4,000
// candles and its session shading stripes): a preset and a bar size that do not go
// together are made to, by the nearest one that does.
//
// While a session is under way, 1D (and 5D's newest session) keep room for the whole
// session on the right, so just after the open the first bars are drawn at their final
// width, not as a few giant candles.

import type { Interval } from "./candles";
import { INTERVAL_SECONDS } from "./candles";
import { sessionDay, sessionOpen, type SessionCalendar } from "./sessions";

export type RangePreset = "1D" | "5D" | "1M" | "6M" | "1Y";

export const RANGE_PRESETS: RangePreset[] = ["1D", "5D", "1M", "6M", "1Y"];

export const isRangePreset = (v: unknown): v is RangePreset => typeof v === "string" && (RANGE_PRESETS as string[]).includes(v);

const DAYS: Record<RangePreset, number> = { "1D": 1, "5D": 5, "1M": 31, "6M": 183, "1Y": 366 };

/** Presets that count sessions, and how many. */
const SESSIONS: Partial<Record<RangePreset, number>> = { "1D": 1, "5D": 5 };

/** The server's `range` parameter for a preset. */
const PARAM: Record<RangePreset, string> = { "1D": "1d", "5D": "5d", "1M": "1mo", "6M": "6mo", "1Y": "1y" };

/** The bar sizes each preset is drawn with. */
export const PRESET_INTERVALS: Record<RangePreset, readonly Interval[]> = {
  "1D": ["1m", "5m", "15m"],
  "5D": ["1m", "5m", "15m", "1h"],
  "1M": ["5m", "15m", "1h", "1d"],
  "6M": ["1h", "1d"],
  "1Y": ["1d"],
};

/** The least history loaded per bar size, whatever the preset: 1D of 1m bars loads five
 * sessions, so a pre-market with the extended hours hidden still shows the last session,
 * and the user can scroll back. */
const LEAST: Record<Interval, RangePreset> = { "1m": "5D", "5m": "5D", "15m": "1M", "1h": "6M", "1d": "1Y" };

export const presetSeconds = (p: RangePreset): number => DAYS[p] * 86400;

export const fits = (interval: Interval, preset: RangePreset): boolean => PRESET_INTERVALS[preset].includes(interval);

/** The one of `choices` nearest `value` on a log scale (ties: the first). */
function nearest<T>(choices: readonly T[], value: number, measure: (c: T) => number): T {
  let best = choices[0] as T;
  let gap = Infinity;
  for (const c of choices) {
    const g = Math.abs(Math.log(measure(c) / value));
    if (g < gap - 1e-9) {
      best = c;
      gap = g;
    }
  }
  return best;
}

/** The preset kept when the bar size changes to `interval`: the nearest one it goes with. */
export function presetFor(interval: Interval, preset: RangePreset): RangePreset {
  if (fits(interval, preset)) return preset;
  return nearest(
    RANGE_PRESETS.filter((p) => fits(interval, p)),
    DAYS[preset],
    (p) => DAYS[p],
  );
}

/** The bar size kept when the preset changes: the same if it goes with it, else the nearest. */
export function intervalFor(preset: RangePreset, interval: Interval): Interval {
  if (fits(interval, preset)) return interval;
  return nearest(PRESET_INTERVALS[preset], INTERVAL_SECONDS[interval], (i) => INTERVAL_SECONDS[i]);
}

/** The `range` to ask `/api/history` for: the preset, or more where the bar size has it. */
export function historyRange(interval: Interval, preset: RangePreset): string {
  return PARAM[DAYS[preset] >= DAYS[LEAST[interval]] ? preset : LEAST[interval]];
}

/** What the view needs to know besides the bars' times. */
export interface ViewContext {
  /** The bars' session calendar (lib/sessions.ts sessionCalendar). */
  calendar: SessionCalendar;
  intervalSec: number;
  /** Now, epoch seconds: whether the newest session is still under way. */
  now: number;
  rightOffset?: number;
}

/** The index of the first bar of the `count`th last session (`times` oldest first). */
export function sessionsStart(times: readonly number[], count: number, cal: SessionCalendar): number {
  let i = times.length - 1;
  if (i < 0) return 0;
  let seen = 1;
  let day = sessionDay(times[i]!, cal);
  while (i > 0) {
    const prev = sessionDay(times[i - 1]!, cal);
    if (prev !== day) {
      if (seen === count) break;
      seen += 1;
      day = prev;
    }
    i -= 1;
  }
  return i;
}

/** The logical range showing the preset back from the newest bar (`times` oldest first):
 * the last one or five sessions, or the calendar span; room kept on the right for the rest
 * of a session under way. */
export function presetView(times: readonly number[], preset: RangePreset, ctx: ViewContext): { from: number; to: number } | null {
  const n = times.length;
  if (n === 0) return null;
  const rightOffset = ctx.rightOffset ?? 4;
  const sessions = SESSIONS[preset];
  let first: number;
  if (sessions !== undefined && ctx.intervalSec < 86400) first = sessionsStart(times, sessions, ctx.calendar);
  else {
    const since = times[n - 1]! - presetSeconds(preset);
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid]! > since) hi = mid;
      else lo = mid + 1;
    }
    first = lo;
  }
  let to = n - 1 + rightOffset;
  if (sessions !== undefined && ctx.intervalSec < 86400) {
    // The newest session under way: room for all of it.
    const cal = ctx.calendar;
    const newest = sessionsStart(times, 1, cal);
    const open = sessionOpen(sessionDay(times[n - 1]!, cal), cal);
    if (ctx.now < open + cal.lengthSec) {
      const bars = Math.ceil(cal.lengthSec / ctx.intervalSec);
      to = Math.max(to, newest + bars - 0.5 + 1);
    }
  }
  return { from: Math.max(0, first - 0.5), to };
}
