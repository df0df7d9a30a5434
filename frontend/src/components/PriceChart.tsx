// Candles and volume (lightweight-charts v5). History is set once per ticker/interval;
// after that every tick goes through CandleBuilder and series.update(): the forming candle
// is replaced in place or a new one appended, so nothing flickers or jumps.

import { useEffect, useRef, useState } from "react";
import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  TickMarkType,
  createChart,
  type IChartApi,
  type ISeriesApi,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { getJson } from "../lib/api";
import { CandleBuilder, INTERVAL_RANGE, type Interval } from "../lib/candles";
import { formatPrice } from "../lib/format";
import { marketOf } from "../lib/market";
import type { Bar, Tick } from "../lib/types";

const UP = "#26a69a";
const DOWN = "#ef5350";

interface Props {
  ticker: string;
  interval: Interval;
  token: string | null;
  subscribeTicks: (fn: (t: Tick) => void) => () => void;
}

interface Parts {
  chart: IChartApi;
  candles: ISeriesApi<"Candlestick">;
  volume: ISeriesApi<"Histogram">;
}

function zoneOf(ticker: string): string {
  return marketOf(ticker) === "CRYPTO" ? "UTC" : "America/New_York";
}

function makeFormatter(zone: string, opts: Intl.DateTimeFormatOptions) {
  const f = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour12: false, ...opts });
  return (t: Time) => f.format(new Date((t as number) * 1000));
}

export function PriceChart({ ticker, interval, token, subscribeTicks }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const legend = useRef<HTMLDivElement>(null);
  const parts = useRef<Parts | null>(null);
  const [status, setStatus] = useState<{ loading: boolean; error: string | null }>({ loading: true, error: null });

  // The chart itself: created once, sized by its box (autoSize uses a ResizeObserver).
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const chart = createChart(el, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "#0f1318" },
        textColor: "#8b96a5",
        fontSize: 11,
        fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
        attributionLogo: false,
      },
      grid: { vertLines: { color: "#1a2029" }, horzLines: { color: "#1a2029" } },
      crosshair: { mode: CrosshairMode.Normal },
      rightPriceScale: { borderColor: "#262e3a" },
      timeScale: { borderColor: "#262e3a", timeVisible: true, secondsVisible: false, rightOffset: 4 },
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
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.22 } });
    parts.current = { chart, candles, volume };
    return () => {
      parts.current = null;
      chart.remove();
    };
  }, []);

  // History for the ticker and interval, then live ticks.
  useEffect(() => {
    const p = parts.current;
    if (!p) return;
    const zone = zoneOf(ticker);
    const daily = interval === "1d";
    const timeFmt = makeFormatter(zone, daily ? { day: "2-digit", month: "short", year: "2-digit" } : { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
    const hm = makeFormatter(zone, { hour: "2-digit", minute: "2-digit" });
    const dm = makeFormatter(zone, { day: "2-digit", month: "short" });
    const y = makeFormatter(zone, { year: "numeric" });
    p.chart.applyOptions({
      localization: { timeFormatter: timeFmt },
      timeScale: {
        timeVisible: !daily,
        tickMarkFormatter: (t: Time, kind: TickMarkType) =>
          kind === TickMarkType.Year ? y(t) : kind === TickMarkType.Month || kind === TickMarkType.DayOfMonth ? dm(t) : hm(t),
      },
    });

    const builder = new CandleBuilder(interval);
    const early: Tick[] = [];
    let ready = false;
    const showLegend = (bar: Bar | null) => {
      if (!legend.current) return;
      legend.current.textContent = bar
        ? `${ticker} · ${interval === "1d" ? "1D" : interval}   O ${formatPrice(bar.open)}  H ${formatPrice(bar.high)}  L ${formatPrice(bar.low)}  C ${formatPrice(bar.close)}`
        : `${ticker} · ${interval}`;
    };
    const draw = (bar: Bar) => {
      const time = bar.time as UTCTimestamp;
      p.candles.update({ time, open: bar.open, high: bar.high, low: bar.low, close: bar.close });
      p.volume.update({ time, value: bar.volume, color: bar.close >= bar.open ? `${UP}66` : `${DOWN}66` });
      showLegend(bar);
    };
    const apply = (tick: Tick) => {
      const r = builder.apply(tick.time, tick.price, tick.volume);
      if (r.kind !== "ignore") draw(r.bar);
    };
    const unsubscribe = subscribeTicks((tick) => {
      if (tick.ticker !== ticker) return;
      if (ready) apply(tick);
      else early.push(tick);
    });

    const ctl = new AbortController();
    p.candles.setData([]);
    p.volume.setData([]);
    showLegend(null);
    const load = async () => {
      setStatus({ loading: true, error: null });
      let bars: Bar[] = [];
      let error: string | null = null;
      try {
        const range = INTERVAL_RANGE[interval];
        const body = await getJson<{ bars: Bar[] }>(
          `/api/history/${encodeURIComponent(ticker)}?interval=${interval}&range=${range}`,
          token,
          ctl.signal,
        );
        bars = body.bars;
      } catch (e) {
        if (ctl.signal.aborted) return;
        error = e instanceof Error ? e.message : String(e);
      }
      p.candles.setData(bars.map((b) => ({ time: b.time as UTCTimestamp, open: b.open, high: b.high, low: b.low, close: b.close })));
      p.volume.setData(
        bars.map((b) => ({ time: b.time as UTCTimestamp, value: b.volume, color: b.close >= b.open ? `${UP}66` : `${DOWN}66` })),
      );
      builder.load(bars);
      showLegend(builder.current);
      ready = true;
      for (const t of early.splice(0)) apply(t);
      const n = bars.length;
      if (n > 0) p.chart.timeScale().setVisibleLogicalRange({ from: Math.max(0, n - 150), to: n + 4 });
      setStatus({ loading: false, error: error ? `No history: ${error}. Live ticks only.` : null });
    };
    void load();
    return () => {
      ctl.abort();
      unsubscribe();
    };
  }, [ticker, interval, token, subscribeTicks]);

  return (
    <div className="chart-wrap" data-testid="price-chart" data-ticker={ticker} data-interval={interval}>
      <div ref={box} className="chart-box" />
      <div ref={legend} className="chart-legend" aria-hidden="true" />
      {status.loading && <div className="chart-note">Loading {ticker} history…</div>}
      {status.error && <div className="chart-note warn">{status.error}</div>}
    </div>
  );
}
