// The price chart's React shell: the box, the legend's spans and the notes over the chart.
// Everything the chart does (bars, live upserts, zoom memory, legend, keyboard crosshair,
// session shading, previous close, comparison) is lib/chart/ChartController.ts, created here
// on mount over a lightweight-charts surface and given the props as they change; no render
// per bar or per mouse move.

import { useEffect, useId, useMemo, useRef, useState, type ReactNode } from "react";
import { useStockfeed } from "@stockfeed/client/react";
import type { Interval } from "../lib/candles";
import { intervalLabel } from "../lib/chart/axis";
import { ChartController, type ChartProbe, type ChartState } from "../lib/chart/ChartController";
import { restHistory } from "../lib/chart/feed";
import { writeLegend } from "../lib/chart/legend";
import { createLightweightSurface } from "../lib/chart/lightweightSurface";
import type { RangePreset } from "../lib/ranges";
import type { Zone } from "../lib/timezone";

interface Props {
  ticker: string;
  interval: Interval;
  /** How far back the chart looks (lib/ranges.ts). */
  preset: RangePreset;
  token: string | null;
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

/** The chart's box element, with a read-only look at what is drawn (the browser tests). */
type ChartBox = HTMLDivElement & { stockfeedChart?: ChartProbe };

export function PriceChart({ ticker, interval, preset, token, live, market, compare, decimals, prevClose, zone, children }: Props) {
  // The page's client: the chart holds its ticker's bars through it.
  const client = useStockfeed();
  const box = useRef<ChartBox>(null);
  const legend = useRef<HTMLDivElement>(null);
  const chart = useRef<ChartController | null>(null);
  const [state, setState] = useState<ChartState>({ loading: true, error: null, summary: "" });
  const summaryId = useId();
  const history = useMemo(() => restHistory(token), [token]);

  // Created once, removed on unmount; the effects below run after this one, in order.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ctl = new ChartController(createLightweightSurface(el), {
      showLegend: (l) => {
        if (legend.current) writeLegend(legend.current, l);
      },
      onState: setState,
      onBarsInView: (n) => {
        // How many bars are in view, for the browser tests (zoom kept per ticker and interval).
        if (el.parentElement) el.parentElement.dataset.barsInView = String(n);
      },
    });
    chart.current = ctl;
    el.stockfeedChart = ctl.probe;
    return () => {
      chart.current = null;
      delete el.stockfeedChart;
      ctl.dispose();
    };
  }, []);

  useEffect(() => chart.current?.setLook({ decimals, zone, market }), [decimals, zone, market]);
  useEffect(() => chart.current?.show({ ticker, interval, preset, feed: client, history }), [ticker, interval, preset, client, history]);
  useEffect(() => chart.current?.setLive(live), [live]);
  useEffect(() => chart.current?.setCompare(compare), [compare]);
  useEffect(() => chart.current?.setPrevClose(prevClose), [prevClose]);

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
        onKeyDown={(e) => {
          if (chart.current?.key(e.key, e.shiftKey)) e.preventDefault();
        }}
        onBlur={() => chart.current?.blur()}
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
        {state.loading && <div className="chart-note">Loading {ticker} history…</div>}
        {state.error && <div className="chart-note warn">{state.error}</div>}
        {children}
      </div>
      <p id={summaryId} className="sr-only" data-testid="chart-summary">
        {state.summary}
      </p>
    </div>
  );
}
