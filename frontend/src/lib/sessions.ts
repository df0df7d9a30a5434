// Which part of the trading day a bar belongs to, and which trading day (session) it is.
//
// The part: US equities (XNYS) trade a pre-market from 04:00 and a post-market to 20:00
// around the 09:30-16:00 regular session, New York time. Closed hours have no bars at all
// (the time axis skips them), so they need no shade. Other markets (crypto, FX, the
// simulator without market hours) have one session: no shading. By the clock, not the
// calendar: on a half day (13:00 close) the afternoon bars read as regular. Only the current
// day's session comes from the server (market_status).
//
// The session: a market's trading day as its exchange counts it (lib/ranges.ts counts them
// for 1D and 5D; the time axis puts its date labels on their first bars; VWAP starts again
// with each). XNYS: the New York date. FX: 17:00 to 17:00 New York time, dated by the day it
// ends (as the server's FX days). CME Globex: 17:00 to 16:00 Chicago time, likewise. Crypto
// and the simulator without market hours: UTC days. Daily bars carry their session's date
// at 00:00 UTC (DESIGN, "Bars on the wire"): their session is that UTC date.

export type Session = "pre" | "regular" | "post";

/** How a market's bars fall into sessions. */
export interface SessionCalendar {
  /** The zone whose wall clock dates the sessions. */
  tz: string;
  /** Seconds added to a bar's local time before taking its date (FX: 7 h, so 17:00 opens
   * the next day's session). */
  shiftSec: number;
  /** Where a session opens, in seconds from 00:00 of its date on the shifted clock (FX: 0,
   * which is 17:00 the day before in New York). */
  openSec: number;
  /** How long a session lasts, open to close. */
  lengthSec: number;
}

const HOUR = 3600;
const DAY = 86400;

const UTC_DAYS: SessionCalendar = { tz: "UTC", shiftSec: 0, openSec: 0, lengthSec: DAY };

/**
 * The sessions of `market`'s bars of `intervalSec`. `extended`: XNYS's pre- and
 * post-market bars are shown (04:00-20:00), else the regular session only (09:30-16:00).
 */
export function sessionCalendar(market: string, intervalSec: number, extended = true): SessionCalendar {
  if (intervalSec >= DAY) return UTC_DAYS;
  switch (market) {
    case "XNYS":
      return extended
        ? { tz: "America/New_York", shiftSec: 0, openSec: 4 * HOUR, lengthSec: 16 * HOUR }
        : { tz: "America/New_York", shiftSec: 0, openSec: 9.5 * HOUR, lengthSec: 6.5 * HOUR };
    case "FX":
      return { tz: "America/New_York", shiftSec: 7 * HOUR, openSec: 0, lengthSec: DAY };
    case "CME":
      return { tz: "America/Chicago", shiftSec: 7 * HOUR, openSec: 0, lengthSec: 23 * HOUR };
    default:
      return UTC_DAYS;
  }
}

const offsetFormats = new Map<string, Intl.DateTimeFormat>();
/** Offsets by zone and UTC hour: zones change their offset on the hour (or half hour, far
 * from any session's edge), and a chart asks for thousands of bars' offsets at a time. */
const offsets = new Map<string, number>();

/** `tz`'s offset from UTC at `sec`, in seconds (New York in winter: -18000). */
export function zoneOffset(tz: string, sec: number): number {
  if (tz === "UTC") return 0;
  const hour = Math.floor(sec / HOUR);
  const key = `${tz} ${hour}`;
  const known = offsets.get(key);
  if (known !== undefined) return known;
  let f = offsetFormats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric" });
    offsetFormats.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(hour * HOUR * 1000)) if (part.type !== "literal") p[part.type] = Number(part.value);
  const local = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour! % 24, p.minute!) / 1000;
  const off = local - hour * HOUR;
  if (offsets.size > 50_000) offsets.clear();
  offsets.set(key, off);
  return off;
}

/** The session `sec` belongs to, as a day number (days since 1970-01-01 of its date). */
export function sessionDay(sec: number, cal: SessionCalendar): number {
  return Math.floor((sec + zoneOffset(cal.tz, sec) + cal.shiftSec) / DAY);
}

/** Where session `day` opens (epoch seconds). */
export function sessionOpen(day: number, cal: SessionCalendar): number {
  const localOpen = day * DAY - cal.shiftSec + cal.openSec;
  // The zone's offset near the open (its offset at the local time read as UTC, corrected once).
  const guess = localOpen - zoneOffset(cal.tz, localOpen);
  return localOpen - zoneOffset(cal.tz, guess);
}

/** A session day as a date: "2026-12-07". */
export const dayDate = (day: number): string => new Date(day * DAY * 1000).toISOString().slice(0, 10);

/** Minutes after midnight, New York time. */
function nyMinutes(timeSec: number): number {
  const local = timeSec + zoneOffset("America/New_York", timeSec);
  return Math.floor((((local % DAY) + DAY) % DAY) / 60);
}

/** The session of a bar starting at `timeSec`, on `market`; null where there is one session. */
export function sessionOf(timeSec: number, market: string): Session | null {
  if (market !== "XNYS") return null;
  const min = nyMinutes(timeSec);
  if (min < 9 * 60 + 30) return "pre";
  if (min >= 16 * 60) return "post";
  return "regular";
}

/** Whether bars of `intervalSec` can be shaded by session (a daily bar holds them all). */
export const shadable = (intervalSec: number): boolean => intervalSec <= 3600;

/** Whether a bar of `market` is in the extended hours (pre- or post-market). */
export const isExtended = (timeSec: number, market: string): boolean => {
  const s = sessionOf(timeSec, market);
  return s === "pre" || s === "post";
};
