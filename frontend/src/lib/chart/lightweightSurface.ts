// The chart surface on lightweight-charts v5: the dashboard's look (dark theme, monospace
// labels, green/red candles, volume under them, pre/post-market bands behind them) and the
// library's calls behind surface.ts's few methods. Sized by its box (autoSize: a
// ResizeObserver); the newest bar is drawn with series.update(), never setData() per tick.

import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  LineSeries,
  LineStyle,
  PriceScaleMode,
  TickMarkType,
  createChart,
  type MouseEventParams,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { formatPrice } from "../format";
import type { Bar } from "../types";
import { SessionShading } from "./sessionShading";
import type { ChartSurface, LineSurface, LogicalRange, TickKind } from "./surface";

const UP = "#26a69a";
const DOWN = "#ef5350";

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
const volumeBar = (b: Bar) => ({ time: at(b.time), value: b.volume, color: b.close >= b.open ? `${UP}66` : `${DOWN}66` });

export function createLightweightSurface(el: HTMLElement): ChartSurface {
  const chart = createChart(el, {
    autoSize: true,
    layout: {
      background: { type: ColorType.Solid, color: "#0f1318" },
      textColor: "#9aa5b3",
      fontSize: 11,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
      attributionLogo: false,
    },
    grid: { vertLines: { color: "#1a2029" }, horzLines: { color: "#1a2029" } },
    crosshair: { mode: CrosshairMode.Normal },
    rightPriceScale: { borderColor: "#262e3a" },
    // A year of hourly bars (~8,800) fits the width of a screen (the 1Y preset).
    timeScale: { borderColor: "#262e3a", timeVisible: true, secondsVisible: false, rightOffset: 4, minBarSpacing: 0.08 },
    // A vertical swipe scrolls the page (phones); a horizontal one pans the chart.
    handleScroll: { vertTouchDrag: false },
  });
  const candles = chart.addSeries(CandlestickSeries, {
    upColor: UP,
    downColor: DOWN,
    borderVisible: false,
    wickUpColor: UP,
    wickDownColor: DOWN,
  });
  const volume = chart.addSeries(HistogramSeries, {
    priceFormat: { type: "volume" },
    priceScaleId: "",
    lastValueVisible: false,
    priceLineVisible: false,
  });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.12, bottom: 0.22 } });
  // Behind everything: tinted bands for pre- and post-market bars.
  const shading = new SessionShading();
  candles.attachPrimitive(shading);
  const ts = chart.timeScale();

  return {
    setBars(bars) {
      candles.setData(bars.map(candle));
      volume.setData(bars.map(volumeBar));
    },
    updateBar(bar) {
      candles.update(candle(bar));
      volume.update(volumeBar(bar));
    },
    setSessions: (sessions) => shading.set(sessions),
    putSession: (index, session) => shading.put(index, session),
    shaded: () => shading.shaded,
    setTimeAxis(axis) {
      chart.applyOptions({
        localization: { timeFormatter: (t: Time) => axis.crosshairLabel(seconds(t)) },
        timeScale: {
          timeVisible: axis.timeVisible,
          tickMarkFormatter: (t: Time, kind: TickMarkType) => axis.tickLabel(seconds(t), KIND[kind]),
        },
      });
    },
    setPriceDecimals(decimals) {
      candles.applyOptions({ priceFormat: { type: "custom", minMove: 10 ** -decimals, formatter: (v: number) => formatPrice(v, decimals) } });
    },
    addPrevClose(price) {
      const line = candles.createPriceLine({
        price,
        color: "#8b96a5",
        lineWidth: 1,
        lineStyle: LineStyle.Dashed,
        axisLabelVisible: true,
        title: "Prev close",
      });
      return () => candles.removePriceLine(line);
    },
    addLine(title): LineSurface {
      const line = chart.addSeries(LineSeries, { color: "#f0b429", lineWidth: 2, title, priceLineVisible: false, crosshairMarkerVisible: false });
      return {
        setPoints: (points) => line.setData(points.map((p) => ({ time: at(p.time), value: p.value }))),
        updatePoint: (p) => line.update({ time: at(p.time), value: p.value }),
        remove: () => chart.removeSeries(line),
      };
    },
    setPercent: (on) => candles.priceScale().applyOptions({ mode: on ? PriceScaleMode.Percentage : PriceScaleMode.Normal }),
    percent: () => candles.priceScale().options().mode === PriceScaleMode.Percentage,
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
    setCrosshair: (bar) => chart.setCrosshairPosition(bar.close, at(bar.time), candles),
    clearCrosshair: () => chart.clearCrosshairPosition(),
    remove: () => chart.remove(),
  };
}
