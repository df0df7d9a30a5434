// The crosshair legend: what it says about a bar (OHLC, volume, the change from the bar
// before, its session, the compared ticker's close at that time), and writing that into the
// legend's spans (`data-f="…"`) straight in the DOM: no render per mouse move.

import { INTERVAL_SECONDS, type Interval } from "../candles";
import { formatCount, formatPrice, formatSigned } from "../format";
import { sessionOf, shadable } from "../sessions";
import type { Zone } from "../timezone";
import type { Bar } from "../types";
import { barTimeLabel, intervalLabel } from "./axis";

export interface LegendLook {
  ticker: string;
  interval: Interval;
  decimals: number;
  zone: Zone;
  market: string;
}

export const LEGEND_FIELDS = ["name", "time", "o", "h", "l", "c", "v", "chg", "sess", "cmp"] as const;
export type LegendField = (typeof LEGEND_FIELDS)[number];

export interface Legend {
  text: Record<LegendField, string>;
  /** The change's direction (the `chg` span's class); null: no bar, left as it was. */
  trend: "up" | "down" | "flat" | null;
  /** The bar under the crosshair (its time), or "" when the legend shows the newest bar. */
  hovered: string;
}

/** The compared ticker's bars by time. */
export interface Compared {
  ticker: string;
  byTime: ReadonlyMap<number, Bar>;
}

/** The legend for bar `index` of `bars` (null: the newest). */
export function legendFor(bars: readonly Bar[], index: number | null, look: LegendLook, compared: Compared | null): Legend {
  const text = Object.fromEntries(LEGEND_FIELDS.map((f) => [f, ""])) as Record<LegendField, string>;
  text.name = `${look.ticker} · ${intervalLabel(look.interval)}`;
  const idx = index === null ? bars.length - 1 : index;
  const bar = bars[idx];
  if (!bar) return { text, trend: null, hovered: "" };
  const d = look.decimals;
  const prev = bars[idx - 1];
  const base = prev ? prev.close : bar.open;
  const chg = bar.close - base;
  const pct = base !== 0 ? (chg / base) * 100 : null;
  text.time = barTimeLabel(look.zone, look.interval)(bar.time);
  text.o = formatPrice(bar.open, d);
  text.h = formatPrice(bar.high, d);
  text.l = formatPrice(bar.low, d);
  text.c = formatPrice(bar.close, d);
  text.v = formatCount(bar.volume);
  text.chg = `${formatSigned(chg, d)} (${formatSigned(pct, 2, "%")})`;
  const session = look.market === "XNYS" && shadable(INTERVAL_SECONDS[look.interval]) ? sessionOf(bar.time, "XNYS") : null;
  text.sess = session === "pre" ? "Pre-market" : session === "post" ? "After hours" : "";
  if (compared) {
    const theirs = compared.byTime.get(bar.time);
    text.cmp = `${compared.ticker} ${theirs ? formatPrice(theirs.close, null) : "—"}`;
  }
  return { text, trend: chg > 0 ? "up" : chg < 0 ? "down" : "flat", hovered: index === null ? "" : String(bar.time) };
}

/** The legend into `el`'s `[data-f]` spans (and `data-hovered` on `el`). */
export function writeLegend(el: HTMLElement, legend: Legend): void {
  for (const f of LEGEND_FIELDS) {
    const span = el.querySelector<HTMLElement>(`[data-f="${f}"]`);
    if (!span) continue;
    span.textContent = legend.text[f];
    if (f === "chg" && legend.trend !== null) span.className = legend.trend;
  }
  el.dataset.hovered = legend.hovered;
}
