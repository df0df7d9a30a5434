// The watchlist's order: the user's own ("my order", the stored list), or sorted by symbol,
// change % or volume. Pure, for the component and its tests.

import type { Quote } from "./types";

export type SortKey = "mine" | "symbol" | "change" | "volume";
export type SortDir = "asc" | "desc";
export interface Sort {
  key: SortKey;
  dir: SortDir;
}

export const MY_ORDER: Sort = { key: "mine", dir: "asc" };
const KEYS: readonly SortKey[] = ["mine", "symbol", "change", "volume"];

export const isSort = (v: unknown): v is Sort =>
  typeof v === "object" &&
  v !== null &&
  KEYS.includes((v as Sort).key) &&
  ((v as Sort).dir === "asc" || (v as Sort).dir === "desc");

/** A column header pressed: that column in its natural direction (symbols A–Z, the
 * biggest change and volume first), or the other direction when it already sorts. */
export function nextSort(current: Sort, key: SortKey): Sort {
  if (key === "mine") return MY_ORDER;
  if (current.key === key) return { key, dir: current.dir === "asc" ? "desc" : "asc" };
  return { key, dir: key === "symbol" ? "asc" : "desc" };
}

function valueOf(q: Quote | undefined, key: SortKey): number | null {
  if (!q) return null;
  const v = key === "change" ? q.data.change_percent : key === "volume" ? q.data.volume : null;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** `tickers` in `sort`'s order; tickers without the value (no quote yet) last, in my order. */
export function sortTickers(tickers: readonly string[], quotes: Readonly<Record<string, Quote>>, sort: Sort): string[] {
  if (sort.key === "mine") return [...tickers];
  const sign = sort.dir === "asc" ? 1 : -1;
  const pos = new Map(tickers.map((t, i) => [t, i]));
  return [...tickers].sort((a, b) => {
    if (sort.key === "symbol") return sign * (a < b ? -1 : a > b ? 1 : 0);
    const va = valueOf(quotes[a], sort.key);
    const vb = valueOf(quotes[b], sort.key);
    if (va === null || vb === null) {
      if (va === vb) return pos.get(a)! - pos.get(b)!;
      return va === null ? 1 : -1;
    }
    return va === vb ? pos.get(a)! - pos.get(b)! : sign * (va - vb);
  });
}

/** `list` with `ticker` moved by `delta` places (clamped); the same array when nothing moves. */
export function moveTicker(list: readonly string[], ticker: string, delta: number): readonly string[] {
  const from = list.indexOf(ticker);
  if (from < 0) return list;
  const to = Math.max(0, Math.min(list.length - 1, from + delta));
  if (to === from) return list;
  const out = [...list];
  out.splice(from, 1);
  out.splice(to, 0, ticker);
  return out;
}

export const SORT_LABEL: Record<SortKey, string> = {
  mine: "My order",
  symbol: "Symbol",
  change: "Change %",
  volume: "Volume",
};
