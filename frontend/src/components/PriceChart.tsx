// The price chart's React shell: the chart's logic is lib/chart/ChartController.ts (plain
// TypeScript over a chart surface); this creates one on mount, passes the props through,
// renders the legend's spans, the chart's own controls (components/ChartTools.tsx), the
// notes and the text alternative, and removes the chart on unmount. The display choices
// (style, studies, log scale, extended hours) are kept across page loads.

import { useCallback, useEffect, useId, useMemo, useRef, useState, type ReactNode } from "react";
import { useStockfeed } from "@stockfeed/client/react";
import { usePersistentState } from "../hooks/usePersistentState";
import type { PriceAlert } from "../lib/alerts";
import type { Interval } from "../lib/candles";
import { alertLines } from "../lib/chart/alertLines";
import { intervalLabel } from "../lib/chart/axis";
import { ChartController, DEFAULT_DISPLAY, type ChartProbe, type ChartState } from "../lib/chart/ChartController";
import { isChartDisplay } from "../lib/chart/display";
import { restHistory } from "../lib/chart/feed";
import { Fullscreen, type FullscreenMode } from "../lib/chart/fullscreen";
import { writeLegend } from "../lib/chart/legend";
import { paletteFrom } from "../lib/chart/palette";
import { createLightweightSurface } from "../lib/chart/lightweightSurface";
import type { RangePreset } from "../lib/ranges";
import type { Zone } from "../lib/timezone";
import { ChartTools } from "./ChartTools";

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
  /** The price alerts (the ticker's are drawn as lines). */
  alerts?: readonly PriceAlert[];
  /** Overlays drawn over the chart (the "no data" banner). */
  children?: ReactNode;
}

/** The chart's box element, with a read-only look at what is drawn (the browser tests). */
type ChartBox = HTMLDivElement & { stockfeedChart?: ChartProbe };

const STYLE_WORDS = { candles: "candlestick", line: "line", area: "area" } as const;
const NO_ALERTS: readonly PriceAlert[] = [];

export function PriceChart({ ticker, interval, preset, token, live, market, compare, decimals, prevClose, zone, alerts = NO_ALERTS, children }: Props) {
  // The page's client: the chart holds its ticker's bars through it.
  const client = useStockfeed();
  const wrap = useRef<HTMLDivElement>(null);
  const box = useRef<ChartBox>(null);
  const legend = useRef<HTMLDivElement>(null);
  const chart = useRef<ChartController | null>(null);
  const full = useRef<Fullscreen | null>(null);
  const [state, setState] = useState<ChartState>({ loading: true, error: null, summary: "", away: false });
  const [display, setDisplay] = usePersistentState("chart-display", DEFAULT_DISPLAY, isChartDisplay);
  const [fullMode, setFullMode] = useState<FullscreenMode>("off");
  const fullscreen = fullMode !== "off";
  const summaryId = useId();
  const history = useMemo(() => restHistory(token), [token]);
  const levels = useMemo(() => alertLines(alerts, ticker, prevClose), [alerts, ticker, prevClose]);
  const toggleFullscreen = useCallback(() => void full.current?.toggle(), []);

  // Created once, removed on unmount; the effects below run after this one, in order.
  useEffect(() => {
    const el = box.current;
    const outer = wrap.current;
    if (!el || !outer) return;
    const ctl = new ChartController(createLightweightSurface(el), {
      showLegend: (l) => {
        if (legend.current) writeLegend(legend.current, l);
      },
      onState: setState,
      onBarsInView: (n) => {
        // How many bars are in view, for the browser tests (zoom kept per ticker and interval).
        outer.dataset.barsInView = String(n);
      },
    });
    chart.current = ctl;
    el.stockfeedChart = ctl.probe;
    const fs = new Fullscreen(outer, { onChange: setFullMode });
    full.current = fs;
    // The canvas in the page's colours: read from its CSS variables now and whenever <html>'s
    // attributes (a theme) or the system's scheme change.
    const paint = () => {
      const css = getComputedStyle(outer);
      ctl.setPalette(paletteFrom((name) => css.getPropertyValue(name)));
    };
    paint();
    const themeWatch = new MutationObserver(paint);
    themeWatch.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme", "class", "style"] });
    const scheme = window.matchMedia?.("(prefers-color-scheme: light)");
    scheme?.addEventListener?.("change", paint);
    return () => {
      themeWatch.disconnect();
      scheme?.removeEventListener?.("change", paint);
      chart.current = null;
      full.current = null;
      fs.dispose();
      delete el.stockfeedChart;
      ctl.dispose();
    };
  }, []);

  useEffect(() => chart.current?.setLook({ decimals, zone, market }), [decimals, zone, market]);
  useEffect(() => chart.current?.setDisplay(display), [display]);
  useEffect(() => chart.current?.show({ ticker, interval, preset, feed: client, history }), [ticker, interval, preset, client, history]);
  useEffect(() => chart.current?.setLive(live), [live]);
  useEffect(() => chart.current?.setCompare(compare), [compare]);
  useEffect(() => chart.current?.setPrevClose(prevClose), [prevClose]);
  useEffect(() => chart.current?.setLevels(levels), [levels]);

  return (
    <div
      ref={wrap}
      className={`chart-wrap${fullscreen ? " is-full" : ""}${fullMode === "fallback" ? " chart-full" : ""}`}
      data-testid="price-chart"
      data-ticker={ticker}
      data-interval={interval}
      data-preset={preset}
      data-style={display.style}
      data-extended={String(display.extended)}
      data-fullscreen={String(fullscreen)}
    >
      <ChartTools
        display={display}
        onDisplay={setDisplay}
        daily={interval === "1d"}
        hasExtended={market === "XNYS"}
        comparing={compare !== null}
        fullscreen={fullscreen}
        onFullscreen={toggleFullscreen}
      />
      <div
        ref={box}
        className="chart-box"
        role="application"
        tabIndex={0}
        aria-label={`${ticker} ${intervalLabel(interval)} ${STYLE_WORDS[display.style]} chart. Left and right arrow keys move the crosshair; Escape leaves it.`}
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
      {state.away && (
        <button type="button" className="chart-latest" data-testid="chart-latest" onClick={() => chart.current?.goToLatest()} title="Scroll to the newest bar">
          Latest ⇥
        </button>
      )}
      <p id={summaryId} className="sr-only" data-testid="chart-summary">
        {state.summary}
      </p>
    </div>
  );
}
