// The chart surface on lightweight-charts v5: the dashboard's look (dark theme, monospace
// labels, green/red candles, volume under them, pre/post-market bands behind them) and the
// library's calls behind surface.ts's few methods. Sized by its box (autoSize: a
// ResizeObserver); the newest bar is drawn with series.update(), never setData() per tick.
//
// The time scale is the library's own with one change (SessionScale): the bars' weights,
// which decide where the axis writes dates, come from the session calendar (lib/chart/axis.ts
// markWeight), so a date sits on each session's first bar in the exchange's time, not at
// 00:00 UTC.

import {
  AreaSeries,
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  LineSeries,
  LineStyle,
  PriceScaleMode,
  TickMarkType,
  createChartEx,
  defaultHorzScaleBehavior,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  type MouseEventParams,
  type SeriesType,
  type Time,
  type TickMarkWeightValue,
  type TimeScalePoint,
  type UTCTimestamp,
} from "lightweight-charts";
import { formatPrice } from "../format";
import type { Bar } from "../types";
import { fillWeights } from "./axis";
import { SessionShading } from "./sessionShading";
import type { ChartStyle, ChartSurface, LineSurface, LogicalRange, PriceLineSpec, TickKind } from "./surface";

const UP = "#26a69a";
const DOWN = "#ef5350";
const LINE = "#4c9aff";

const KIND: Record<TickMarkType, TickKind> = {
  [TickMarkType.Year]: "year",
  [TickMarkType.Month]: "month",
  [TickMarkType.DayOfMonth]: "day",
  [TickMarkType.Time]: "time",
  [TickMarkType.TimeWithSeconds]: "time",
};

const at = (sec: number) => sec as UTCTimestamp;
const seconds = (t: Time) => t as number;
const candle = (b: Bar) => ({ time: at(b.time), open: b.open, high: b.high, low: b.low, close: b.close });
const closeOf = (b: Bar) => ({ time: at(b.time), value: b.close });
const volumeBar = (b: Bar) => ({ time: at(b.time), value: b.volume, color: b.close >= b.open ? `${UP}66` : `${DOWN}66` });

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The library's time scale, its bars weighed by `weigh` (null: the library's own way). */
class SessionScale extends defaultHorzScaleBehavior() {
  weigh: ((sec: number, prev: number) => number) | null = null;
  private readonly times: number[] = [];
  private readonly weights: number[] = [];

  override fillWeightsForPoints(points: readonly Mutable<TimeScalePoint>[], start: number): void {
    const weigh = this.weigh;
    if (!weigh) {
      super.fillWeightsForPoints(points, start);
      return;
    }
    const times = this.times;
    times.length = points.length;
    for (let i = Math.max(0, start - 1); i < points.length; i += 1) times[i] = points[i]!.originalTime as number;
    fillWeights(times, start, weigh, this.weights);
    for (let i = start; i < points.length; i += 1) points[i]!.timeWeight = this.weights[i]! as TickMarkWeightValue;
  }
}

interface Line {
  spec: PriceLineSpec;
  handle: IPriceLine;
}

export function createLightweightSurface(el: HTMLElement): ChartSurface {
  const scale = new SessionScale();
  const chart = createChartEx(el, scale, {
    autoSize: true,
    layout: {
      background: { type: ColorType.Solid, color: "#0f1318" },
      textColor: "#9aa5b3",
      fontSize: 11,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
      attributionLogo: false,
    },
    localization: { dateFormat: "dd MMM 'yy" },
    grid: { vertLines: { color: "#1a2029" }, horzLines: { color: "#1a2029" } },
    crosshair: { mode: CrosshairMode.Normal },
    rightPriceScale: { borderColor: "#262e3a" },
    timeScale: { borderColor: "#262e3a", timeVisible: true, secondsVisible: false, rightOffset: 4, minBarSpacing: 0.08 },
    // A vertical swipe scrolls the page (phones); a horizontal one pans the chart.
    handleScroll: { vertTouchDrag: false },
  }) as IChartApi;
  const volume = chart.addSeries(HistogramSeries, {
    priceFormat: { type: "volume" },
    priceScaleId: "",
    lastValueVisible: false,
    priceLineVisible: false,
  });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
  // Behind everything: tinted bands for pre- and post-market bars.
  const shading = new SessionShading();
  const ts = chart.timeScale();

  let style: ChartStyle = "candles";
  let decimals: number | null = null;
  let percentOn = false;
  let logOn = false;
  let bars: readonly Bar[] = [];
  const lines = new Set<Line>();
  const marks = new Map<number, string>();
  let axisKey = "";

  const priceFormat = () =>
    decimals === null ? undefined : { type: "custom" as const, minMove: 10 ** -decimals, formatter: (v: number) => formatPrice(v, decimals) };

  function makeMain(): ISeriesApi<SeriesType> {
    const s: ISeriesApi<SeriesType> =
      style === "line"
        ? chart.addSeries(LineSeries, { color: LINE, lineWidth: 2 })
        : style === "area"
          ? chart.addSeries(AreaSeries, { lineColor: LINE, topColor: `${LINE}55`, bottomColor: `${LINE}05`, lineWidth: 2 })
          : chart.addSeries(CandlestickSeries, { upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN });
    const pf = priceFormat();
    if (pf) s.applyOptions({ priceFormat: pf });
    s.priceScale().applyOptions({ scaleMargins: { top: 0.12, bottom: 0.22 } });
    s.attachPrimitive(shading);
    for (const l of lines) l.handle = s.createPriceLine(lineOptions(l.spec));
    return s;
  }
  const lineOptions = (spec: PriceLineSpec) => ({
    price: spec.price,
    color: spec.color,
    lineWidth: 1 as const,
    lineStyle: spec.dashed ? LineStyle.Dashed : LineStyle.Solid,
    axisLabelVisible: true,
    title: spec.title,
  });
  const point = (b: Bar) => (style === "candles" ? candle(b) : closeOf(b));
  let main = makeMain();

  const applyMode = () =>
    main.priceScale().applyOptions({ mode: percentOn ? PriceScaleMode.Percentage : logOn ? PriceScaleMode.Logarithmic : PriceScaleMode.Normal });

  /** Every series' data set again from nothing, so the time scale weighs every bar anew. */
  function reweigh(): void {
    const all = [main, volume, ...extra];
    const data = all.map((s) => s.data());
    for (const s of all) s.setData([]);
    all.forEach((s, i) => s.setData(data[i]! as never));
  }
  const extra = new Set<ISeriesApi<SeriesType>>();

  return {
    setBars(next) {
      bars = next;
      main.setData(next.map(point));
      volume.setData(next.map(volumeBar));
    },
    updateBar(bar) {
      main.update(point(bar));
      volume.update(volumeBar(bar));
    },
    setStyle(next) {
      if (next === style) return;
      style = next;
      main.detachPrimitive(shading);
      chart.removeSeries(main);
      main = makeMain();
      applyMode();
      main.setData(bars.map(point));
    },
    setSessions: (sessions) => shading.set(sessions),
    putSession: (index, session) => shading.put(index, session),
    shaded: () => shading.shaded,
    setTimeAxis(axis) {
      const changed = axis.key !== axisKey;
      axisKey = axis.key;
      scale.weigh = axis.weight;
      marks.clear();
      chart.applyOptions({
        localization: { timeFormatter: (t: Time) => axis.crosshairLabel(seconds(t)) },
        timeScale: {
          timeVisible: axis.timeVisible,
          tickMarkFormatter: (t: Time, kind: TickMarkType) => {
            const sec = seconds(t);
            const label = axis.tickLabel(sec, KIND[kind]);
            if (kind !== TickMarkType.Time && kind !== TickMarkType.TimeWithSeconds) marks.set(sec, label);
            return label;
          },
        },
      });
      if (changed && bars.length > 0) reweigh();
    },
    setPalette(p) {
      chart.applyOptions({
        layout: { background: { type: ColorType.Solid, color: p.background }, textColor: p.text },
        grid: { vertLines: { color: p.grid }, horzLines: { color: p.grid } },
        rightPriceScale: { borderColor: p.border },
        timeScale: { borderColor: p.border },
      });
    },
    setPriceDecimals(d) {
      decimals = d;
      const pf = priceFormat();
      if (pf) main.applyOptions({ priceFormat: pf });
    },
    addPriceLine(spec) {
      const line: Line = { spec, handle: main.createPriceLine(lineOptions(spec)) };
      lines.add(line);
      return () => {
        if (!lines.delete(line)) return;
        main.removePriceLine(line.handle);
      };
    },
    addLine(title, color = "#f0b429"): LineSurface {
      const line = chart.addSeries(LineSeries, {
        color,
        lineWidth: 2,
        title,
        priceLineVisible: false,
        lastValueVisible: title !== "",
        crosshairMarkerVisible: false,
      });
      extra.add(line);
      return {
        setPoints: (points) => line.setData(points.map((p) => ({ time: at(p.time), value: p.value }))),
        updatePoint: (p) => line.update({ time: at(p.time), value: p.value }),
        remove: () => {
          extra.delete(line);
          chart.removeSeries(line);
        },
      };
    },
    setPercent(on) {
      percentOn = on;
      applyMode();
    },
    percent: () => main.priceScale().options().mode === PriceScaleMode.Percentage,
    setLog(on) {
      logOn = on;
      applyMode();
    },
    log: () => main.priceScale().options().mode === PriceScaleMode.Logarithmic,
    visibleRange: () => ts.getVisibleLogicalRange(),
    setVisibleRange: (range) => ts.setVisibleLogicalRange(range),
    onVisibleRange(fn) {
      const handler = (r: LogicalRange | null) => fn(r ? { from: r.from, to: r.to } : null);
      ts.subscribeVisibleLogicalRangeChange(handler);
      return () => ts.unsubscribeVisibleLogicalRangeChange(handler);
    },
    onCrosshair(fn) {
      const handler = (param: MouseEventParams) =>
        fn(param.logical === undefined || param.time === undefined ? null : param.logical, Boolean(param.sourceEvent));
      chart.subscribeCrosshairMove(handler);
      return () => chart.unsubscribeCrosshairMove(handler);
    },
    setCrosshair: (bar) => chart.setCrosshairPosition(bar.close, at(bar.time), main),
    clearCrosshair: () => chart.clearCrosshairPosition(),
    dateMarks: () => [...marks].map(([time, label]) => ({ time, label })).sort((a, b) => a.time - b.time),
    remove: () => chart.remove(),
  };
}
