// Stand-ins for the chart controller's three inputs: a chart surface that records what is
// drawn (and refuses what lightweight-charts refuses: an update older than the newest bar),
// a bar feed with the StockfeedClient's `bars` event, store and retain counts, and REST
// history answered by the test.

import type { BarsEvent } from "@stockfeed/client";
import type { Interval, WireBar } from "../src/lib/candles";
import type { HistoryLoader } from "../src/lib/chart/feed";
import type { ChartPalette } from "../src/lib/chart/palette";
import type { ChartStyle, ChartSurface, LineSurface, LogicalRange, PriceLineSpec, TimeAxis } from "../src/lib/chart/surface";
import type { RangePreset } from "../src/lib/ranges";
import type { Session } from "../src/lib/sessions";
import type { Bar } from "../src/lib/types";

type Point = { time: number; value: number };

/** series.update()'s rule: the newest point replaced, or a newer one appended. */
function upsert<T extends { time: number }>(list: T[], item: T, what: string): void {
  const last = list[list.length - 1];
  if (last && item.time < last.time) throw new Error(`${what}: update at ${item.time} is older than the newest (${last.time})`);
  if (last && item.time === last.time) list[list.length - 1] = item;
  else list.push(item);
}

export class FakeLine implements LineSurface {
  points: Point[] = [];
  removed = false;
  redraws = 0;
  constructor(readonly title: string) {}
  setPoints(points: readonly Point[]): void {
    this.points = [...points];
    this.redraws += 1;
  }
  updatePoint(point: Point): void {
    upsert(this.points, point, `line ${this.title}`);
  }
  remove(): void {
    this.removed = true;
  }
}

export class FakeSurface implements ChartSurface {
  bars: Bar[] = [];
  /** setBars calls (whole redraws) and updateBar calls. */
  redraws = 0;
  updates = 0;
  sessions: (Session | null)[] = [];
  axis: TimeAxis | null = null;
  decimals: number | null = null;
  priceLines: PriceLineSpec[] = [];
  lines: FakeLine[] = [];
  isPercent = false;
  isLog = false;
  style: ChartStyle = "candles";
  range: LogicalRange | null = null;
  crosshair: Bar | null = null;
  removed = false;
  private rangeFns = new Set<(r: LogicalRange | null) => void>();
  private crosshairFns = new Set<(logical: number | null, byUser: boolean) => void>();

  setBars(bars: readonly Bar[]): void {
    this.bars = bars.map((b) => ({ ...b }));
    this.redraws += 1;
  }
  updateBar(bar: Bar): void {
    upsert(this.bars, { ...bar }, "candles");
    this.updates += 1;
  }
  setSessions(sessions: (Session | null)[]): void {
    this.sessions = [...sessions];
  }
  putSession(index: number, session: Session | null): void {
    if (index > this.sessions.length) return;
    this.sessions[index] = session;
  }
  shaded(): number {
    return this.sessions.filter((s) => s === "pre" || s === "post").length;
  }
  setTimeAxis(axis: TimeAxis): void {
    this.axis = axis;
  }
  setPriceDecimals(decimals: number): void {
    this.decimals = decimals;
  }
  /** The "Prev close" lines' prices. */
  get prevCloses(): number[] {
    return this.priceLines.filter((l) => l.title === "Prev close").map((l) => l.price);
  }
  addPriceLine(spec: PriceLineSpec): () => void {
    const mine = { ...spec };
    this.priceLines.push(mine);
    return () => {
      this.priceLines = this.priceLines.filter((l) => l !== mine);
    };
  }
  palettes: ChartPalette[] = [];
  setPalette(palette: ChartPalette): void {
    this.palettes.push(palette);
  }
  setStyle(style: ChartStyle): void {
    this.style = style;
  }
  setLog(on: boolean): void {
    this.isLog = on;
  }
  log(): boolean {
    return this.isLog;
  }
  dateMarks(): { time: number; label: string }[] {
    return [];
  }
  addLine(title: string): LineSurface {
    const line = new FakeLine(title);
    this.lines.push(line);
    return line;
  }
  /** The lines not removed. */
  get liveLines(): FakeLine[] {
    return this.lines.filter((l) => !l.removed);
  }
  setPercent(on: boolean): void {
    this.isPercent = on;
  }
  percent(): boolean {
    return this.isPercent;
  }
  visibleRange(): LogicalRange | null {
    return this.range;
  }
  setVisibleRange(range: LogicalRange): void {
    this.range = { ...range };
    for (const fn of this.rangeFns) fn(this.range);
  }
  onVisibleRange(fn: (range: LogicalRange | null) => void): () => void {
    this.rangeFns.add(fn);
    return () => this.rangeFns.delete(fn);
  }
  onCrosshair(fn: (logical: number | null, byUser: boolean) => void): () => void {
    this.crosshairFns.add(fn);
    return () => this.crosshairFns.delete(fn);
  }
  /** The mouse over bar `logical` (null: off the bars). */
  hover(logical: number | null): void {
    for (const fn of this.crosshairFns) fn(logical, true);
  }
  setCrosshair(bar: Bar): void {
    this.crosshair = bar;
    // lightweight-charts tells its subscribers of a programmatic move too, without an event.
    const i = this.bars.findIndex((b) => b.time === bar.time);
    for (const fn of this.crosshairFns) fn(i, false);
  }
  clearCrosshair(): void {
    this.crosshair = null;
  }
  remove(): void {
    this.removed = true;
  }
  get listeners(): number {
    return this.rangeFns.size + this.crosshairFns.size;
  }
}

export class FakeFeed {
  private handlers = new Set<(ev: BarsEvent) => void>();
  private store = new Map<string, WireBar[]>();
  /** Retain counts by "TICKER interval". */
  held = new Map<string, number>();

  on(_event: "bars", handler: (ev: BarsEvent) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }
  bars(ticker: string, interval: Interval): readonly WireBar[] {
    return this.store.get(`${ticker} ${interval}`) ?? [];
  }
  retain(ticker: string, interval: Interval): () => void {
    const key = `${ticker} ${interval}`;
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.held.get(key) ?? 1) - 1;
      if (n > 0) this.held.set(key, n);
      else this.held.delete(key);
    };
  }
  /** The feed's store for the ticker and interval, without an event (what it held already). */
  hold(ticker: string, interval: Interval, bars: WireBar[]): void {
    this.store.set(`${ticker} ${interval}`, bars);
  }
  /** Bars arrive: `changed` laid over the store (by time), then the event. */
  send(ticker: string, interval: Interval, changed: WireBar[], whole = false): void {
    const byTime = new Map(this.bars(ticker, interval).map((b) => [b.time, b]));
    for (const b of changed) byTime.set(b.time, b);
    const bars = [...byTime.values()].sort((a, b) => a.time - b.time);
    this.store.set(`${ticker} ${interval}`, bars);
    for (const fn of [...this.handlers]) fn({ ticker, interval, bars, changed, whole });
  }
  get listeners(): number {
    return this.handlers.size;
  }
}

interface Asked {
  ticker: string;
  interval: Interval;
  preset: RangePreset;
  signal: AbortSignal;
  answer: (bars: WireBar[]) => void;
  fail: (err: Error) => void;
}

/** REST history that the test answers, request by request. */
export class Histories {
  asked: Asked[] = [];
  readonly load: HistoryLoader = (ticker, interval, preset, signal) =>
    new Promise((answer, fail) => {
      this.asked.push({ ticker, interval, preset, signal, answer, fail });
    });

  /** The latest request for `ticker`. */
  last(ticker: string): Asked {
    const a = [...this.asked].reverse().find((x) => x.ticker === ticker);
    if (!a) throw new Error(`no history asked for ${ticker}`);
    return a;
  }
}

/** A bar on the wire: open 100, the close given, high and low around both. */
export const wire = (time: number, close: number, volume: number | null = 10): WireBar => ({
  time,
  open: 100,
  high: Math.max(100, close) + 1,
  low: Math.min(100, close) - 1,
  close,
  volume,
});

/** Promise callbacks and the microtasks after them. */
export const settle = () => new Promise<void>((r) => setTimeout(r, 0));
