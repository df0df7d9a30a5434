// The quote line as quote sites write it: in the regular session the price and its change
// from the last regular close; before the open "At close 254.50 · Pre-market 255.90 +0.55 %";
// after the close "At close 254.50 +1.20 (+0.47 %) · After hours 255.26 +0.76 (+0.30 %)" (the
// after-hours change is measured from the day's regular close, v1.2 `regular_close`).

import type { QuoteData } from "./types";

export interface QuotePart {
  /** "At close", "Pre-market", "After hours"; "" for the plain price. */
  label: string;
  price: number;
  change: number | null;
  percent: number | null;
}

const pct = (change: number | null, base: number | null | undefined): number | null =>
  change === null || base === null || base === undefined || base === 0 ? null : (change / base) * 100;

/** The parts of the quote line, in reading order. */
export function sessionQuoteParts(d: QuoteData): QuotePart[] {
  const session = d.session;
  const prev = d.prev_close;
  const close = d.regular_close;
  if (typeof close === "number" && session !== "regular" && session !== "pre") {
    const atClose = prev === null ? null : close - prev;
    const after = d.price - close;
    return [
      { label: "At close", price: close, change: atClose, percent: pct(atClose, prev) },
      { label: "After hours", price: d.price, change: after, percent: pct(after, close) },
    ];
  }
  if (session === "pre" && prev !== null) {
    const change = d.change ?? d.price - prev;
    return [
      { label: "At close", price: prev, change: null, percent: null },
      { label: "Pre-market", price: d.price, change, percent: d.change_percent ?? pct(change, prev) },
    ];
  }
  return [{ label: "", price: d.price, change: d.change, percent: d.change_percent }];
}

/** "Pre-market" / "After hours" tag for a watchlist row, or null in the regular session. */
export function sessionTag(session: QuoteData["session"]): { short: string; long: string } | null {
  if (session === "pre") return { short: "PRE", long: "Pre-market price" };
  if (session === "post") return { short: "AH", long: "After-hours price" };
  return null;
}
