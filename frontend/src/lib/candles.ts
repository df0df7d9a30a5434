// Live candles from ticks. Each tick lands in its interval's bucket:
//   same bucket as the forming candle -> replace it (high/low/close/volume move),
//   a later bucket                    -> append a new candle,
//   an earlier bucket                 -> ignore (the chart cannot rewrite the past cheaply,
//                                        and a late tick must not make it jump).
// The chart then calls series.update() with the result, never setData() per tick.

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

/** How much history each interval loads (within the server's range limits). */
export const INTERVAL_RANGE: Record<Interval, string> = {
  "1m": "1d",
  "5m": "5d",
  "15m": "1mo",
  "1h": "6mo",
  "1d": "1y",
};

export function bucketStart(timeSec: number, interval: Interval): number {
  const size = INTERVAL_SECONDS[interval];
  return Math.floor(timeSec / size) * size;
}

export type CandleResult =
  | { kind: "replace"; bar: Bar }
  | { kind: "append"; bar: Bar }
  | { kind: "ignore" };

export class CandleBuilder {
  private last: Bar | null = null;
  private lastCumVolume: number | null = null;

  constructor(readonly interval: Interval) {}

  /** The forming (last) candle, if any. */
  get current(): Bar | null {
    return this.last;
  }

  /** Start from history: the last bar becomes the forming one. */
  load(bars: Bar[]): void {
    const tail = bars[bars.length - 1];
    this.last = tail ? { ...tail } : null;
    this.lastCumVolume = null;
  }

  /**
   * Apply one tick (time in epoch ms, volume the day's cumulative volume or null).
   * The candle's volume grows by the cumulative volume's increase since the last tick.
   */
  apply(timeMs: number, price: number, cumVolume: number | null): CandleResult {
    const t = bucketStart(Math.floor(timeMs / 1000), this.interval);
    let delta = 0;
    if (cumVolume !== null) {
      if (this.lastCumVolume !== null) {
        // A smaller total means a new trading day started counting from zero.
        delta = cumVolume >= this.lastCumVolume ? cumVolume - this.lastCumVolume : cumVolume;
      }
    }
    const last = this.last;
    if (last !== null && t < last.time) {
      return { kind: "ignore" };
    }
    if (cumVolume !== null) this.lastCumVolume = cumVolume;
    if (last !== null && t === last.time) {
      const bar: Bar = {
        time: t,
        open: last.open,
        high: Math.max(last.high, price),
        low: Math.min(last.low, price),
        close: price,
        volume: last.volume + delta,
      };
      this.last = bar;
      return { kind: "replace", bar };
    }
    const bar: Bar = { time: t, open: price, high: price, low: price, close: price, volume: delta };
    this.last = bar;
    return { kind: "append", bar };
  }
}
