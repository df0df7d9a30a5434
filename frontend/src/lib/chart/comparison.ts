// The comparison: a second ticker's closes as a line over the candles, with the price scale
// in % (each series from its own first bar in view). Its bars come from the same sources as
// the candles: REST history for the preset, then the wire's bars while the page is live.

import { BarList, type Interval, type WireBar } from "../candles";
import type { RangePreset } from "../ranges";
import type { Bar } from "../types";
import type { BarFeed, HistoryLoader } from "./feed";
import type { Compared } from "./legend";
import type { ChartSurface, LineSurface } from "./surface";

export interface ComparisonSpec {
  ticker: string;
  /** Which of its bars are drawn (the extended hours hidden: its regular ones). */
  keep?: (time: number) => boolean;
  interval: Interval;
  preset: RangePreset;
  feed: BarFeed;
  history: HistoryLoader;
}

const point = (b: Bar) => ({ time: b.time, value: b.close });

export class Comparison implements Compared {
  readonly ticker: string;
  /** Its bars by time, for the legend. */
  readonly byTime = new Map<number, Bar>();
  private readonly series = new BarList();
  private readonly line: LineSurface;
  private readonly abort = new AbortController();
  private readonly off: () => void;
  private release: (() => void) | null = null;
  private live = false;
  /** The history is drawn: the wire's bars are taken from then on (before, from the feed's store). */
  private ready = false;

  /** `onDrawn`: the history is on screen (the legend can read it). */
  constructor(
    private readonly surface: ChartSurface,
    private readonly spec: ComparisonSpec,
    live: boolean,
    onDrawn: () => void,
  ) {
    const { ticker, interval, preset, feed, history } = spec;
    this.ticker = ticker;
    this.line = surface.addLine(ticker);
    surface.setPercent(true);
    this.off = feed.on("bars", (ev) => {
      if (this.ready && this.live && ev.ticker === ticker && ev.interval === interval) this.take(ev.changed);
    });
    this.setLive(live);
    const signal = this.abort.signal;
    void history(ticker, interval, preset, signal)
      .catch((): readonly WireBar[] => [])
      .then((bars) => {
        if (signal.aborted) return;
        this.series.apply(bars);
        this.series.apply(feed.bars(ticker, interval));
        this.drawAll();
        this.ready = true;
        onDrawn();
      });
  }

  /** Live: the ticker's bars wanted from the feed; not: let go (the line stays as it is). */
  setLive(on: boolean): void {
    this.live = on;
    if (on && !this.release) this.release = this.spec.feed.retain(this.ticker, this.spec.interval);
    else if (!on && this.release) {
      this.release();
      this.release = null;
    }
  }

  /** How many bars the line has (for the browser tests). */
  get size(): number {
    return this.byTime.size;
  }

  dispose(): void {
    this.abort.abort();
    this.off();
    this.setLive(false);
    this.line.remove();
    this.surface.setPercent(false);
  }

  private drawAll(): void {
    this.byTime.clear();
    const keep = this.spec.keep;
    const bars = keep ? this.series.bars.filter((b) => keep(b.time)) : this.series.bars;
    for (const b of bars) this.byTime.set(b.time, b);
    this.line.setPoints(bars.map(point));
  }

  private take(incoming: readonly WireBar[]): void {
    const change = this.series.apply(incoming);
    if (change.kind === "reset") this.drawAll();
    else if (change.kind === "tail")
      for (const b of change.bars) {
        if (this.spec.keep && !this.spec.keep(b.time)) continue;
        this.byTime.set(b.time, b);
        this.line.updatePoint(point(b));
      }
  }
}
