// The crosshair legend: what it says about a bar (OHLC, volume, the change from the bar
// before, its session, the compared ticker's close at that time), and writing that into the
// legend's spans (`data-f="…"`) straight in the DOM: no render per mouse move.
// With the price scale in % (a comparison shown), the legend speaks the axis's language: the
// change of each series, the chart's and the compared one's, in % from its first bar in view
// (as the scale measures it), not a price.

import { INTERVAL_SECONDS, type Interval } from "../candles";
import { formatCount, formatPrice, formatSigned, reportedVolume } from "../format";
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

/** Where the % scale measures from: the first bar in view of each series (its close). */
export interface PercentBase {
  /** The time of the chart's first bar in view (the legend names it). */
  time: number;
  close: number;
  /** The compared ticker's first close at or after that time (null: none in view). */
  compared: number | null;
}

/**
 * The bases of a % scale whose view starts at logical index `from` (the chart's own bar
 * index; a fraction is the half bar of margin): the first whole bar in view, and the compared
 * ticker's first bar at or after it. Null when no bar is in view.
 */
export function percentBase(bars: readonly Bar[], from: number, compared: Compared | null): PercentBase | null {
  const first = Math.max(0, Math.ceil(from - 1e-9));
  const bar = bars[first];
  if (!bar) return null;
  let cmp: number | null = null;
  if (compared) {
    for (let i = first; i < bars.length && cmp === null; i += 1) cmp = compared.byTime.get(bars[i]!.time)?.close ?? null;
  }
  return { time: bar.time, close: bar.close, compared: cmp };
}

const pctFrom = (value: number, base: number | null): number | null => (base !== null && base !== 0 ? (value / base - 1) * 100 : null);

/**
 * The legend for bar `index` of `bars` (null: the newest). `percent`: the price scale is in %
 * and measures from there (the change and the compared ticker said in % from it).
 */
export function legendFor(bars: readonly Bar[], index: number | null, look: LegendLook, compared: Compared | null, percent: PercentBase | null = null): Legend {
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
  text.v = formatCount(reportedVolume(look.ticker, bar.volume));
  let trend: Legend["trend"] = chg > 0 ? "up" : chg < 0 ? "down" : "flat";
  if (percent) {
    // From the first bar in view, as the axis reads (the bar before is not the reference).
    const fromStart = pctFrom(bar.close, percent.close);
    text.chg = `${formatSigned(fromStart, 2, "%")} since ${barTimeLabel(look.zone, look.interval)(percent.time)}`;
    trend = fromStart === null || fromStart === 0 ? "flat" : fromStart > 0 ? "up" : "down";
  } else text.chg = `${formatSigned(chg, d)} (${formatSigned(pct, 2, "%")})`;
  const session = look.market === "XNYS" && shadable(INTERVAL_SECONDS[look.interval]) ? sessionOf(bar.time, "XNYS") : null;
  text.sess = session === "pre" ? "Pre-market" : session === "post" ? "After hours" : "";
  if (compared) {
    const theirs = compared.byTime.get(bar.time);
    const value = !theirs ? null : percent ? pctFrom(theirs.close, percent.compared) : null;
    text.cmp = `${compared.ticker} ${!theirs ? "—" : percent ? formatSigned(value, 2, "%") : formatPrice(theirs.close, null)}`;
  }
  return { text, trend, hovered: index === null ? "" : String(bar.time) };
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
