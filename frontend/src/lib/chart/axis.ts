// The chart's words for time, in the chosen zone: the axis ticks, the crosshair's label, and
// a bar's time in the legend and the text alternative. Daily bars are dates (never shifted:
// lib/timezone.ts's sessionDate).

import type { Interval } from "../candles";
import { secondsFormatter, sessionDate, type Zone } from "../timezone";
import type { TimeAxis } from "./surface";

export const intervalLabel = (i: Interval): string => (i === "1d" ? "1D" : i);

/** A bar's time: "24 Nov, 09:30 ET", or its session's date for a daily bar. */
export function barTimeLabel(zone: Zone, interval: Interval): (sec: number) => string {
  if (interval === "1d") return (sec) => sessionDate(sec);
  const full = secondsFormatter(zone, { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
  return (sec) => `${full(sec)} ${zone.label}`;
}

export function timeAxis(zone: Zone, interval: Interval): TimeAxis {
  const daily = interval === "1d";
  const hm = secondsFormatter(zone, { hour: "2-digit", minute: "2-digit" });
  const dm = secondsFormatter(zone, { day: "2-digit", month: "short" });
  const y = secondsFormatter(zone, { year: "numeric" });
  return {
    timeVisible: !daily,
    crosshairLabel: barTimeLabel(zone, interval),
    tickLabel: (sec, kind) => {
      if (daily) return kind === "year" ? sessionDate(sec, { year: "numeric" }) : sessionDate(sec, { day: "2-digit", month: "short" });
      return kind === "year" ? y(sec) : kind === "month" || kind === "day" ? dm(sec) : hm(sec);
    },
  };
}
