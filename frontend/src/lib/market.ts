// Which market a ticker trades on (the server's rule, docs/protocol.md) and how to show
// its session times in the exchange's own time zone.

import type { MarketStatus } from "./types";

export const TICKER_RE = /^[A-Z0-9.\-=^]{1,15}$/;

export function normalizeTicker(raw: string): string | null {
  const t = raw.trim().toUpperCase();
  return TICKER_RE.test(t) ? t : null;
}

export function marketOf(ticker: string): string {
  if (/-(USD|USDT|EUR)$/.test(ticker)) return "CRYPTO";
  if (ticker.endsWith("=X")) return "FX";
  return "XNYS";
}

const ZONES: Record<string, { tz: string; label: string }> = {
  XNYS: { tz: "America/New_York", label: "ET" },
  FX: { tz: "America/New_York", label: "ET" },
};

export function formatExchangeTime(iso: string, market: string): string {
  const zone = ZONES[market] ?? { tz: "UTC", label: "UTC" };
  const when = new Date(iso);
  const text = new Intl.DateTimeFormat("en-US", {
    timeZone: zone.tz,
    weekday: "short",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  }).format(when);
  return `${text} ${zone.label}`;
}

const SESSION_LABEL: Record<MarketStatus["session"], string> = {
  regular: "Open",
  pre: "Pre-market",
  post: "After hours",
  closed: "Closed",
};

/** "Open · closes Fri 16:00 ET", "Closed · opens Mon 09:30 ET", "Open 24/7". */
export function describeMarket(status: MarketStatus): { label: string; detail: string } {
  const label = SESSION_LABEL[status.session] ?? status.session;
  if (status.market === "CRYPTO") return { label: "Open", detail: "24/7" };
  if (status.is_open && status.next_close) {
    return { label, detail: `closes ${formatExchangeTime(status.next_close, status.market)}` };
  }
  if (status.next_open) {
    return { label, detail: `opens ${formatExchangeTime(status.next_open, status.market)}` };
  }
  return { label, detail: "" };
}

/** The exchange's wall clock, e.g. "19:41:44 ET". */
export function exchangeClock(nowMs: number, market: string): string {
  const zone = ZONES[market] ?? { tz: "UTC", label: "UTC" };
  const text = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone.tz,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  }).format(new Date(nowMs));
  return `${text} ${zone.label}`;
}
