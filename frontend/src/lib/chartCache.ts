// The chart's memory per ticker and interval: the bars drawn and where the user was looking,
// so switching back shows the same chart at once, zoom included, while a fresh history
// request fills in what happened meanwhile (laid over it by lib/candles.ts's BarList). Bounded (least recently used goes first).

import type { Bar } from "./types";

/** What was in view, counted back from the newest bar (so new bars keep the same window). */
export interface View {
  fromEnd: number;
  toEnd: number;
}

export interface ChartEntry {
  bars: Bar[];
  view: View | null;
  /** The range preset the view was taken under (another preset shows its own span). */
  preset: string;
  savedAt: number;
}

export class ChartCache {
  private readonly entries = new Map<string, ChartEntry>();

  constructor(private readonly limit = 24) {}

  static key(ticker: string, interval: string): string {
    return `${ticker}|${interval}`;
  }

  get(key: string): ChartEntry | undefined {
    const e = this.entries.get(key);
    if (e) {
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }

  set(key: string, entry: ChartEntry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.limit) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The logical range to show for `n` bars: the saved view, or the newest `defaultBars`. */
export function rangeFor(n: number, view: View | null, defaultBars = 150, rightOffset = 4): { from: number; to: number } {
  if (view) return { from: n - view.fromEnd, to: n - view.toEnd };
  return { from: Math.max(0, n - defaultBars), to: n + rightOffset };
}

export function viewOf(n: number, range: { from: number; to: number } | null): View | null {
  return range ? { fromEnd: n - range.from, toEnd: n - range.to } : null;
}

/** One cache for the page: charts come and go (layout changes), their memory stays. */
export const chartCache = new ChartCache();
