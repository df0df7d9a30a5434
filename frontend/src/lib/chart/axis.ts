// The chart's words for time, in the chosen zone: the axis ticks, the crosshair's label, and
// a bar's time in the legend and the text alternative. Daily bars are dates (never shifted:
// lib/timezone.ts's sessionDate).
//
// Where the axis puts its date labels: at the first bar of each session, as the exchange
// counts them (lib/sessions.ts), not at 00:00 UTC (19:00 in New York, in the middle of a
// post-market). The chart library asks for each bar's "weight" (year, month, day, then the
// hours and minutes) and labels the heaviest in view; markWeight gives a session's first
// bar the day's weight (month's or year's when its date starts one), and the bars inside
// a session their weight by the chosen zone's clock.

import type { Interval } from "../candles";
import { dayDate, sessionDay, zoneOffset, type SessionCalendar } from "../sessions";
import { secondsFormatter, sessionDate, type Zone } from "../timezone";
import type { TimeAxis } from "./surface";

export const intervalLabel = (i: Interval): string => (i === "1d" ? "1D" : i);

/** lightweight-charts's tick mark weights (its TickMarkWeight), heaviest first. */
export const WEIGHT = { year: 70, month: 60, day: 50, hour12: 33, hour6: 32, hour3: 31, hour1: 30, min30: 22, min5: 21, min1: 20, second: 10, none: 0 } as const;

const CLOCK: readonly [number, number][] = [
  [12 * 3600, WEIGHT.hour12],
  [6 * 3600, WEIGHT.hour6],
  [3 * 3600, WEIGHT.hour3],
  [3600, WEIGHT.hour1],
  [1800, WEIGHT.min30],
  [300, WEIGHT.min5],
  [60, WEIGHT.min1],
  [1, WEIGHT.second],
];

/** The weight of the axis mark at bar `sec`, the bar before it at `prev`: a new session is a
 * day (a month or year when its date starts one); inside one, the hours and minutes of the
 * display zone `tz`. */
export function markWeight(sec: number, prev: number, cal: SessionCalendar, tz: string): number {
  const day = sessionDay(sec, cal);
  const before = sessionDay(prev, cal);
  if (day !== before) {
    const a = dayDate(day);
    const b = dayDate(before);
    if (a.slice(0, 4) !== b.slice(0, 4)) return WEIGHT.year;
    if (a.slice(0, 7) !== b.slice(0, 7)) return WEIGHT.month;
    return WEIGHT.day;
  }
  const local = sec + zoneOffset(tz, sec);
  const localPrev = prev + zoneOffset(tz, prev);
  for (const [span, weight] of CLOCK) if (Math.floor(local / span) !== Math.floor(localPrev / span)) return weight;
  return WEIGHT.none;
}

/** The weights of `times` (oldest first) from index `start` on, into `out` (same indexes);
 * the first bar's is guessed from the average spacing, as the chart library does. */
export function fillWeights(times: readonly number[], start: number, weigh: (sec: number, prev: number) => number, out: number[]): void {
  const n = times.length;
  for (let i = Math.max(1, start); i < n; i += 1) out[i] = weigh(times[i]!, times[i - 1]!);
  if (start === 0 && n > 0) {
    const avg = n > 1 ? Math.ceil((times[n - 1]! - times[0]!) / (n - 1)) : 86400;
    out[0] = weigh(times[0]!, times[0]! - avg);
  }
}

/** A bar's time: "24 Nov, 09:30 ET", or its session's date for a daily bar. */
export function barTimeLabel(zone: Zone, interval: Interval): (sec: number) => string {
  if (interval === "1d") return (sec) => sessionDate(sec);
  const full = secondsFormatter(zone, { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
  return (sec) => `${full(sec)} ${zone.label}`;
}

/** The axis in `zone`, its date marks on the sessions of `cal`. */
export function timeAxis(zone: Zone, interval: Interval, cal: SessionCalendar): TimeAxis {
  const daily = interval === "1d";
  const hm = secondsFormatter(zone, { hour: "2-digit", minute: "2-digit" });
  const dm = (sec: number) => sessionDate(sessionDay(sec, cal) * 86400, { day: "2-digit", month: "short" });
  const m = (sec: number) => sessionDate(sessionDay(sec, cal) * 86400, { month: "short" });
  const y = (sec: number) => sessionDate(sessionDay(sec, cal) * 86400, { year: "numeric" });
  return {
    timeVisible: !daily,
    crosshairLabel: barTimeLabel(zone, interval),
    tickLabel: (sec, kind) => {
      if (kind === "year") return y(sec);
      if (kind === "month") return daily ? m(sec) : dm(sec);
      if (kind === "day" || daily) return dm(sec);
      return hm(sec);
    },
    key: `${zone.tz} ${zone.label} ${interval} ${cal.tz} ${cal.shiftSec}`,
    weight: (sec, prev) => markWeight(sec, prev, cal, daily ? "UTC" : zone.tz),
  };
}
