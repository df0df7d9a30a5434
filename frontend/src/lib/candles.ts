// The candles on screen, from the server's bars. The server builds bars once per deployment
// from the updates (the wire's `bars` then `bar` upserts; REST history ends with the same
// bars), so the chart never folds ticks itself: after a reconnect or a polling spell it
// holds exactly the server's candles, with no hole, no flat candle from one poll a minute,
// and each bar's exact volume.
//
// BarList keeps them sorted by time and says what a change costs the chart: the newest
// bar (or a new one after it) is a cheap series.update(); a bar further back that really
// changed (rare: a resume repeats recent bars, mostly unchanged) is a setData().

import type { Bar as ClientBar } from "@stockfeed/client";
import type { Bar } from "./types";

export type Interval = "1m" | "5m" | "15m" | "1h" | "1d";

export const INTERVALS: Interval[] = ["1m", "5m", "15m", "1h", "1d"];

export const INTERVAL_SECONDS: Record<Interval, number> = {
  "1m": 60,
  "5m": 300,
  "15m": 900,
  "1h": 3600,
  "1d": 86400,
};

/** A bar as the server sends it, on the wire or over REST (volume may be null: an index
 * has none). */
export type WireBar = ClientBar;

export const toBar = (b: WireBar): Bar => ({ time: b.time, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume ?? 0 });

const same = (a: Bar, b: Bar) =>
  a.time === b.time && a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume;

export type BarChange =
  /** Nothing changed on screen. */
  | { kind: "none" }
  /** Update these bars, oldest first (each the last one or a new last one). */
  | { kind: "tail"; bars: Bar[] }
  /** A bar before the last changed or was inserted: draw the whole list again. */
  | { kind: "reset" };

export class BarList {
  /** The bars, oldest first: the series' logical index is the array index. */
  readonly bars: Bar[];

  constructor(bars: Bar[] = []) {
    this.bars = bars;
  }

  /** Lay `incoming` (any order, any times) over the list: a bar of a known time replaces it. */
  apply(incoming: readonly WireBar[]): BarChange {
    const list = this.bars;
    const tail: Bar[] = [];
    let reset = false;
    for (const raw of [...incoming].sort((a, b) => a.time - b.time)) {
      const bar = toBar(raw);
      const last = list[list.length - 1];
      if (!last || bar.time > last.time) {
        list.push(bar);
        tail.push(bar);
      } else if (bar.time === last.time) {
        if (same(bar, last)) continue;
        list[list.length - 1] = bar;
        tail.push(bar);
      } else {
        let i = list.length - 2;
        while (i >= 0 && list[i]!.time > bar.time) i -= 1;
        if (i >= 0 && list[i]!.time === bar.time) {
          if (same(bar, list[i]!)) continue;
          list[i] = bar;
        } else list.splice(i + 1, 0, bar);
        reset = true;
      }
    }
    if (reset) return { kind: "reset" };
    return tail.length > 0 ? { kind: "tail", bars: tail } : { kind: "none" };
  }
}
