// Number and age formatting for dense, aligned columns: thousands separators everywhere,
// and the instrument's own precision (`price_decimals`) when the server sends it.

import { marketOf } from "./market";

/** Decimals when the instrument's precision is unknown: cents, or 4 places under 1. */
export function defaultDecimals(p: number): number {
  return Math.abs(p) >= 1 ? 2 : 4;
}

const numberFormats = new Map<number, Intl.NumberFormat>();
function numberFormat(decimals: number): Intl.NumberFormat {
  let f = numberFormats.get(decimals);
  if (!f) {
    f = new Intl.NumberFormat("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
    numberFormats.set(decimals, f);
  }
  return f;
}

/** Clamp a precision from the wire to something Intl accepts. */
export function validDecimals(d: unknown): number | null {
  return typeof d === "number" && Number.isInteger(d) && d >= 0 && d <= 10 ? d : null;
}

/** "63,334.74"; "1.08523" with 5 decimals; "—" for nothing. */
export function formatPrice(p: number | null | undefined, decimals?: number | null): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return "—";
  return numberFormat(validDecimals(decimals) ?? defaultDecimals(p)).format(p);
}

/** "+1,234.50", "−0.0012" (a real minus sign), "—". */
export function formatSigned(v: number | null | undefined, digits = 2, suffix = ""): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  const rounded = numberFormat(digits).format(Math.abs(v));
  const zero = Number(rounded.replace(/,/g, "")) === 0;
  const sign = zero ? "" : v > 0 ? "+" : "−";
  return `${sign}${rounded}${suffix}`;
}

export function formatAge(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "—";
  const s = Math.max(0, ms) / 1000;
  // The clock that drives ages ticks once a second: under a second is simply "<1s".
  if (s < 1) return "<1s";
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** "12.35K", "1.20M" for columns; see formatCount for the full figure. */
export function formatVolume(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)}B`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}K`;
  return numberFormat(0).format(v);
}

/** "1,234,567". */
export function formatCount(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  return numberFormat(0).format(v);
}

const UNITS: [number, string][] = [
  [1e12, "T"],
  [1e9, "B"],
  [1e6, "M"],
  [1e3, "K"],
];

/**
 * A change for a narrow column: "+2.29K" for BTC's +2,294.10, "−0.0071" for EUR/USD (at
 * most 4 decimals), "+1.25" — never wider than 8 characters, so never cut.
 */
export function formatChange(v: number | null | undefined, decimals = 2): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  // Sign, integer digits, point and decimals in 8 characters: fewer decimals for bigger moves.
  const whole = a < 1 ? 1 : Math.floor(Math.log10(a)) + 1;
  const digits = Math.min(4, Math.max(0, validDecimals(decimals) ?? 2), Math.max(0, 6 - whole));
  if (Number(a.toFixed(digits)) < 1000) return formatSigned(v, digits);
  const [size, unit] = UNITS.find(([s]) => a >= s * 0.9995) ?? ([1e3, "K"] as const);
  return formatSigned(v / size, 2, unit);
}

/** A day's volume as the market reports it. Currency pairs and indexes (^DJI, ^GSPC) trade
 * no shares of their own: the sources say 0 for their volume, so it is "nothing", not zero. */
export function reportedVolume(ticker: string, v: number | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  return v === 0 && (marketOf(ticker) === "FX" || ticker.startsWith("^")) ? null : v;
}
