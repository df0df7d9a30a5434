// Which market a ticker trades on (the server's rule, docs/protocol.md) and how to show
// its session times in the chosen time zone (lib/timezone.ts).

import type { Zone } from "./timezone";
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

const SESSION_LABEL: Record<MarketStatus["session"], string> = {
  regular: "Open",
  pre: "Pre-market",
  post: "After hours",
  closed: "Closed",
};

/** "Open · closes Fri 16:00 ET", "Closed · opens Mon 09:30 ET", "Open 24/7", in `zone`. */
export function describeMarket(status: MarketStatus, zone: Zone): { label: string; detail: string } {
  const label = SESSION_LABEL[status.session] ?? status.session;
  if (status.market === "CRYPTO") return { label: "Open", detail: "24/7" };
  if (status.market === "SIM") return { label: "Open", detail: "24/7 (simulator without market hours)" };
  const when = (iso: string) => {
    const f = new Intl.DateTimeFormat("en-GB", { timeZone: zone.tz, weekday: "short", hour: "2-digit", minute: "2-digit", hour12: false });
    return `${f.format(new Date(iso))} ${zone.label}`;
  };
  if (status.is_open && status.next_close) return { label, detail: `closes ${when(status.next_close)}` };
  if (status.next_open) return { label, detail: `opens ${when(status.next_open)}` };
  return { label, detail: "" };
}
