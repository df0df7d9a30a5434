// Candles and volume (lightweight-charts v5) of the server's bars: REST history for the
// range preset, then the wire's bars (`bars`, `bar` upserts; over REST while polling) through
// lib/candles.ts's BarList and series.update(): the forming candle is replaced in place or a
// new one appended, so nothing flickers or jumps, and a reconnect leaves no hole.
// Pre- and post-market bars are shaded (lib/sessions.ts). A second ticker can be laid over
// as a line, both on a % scale from the first bar in view.
//
// Each ticker/interval's bars and zoom are kept in lib/chartCache.ts when the chart moves
// on, and shown at once on the way back while fresh history is fetched and merged in.
// The legend reads the bar under the crosshair (mouse, touch, or the arrow keys when the
// chart has focus): OHLC, volume and the change from the bar before.

import { useEffect, useId, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
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
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  type LogicalRange,
  type MouseEventParams,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import type { StockfeedClient } from "@stockfeed/client";
import { getJson } from "../lib/api";
import { BarList, INTERVAL_SECONDS, type Interval, type WireBar } from "../lib/candles";
import { ChartCache, chartCache, rangeFor, viewOf } from "../lib/chartCache";
import { historyRange, presetView, type RangePreset } from "../lib/ranges";
import { SessionShading } from "../lib/sessionShading";
import { sessionOf, shadable } from "../lib/sessions";
import { formatCount, formatPrice, formatSigned } from "../lib/format";
import { secondsFormatter, sessionDate, type Zone } from "../lib/timezone";
import type { Bar } from "../lib/types";

const UP = "#26a69a";
const DOWN = "#ef5350";

interface Props {
  ticker: string;
  interval: Interval;
  /** How far back the chart looks (lib/ranges.ts). */
  preset: RangePreset;
  token: string | null;
  /** The page's client: the chart holds its ticker's bars through it. */
  client: StockfeedClient;
  /** False while the page is paused: no bars wanted, the candles stay as they are. */
  live: boolean;
  /** The ticker's market (XNYS bars are shaded by session). */
  market: string;
  /** A second ticker drawn over the first, both in % (null: none). */
  compare: string | null;
  /** The instrument's precision (axis, legend, price line). */
  decimals: number;
  prevClose: number | null;
  zone: Zone;
  /** Overlays drawn over the chart (the "no data" banner). */
  children?: ReactNode;
}

interface Parts {
  chart: IChartApi;
  candles: ISeriesApi<"Candlestick">;
  volume: ISeriesApi<"Histogram">;
  shading: SessionShading;
}

/** The REST history a chart of `ticker` starts from (lib/ranges.ts: at least the preset). */
const historyPath = (ticker: string, interval: Interval, preset: RangePreset) =>
  `/api/history/${encodeURIComponent(ticker)}?interval=${interval}&range=${historyRange(interval, preset)}`;

/** The chart's box element, with a read-only look at what is drawn. */
type ChartBox = HTMLDivElement & {
  stockfeedChart?: { bars: () => Bar[]; shaded: () => number; compared: () => { ticker: string; bars: number } | null; percent: () => boolean };
};

const intervalLabel = (i: Interval) => (i === "1d" ? "1D" : i);
const candle = (b: Bar) => ({ time: b.time as UTCTimestamp, open: b.open, high: b.high, low: b.low, close: b.close });
const volumeBar = (b: Bar) => ({
  time: b.time as UTCTimestamp,
  value: b.volume ?? 0,
  color: b.close >= b.open ? `${UP}66` : `${DOWN}66`,
});

export function PriceChart({ ticker, interval, preset, token, client, live, market, compare, decimals, prevClose, zone, children }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const legend = useRef<HTMLDivElement>(null);
  const parts = useRef<Parts | null>(null);
  // The bars on screen, oldest first (the series' logical index is the array index).
  const bars = useRef<Bar[]>([]);
  // The bar under the crosshair, mouse or keyboard (null: none, the legend shows the last bar).
  const cursor = useRef<number | null>(null);
  const keyboard = useRef(false);
  const fmt = useRef({ decimals, zone, interval, ticker, market });
  // The compared ticker's bars (by time), for the legend.
  const compared = useRef<{ ticker: string; byTime: Map<number, Bar> } | null>(null);
  const liveRef = useRef(live);
  const [status, setStatus] = useState<{ loading: boolean; error: string | null }>({ loading: true, error: null });
  const [summary, setSummary] = useState("");
  const summaryId = useId();

  useEffect(() => {
    fmt.current = { decimals, zone, interval, ticker, market };
  });

  /** The legend for bar `i` (or the last one). Written to the DOM: no render per mouse move. */
  const showLegend = (i: number | null) => {
    const el = legend.current;
    if (!el) return;
    const list = bars.current;
    const idx = i === null ? list.length - 1 : i;
    const bar = list[idx];
    const { decimals: d, zone: z, interval: iv, ticker: t } = fmt.current;
    const set = (name: string, text: string, cls?: string) => {
      const span = el.querySelector<HTMLElement>(`[data-f="${name}"]`);
      if (!span) return;
      span.textContent = text;
      if (cls !== undefined) span.className = cls;
    };
    set("name", `${t} · ${intervalLabel(iv)}`);
    if (!bar) {
      for (const f of ["time", "o", "h", "l", "c", "v", "chg", "sess", "cmp"]) set(f, "");
      el.dataset.hovered = "";
      return;
    }
    const prev = list[idx - 1];
    const base = prev ? prev.close : bar.open;
    const chg = bar.close - base;
    const pct = base !== 0 ? (chg / base) * 100 : null;
    const when = iv === "1d" ? sessionDate(bar.time) : `${secondsFormatter(z, { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" })(bar.time)} ${z.label}`;
    set("time", when);
    set("o", formatPrice(bar.open, d));
    set("h", formatPrice(bar.high, d));
    set("l", formatPrice(bar.low, d));
    set("c", formatPrice(bar.close, d));
    set("v", formatCount(bar.volume));
    set("chg", `${formatSigned(chg, d)} (${formatSigned(pct, 2, "%")})`, chg > 0 ? "up" : chg < 0 ? "down" : "flat");
    const session = fmt.current.market === "XNYS" && shadable(INTERVAL_SECONDS[iv]) ? sessionOf(bar.time, "XNYS") : null;
    set("sess", session === "pre" ? "Pre-market" : session === "post" ? "After hours" : "");
    const other = compared.current;
    const theirs = other?.byTime.get(bar.time);
    set("cmp", other ? `${other.ticker} ${theirs ? formatPrice(theirs.close, null) : "—"}` : "");
    el.dataset.hovered = i === null ? "" : String(bar.time);
  };
  const legendRef = useRef(showLegend);
  useEffect(() => {
    legendRef.current = showLegend;
  });

  // The chart itself: created once, sized by its box (autoSize uses a ResizeObserver).
  useEffect(() => {
    const el = box.current;
    if (!el) return;
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
    const onMove = (param: MouseEventParams) => {
      // Programmatic moves (the keyboard's) come without a source event: the key handler drew them.
      if (!param.sourceEvent && keyboard.current) return;
      keyboard.current = false;
      const i = param.logical === undefined || param.time === undefined ? null : Math.round(param.logical);
      cursor.current = i !== null && i >= 0 && i < bars.current.length ? i : null;
      legendRef.current(cursor.current);
    };
    chart.subscribeCrosshairMove(onMove);
    parts.current = { chart, candles, volume, shading };
    // What is drawn, for the browser tests and anyone curious in the console.
    (el as ChartBox).stockfeedChart = {
      bars: () => bars.current.map((b) => ({ ...b })),
      shaded: () => shading.shaded,
      compared: () => (compared.current ? { ticker: compared.current.ticker, bars: compared.current.byTime.size } : null),
      percent: () => candles.priceScale().options().mode === PriceScaleMode.Percentage,
    };
    return () => {
      parts.current = null;
      chart.unsubscribeCrosshairMove(onMove);
      chart.remove();
    };
  }, []);

  // Axis and crosshair times in the chosen zone; daily bars as dates (never shifted).
  useEffect(() => {
    const p = parts.current;
    if (!p) return;
    const daily = interval === "1d";
    const full = secondsFormatter(zone, { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
    const hm = secondsFormatter(zone, { hour: "2-digit", minute: "2-digit" });
    const dm = secondsFormatter(zone, { day: "2-digit", month: "short" });
    const y = secondsFormatter(zone, { year: "numeric" });
    const s = (t: Time) => t as number;
    p.chart.applyOptions({
      localization: {
        timeFormatter: (t: Time) => (daily ? sessionDate(s(t)) : `${full(s(t))} ${zone.label}`),
      },
      timeScale: {
        timeVisible: !daily,
        tickMarkFormatter: (t: Time, kind: TickMarkType) => {
          if (daily) return kind === TickMarkType.Year ? sessionDate(s(t), { year: "numeric" }) : sessionDate(s(t), { day: "2-digit", month: "short" });
          return kind === TickMarkType.Year ? y(s(t)) : kind === TickMarkType.Month || kind === TickMarkType.DayOfMonth ? dm(s(t)) : hm(s(t));
        },
      },
    });
    legendRef.current(cursor.current);
  }, [zone, interval]);

  // The instrument's precision on the axis, with thousands separators.
  useEffect(() => {
    const p = parts.current;
    if (!p) return;
    p.candles.applyOptions({
      priceFormat: { type: "custom", minMove: 10 ** -decimals, formatter: (v: number) => formatPrice(v, decimals) },
    });
    legendRef.current(cursor.current);
  }, [decimals]);

  // The previous close as a dashed line across the chart.
  useEffect(() => {
    const p = parts.current;
    if (!p || prevClose === null || !Number.isFinite(prevClose)) return;
    let line: IPriceLine | null = p.candles.createPriceLine({
      price: prevClose,
      color: "#8b96a5",
      lineWidth: 1,
      lineStyle: LineStyle.Dashed,
      axisLabelVisible: true,
      title: "Prev close",
    });
    return () => {
      if (line && parts.current === p) p.candles.removePriceLine(line);
      line = null;
    };
  }, [prevClose, ticker]);

  // Session shading (pre/post-market tints behind the candles), from the bars' times.
  const shade = (list: Bar[]) => {
    const p = parts.current;
    if (!p) return;
    const { market: m, interval: iv } = fmt.current;
    const on = shadable(INTERVAL_SECONDS[iv]) && m === "XNYS";
    p.shading.set(on ? list.map((b) => sessionOf(b.time, "XNYS")) : []);
  };
  const shadeRef = useRef(shade);
  useEffect(() => {
    shadeRef.current = shade;
  });

  // Where the bars come from: the server's (lib/candles.ts). History over REST for the
  // range (the cache's at once), and the wire's bars for the ticker and interval, held by
  // the page's client while the chart shows them: `bars` then `bar` upserts on the socket,
  // the same bars over REST while polling.
  useEffect(() => {
    const p = parts.current;
    if (!p) return;
    const key = ChartCache.key(ticker, interval);
    const cached = chartCache.get(key);
    const series = new BarList(cached ? cached.bars.slice() : []);
    const list = series.bars;
    bars.current = list;
    cursor.current = null;
    let ready = false;
    let range: LogicalRange | null = null;
    const onRange = (r: LogicalRange | null) => {
      range = r;
      // How many bars are in view, for the browser tests (zoom kept per ticker and interval).
      const wrap = box.current?.parentElement;
      if (wrap && r) wrap.dataset.barsInView = String(Math.round(r.to - r.from));
    };
    /** The preset's span back from the newest bar. */
    const presetRange = () => presetView(list.map((b) => b.time), preset) ?? rangeFor(list.length, null);
    const drawAll = () => {
      p.candles.setData(list.map(candle));
      p.volume.setData(list.map(volumeBar));
      shadeRef.current(list);
    };
    const take = (incoming: readonly WireBar[]) => {
      const change = series.apply(incoming);
      if (change.kind === "none") return;
      if (change.kind === "reset") drawAll();
      else {
        for (const b of change.bars) {
          p.candles.update(candle(b));
          p.volume.update(volumeBar(b));
        }
        if (fmt.current.market === "XNYS" && shadable(INTERVAL_SECONDS[interval]))
          for (let i = Math.max(0, list.length - change.bars.length); i < list.length; i += 1) p.shading.put(i, sessionOf(list[i]!.time, "XNYS"));
      }
      if (cursor.current === null || cursor.current >= list.length - 2) legendRef.current(cursor.current);
    };

    drawAll();
    const usable = cached && cached.preset === preset;
    if (cached && list.length > 0) {
      ready = true;
      p.chart.timeScale().setVisibleLogicalRange(usable ? rangeFor(list.length, cached.view) : presetRange());
    }
    legendRef.current(null);
    p.chart.timeScale().subscribeVisibleLogicalRangeChange(onRange);
    setStatus({ loading: !cached, error: null });

    // The wire's bars: taken as they come once the history is on screen (before that,
    // they are read from the client's store when it is).
    const offBars = client.on("bars", (ev) => {
      if (!ready || !liveRef.current || ev.ticker !== ticker || ev.interval !== interval) return;
      take(ev.changed);
    });

    const ctl = new AbortController();
    const load = async () => {
      let fresh: WireBar[] = [];
      let error: string | null = null;
      try {
        fresh = (await getJson<{ bars: WireBar[] }>(historyPath(ticker, interval, preset), token, ctl.signal)).bars;
      } catch (e) {
        if (ctl.signal.aborted) return;
        error = e instanceof Error ? e.message : String(e);
      }
      if (ctl.signal.aborted) return;
      // Where the user is looking, counted from the newest bar, survives the merge.
      const keep = usable ? viewOf(list.length, range) : null;
      // Fresh history over what was drawn (newer live bars kept), then the wire's bars: the
      // newest word on the bars they hold.
      series.apply(fresh);
      series.apply(client.bars(ticker, interval));
      drawAll();
      ready = true;
      if (list.length > 0 && (!cached || keep || !usable))
        p.chart.timeScale().setVisibleLogicalRange(keep ? rangeFor(list.length, keep) : presetRange());
      legendRef.current(cursor.current);
      setStatus({ loading: false, error: error && list.length === 0 ? `No history: ${error}. Live bars only.` : error ? `History not refreshed: ${error}.` : null });
      setSummary(describe(ticker, interval, list, fmt.current.decimals, fmt.current.zone));
    };
    if (cached) setSummary(describe(ticker, interval, list, fmt.current.decimals, fmt.current.zone));
    void load();
    return () => {
      ctl.abort();
      offBars();
      if (parts.current === p) p.chart.timeScale().unsubscribeVisibleLogicalRangeChange(onRange);
      if (list.length > 0) chartCache.set(key, { bars: list, view: viewOf(list.length, range), preset, savedAt: Date.now() });
    };
  }, [ticker, interval, preset, token, client]);

  // The wire's bars of the ticker and interval, wanted while the chart shows them and the
  // page is not paused (paused: no socket and no polls, the candles stay as they were).
  useEffect(() => {
    liveRef.current = live;
    return live ? client.retain(ticker, interval) : undefined;
  }, [client, ticker, interval, live]);

  // The comparison: the other ticker's closes as a line, and the price scale in % (each
  // series from its own first bar in view), from the same sources as the candles.
  useEffect(() => {
    const p = parts.current;
    if (!p || !compare || compare === ticker) return;
    const line = p.chart.addSeries(LineSeries, {
      color: "#f0b429",
      lineWidth: 2,
      title: compare,
      priceLineVisible: false,
      crosshairMarkerVisible: false,
    });
    p.candles.priceScale().applyOptions({ mode: PriceScaleMode.Percentage });
    const series = new BarList();
    const byTime = new Map<number, Bar>();
    compared.current = { ticker: compare, byTime };
    const point = (b: Bar) => ({ time: b.time as UTCTimestamp, value: b.close });
    const drawAll = () => {
      byTime.clear();
      for (const b of series.bars) byTime.set(b.time, b);
      line.setData(series.bars.map(point));
    };
    const take = (incoming: readonly WireBar[]) => {
      const change = series.apply(incoming);
      if (change.kind === "reset") drawAll();
      else if (change.kind === "tail")
        for (const b of change.bars) {
          byTime.set(b.time, b);
          line.update(point(b));
        }
    };
    let ready = false;
    const off = client.on("bars", (ev) => {
      if (ready && liveRef.current && ev.ticker === compare && ev.interval === interval) take(ev.changed);
    });
    const release = live ? client.retain(compare, interval) : undefined;
    const ctl = new AbortController();
    void getJson<{ bars: WireBar[] }>(historyPath(compare, interval, preset), token, ctl.signal)
      .catch(() => ({ bars: [] as WireBar[] }))
      .then((body) => {
        if (ctl.signal.aborted) return;
        series.apply(body.bars);
        series.apply(client.bars(compare, interval));
        drawAll();
        ready = true;
        legendRef.current(cursor.current);
      });
    return () => {
      ctl.abort();
      off();
      release?.();
      compared.current = null;
      if (parts.current !== p) return;
      p.chart.removeSeries(line);
      p.candles.priceScale().applyOptions({ mode: PriceScaleMode.Normal });
      legendRef.current(cursor.current);
    };
  }, [compare, ticker, interval, preset, token, client, live]);

  // Market known later than the bars (the first market_status): shade what is there.
  useEffect(() => {
    shadeRef.current(bars.current);
  }, [market, interval]);

  /** Arrow keys walk the crosshair bar by bar (Shift: 10 at a time); Home/End; Escape leaves. */
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const p = parts.current;
    const list = bars.current;
    if (!p || list.length === 0) return;
    const last = list.length - 1;
    const at = cursor.current ?? last;
    const step = e.shiftKey ? 10 : 1;
    let next: number | null;
    switch (e.key) {
      case "ArrowLeft":
        next = cursor.current === null ? last : Math.max(0, at - step);
        break;
      case "ArrowRight":
        next = cursor.current === null ? last : Math.min(last, at + step);
        break;
      case "Home":
        next = 0;
        break;
      case "End":
        next = last;
        break;
      case "Escape":
        cursor.current = null;
        keyboard.current = false;
        p.chart.clearCrosshairPosition();
        showLegend(null);
        return;
      default:
        return;
    }
    e.preventDefault();
    cursor.current = next;
    keyboard.current = true;
    const bar = list[next];
    if (!bar) return;
    // Keep the bar in view.
    const vis = p.chart.timeScale().getVisibleLogicalRange();
    if (vis && (next < vis.from || next > vis.to)) {
      const width = vis.to - vis.from;
      const from = next < vis.from ? next - 2 : next - width + 2;
      p.chart.timeScale().setVisibleLogicalRange({ from, to: from + width });
    }
    p.chart.setCrosshairPosition(bar.close, bar.time as UTCTimestamp, p.candles);
    showLegend(next);
  };

  return (
    <div className="chart-wrap" data-testid="price-chart" data-ticker={ticker} data-interval={interval} data-preset={preset}>
      <div
        ref={box}
        className="chart-box"
        role="application"
        tabIndex={0}
        aria-label={`${ticker} ${intervalLabel(interval)} candlestick chart. Left and right arrow keys move the crosshair; Escape leaves it.`}
        aria-describedby={summaryId}
        data-testid="chart-canvas-box"
        onKeyDown={onKeyDown}
        onBlur={() => {
          if (!keyboard.current) return;
          keyboard.current = false;
          cursor.current = null;
          parts.current?.chart.clearCrosshairPosition();
          showLegend(null);
        }}
      />
      {/* Legend, notes and banners stack in one column clear of the price axis. */}
      <div className="chart-overlays">
        <div ref={legend} className="chart-legend" data-testid="chart-legend" aria-hidden="true">
          <span data-f="name" className="lg-name" />
          <span data-f="time" className="lg-time" />
          <span className="lg-k">O</span>
          <span data-f="o" />
          <span className="lg-k">H</span>
          <span data-f="h" />
          <span className="lg-k">L</span>
          <span data-f="l" />
          <span className="lg-k">C</span>
          <span data-f="c" />
          <span className="lg-k">Vol</span>
          <span data-f="v" />
          <span data-f="chg" />
          <span data-f="sess" className="lg-sess" />
          <span data-f="cmp" className="lg-cmp" data-testid="legend-compare" />
        </div>
        {status.loading && <div className="chart-note">Loading {ticker} history…</div>}
        {status.error && <div className="chart-note warn">{status.error}</div>}
        {children}
      </div>
      <p id={summaryId} className="sr-only" data-testid="chart-summary">
        {summary}
      </p>
    </div>
  );
}

/** The chart in words, for screen readers: span, last close, range. */
export function describe(ticker: string, interval: Interval, list: Bar[], decimals: number, zone: Zone): string {
  const first = list[0];
  const last = list[list.length - 1];
  if (!first || !last) return `${ticker} ${intervalLabel(interval)} candlestick chart: no bars yet.`;
  let lo = Infinity;
  let hi = -Infinity;
  for (const b of list) {
    lo = Math.min(lo, b.low);
    hi = Math.max(hi, b.high);
  }
  const when = (b: Bar) =>
    interval === "1d" ? sessionDate(b.time) : `${secondsFormatter(zone, { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" })(b.time)} ${zone.label}`;
  const chg = last.close - first.open;
  return (
    `${ticker} ${intervalLabel(interval)} candlestick chart: ${list.length} bars from ${when(first)} to ${when(last)}. ` +
    `Last close ${formatPrice(last.close, decimals)}, ${formatSigned(chg, decimals)} over the chart; ` +
    `low ${formatPrice(lo, decimals)}, high ${formatPrice(hi, decimals)}.`
  );
}
