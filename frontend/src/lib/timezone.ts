// One time-zone choice for the whole dashboard: the exchange's own zone (ET for US equities
// and FX, UTC for crypto) or the browser's. Every clock, axis, legend and "last update"
// goes through here, and every time shown carries its zone's label.

export type ZoneChoice = "exchange" | "local";

export interface Zone {
  /** IANA name for Intl. */
  tz: string;
  /** Short label printed after each time: "ET", "UTC", "CET". */
  label: string;
}

const EXCHANGE_ZONES: Record<string, Zone> = {
  XNYS: { tz: "America/New_York", label: "ET" },
  FX: { tz: "America/New_York", label: "ET" },
  CME: { tz: "America/Chicago", label: "CT" },
  CRYPTO: { tz: "UTC", label: "UTC" },
  // The simulator without market hours: one market, open around the clock, days in UTC.
  SIM: { tz: "UTC", label: "UTC" },
};

export const isZoneChoice = (v: unknown): v is ZoneChoice => v === "exchange" || v === "local";

export function exchangeZone(market: string): Zone {
  return EXCHANGE_ZONES[market] ?? { tz: "UTC", label: "UTC" };
}

/** The browser's zone, labelled with its short name ("CET", "GMT+2"), or the IANA city. */
export function localZone(): Zone {
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  return { tz, label: shortName(tz) };
}

function shortName(tz: string): string {
  try {
    const part = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "short" })
      .formatToParts(new Date())
      .find((p) => p.type === "timeZoneName");
    if (part?.value) return part.value;
  } catch {
    /* an engine without the zone: the name itself */
  }
  return tz.split("/").pop()?.replace(/_/g, " ") ?? tz;
}

export function zoneFor(choice: ZoneChoice, market: string): Zone {
  return choice === "local" ? localZone() : exchangeZone(market);
}

const cache = new Map<string, Intl.DateTimeFormat>();
function fmt(tz: string, opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = tz + JSON.stringify(opts);
  let f = cache.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour12: false, ...opts });
    cache.set(key, f);
  }
  return f;
}

/** "14:32:05 ET" (or "14:32 ET" without seconds). */
export function formatTime(ms: number | null, zone: Zone, seconds = true): string {
  if (ms === null || !Number.isFinite(ms)) return "—";
  const f = fmt(zone.tz, seconds ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" });
  return `${f.format(new Date(ms))} ${zone.label}`;
}

/** "Mon 24 Nov 14:32 ET". */
export function formatDateTime(ms: number, zone: Zone): string {
  const f = fmt(zone.tz, { weekday: "short", day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
  return `${f.format(new Date(ms))} ${zone.label}`;
}

/** A formatter of epoch seconds in the zone (for the chart's axis and crosshair). */
export function secondsFormatter(zone: Zone, opts: Intl.DateTimeFormatOptions): (sec: number) => string {
  const f = fmt(zone.tz, opts);
  return (sec) => f.format(new Date(sec * 1000));
}

/**
 * A daily bar's time is 00:00 UTC of its session's date (DESIGN, "Bars on the wire"): it is
 * a date, shown as such in UTC whatever the zone, or Monday's bar would read Sunday in New York.
 */
export function sessionDate(sec: number, opts: Intl.DateTimeFormatOptions = { day: "2-digit", month: "short", year: "2-digit" }): string {
  return fmt("UTC", opts).format(new Date(sec * 1000));
}
