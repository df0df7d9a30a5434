// The price chart's logic, apart from React and from the chart library: which bars are on
// screen and where they come from, the live upserts, the zoom kept per ticker and interval,
// the crosshair legend and its keyboard, the session shading, the previous close and the
// comparison. The React shell (components/PriceChart.tsx) creates one on mount over a chart
// surface (lightweightSurface.ts), passes its props through the set* methods and show(), and
// disposes of it on unmount; nothing here renders.
//
// Bars: REST history for the range preset, then the wire's bars (`bars`, `bar` upserts; over
// REST while polling) through lib/candles.ts's BarList: the forming candle is replaced in
// place or a new one appended (surface.updateBar), so nothing flickers or jumps, and a
// reconnect leaves no hole. Each ticker/interval's bars and zoom are kept in lib/chartCache.ts
// when the chart moves on, and shown at once on the way back while fresh history is fetched
// and laid over them.

import { BarList, INTERVAL_SECONDS, type Interval, type WireBar } from "../candles";
import { ChartCache, chartCache, rangeFor, viewOf } from "../chartCache";
import { presetView, type RangePreset } from "../ranges";
import { isExtended, sessionCalendar, sessionDay, sessionOf, shadable, type SessionCalendar } from "../sessions";
import type { Zone } from "../timezone";
import type { Bar } from "../types";
import { linesKey } from "./alertLines";
import { timeAxis } from "./axis";
import { Comparison } from "./comparison";
import { describeChart } from "./describe";
import type { BarFeed, HistoryLoader } from "./feed";
import { legendFor, percentBase, type Legend } from "./legend";
import { samePalette, type ChartPalette } from "./palette";
import { STUDIES, STUDY_IDS, studyPoints, studyValues, type StudyId } from "./studies";
import type { ChartStyle, ChartSurface, LineSurface, LogicalRange, PriceLineSpec } from "./surface";

/** What is shown: a new one reloads (the cache's bars at once). */
export interface ChartSource {
  ticker: string;
  interval: Interval;
  /** How far back the chart looks (lib/ranges.ts). */
  preset: RangePreset;
  feed: BarFeed;
  history: HistoryLoader;
}

/** How it is labelled. */
export interface ChartLook {
  /** The instrument's precision (axis, legend, summary). */
  decimals: number;
  zone: Zone;
  /** The ticker's market: XNYS bars are shaded by session, and have extended hours. */
  market: string;
}

/** How the bars are drawn, as the user chose. */
export interface ChartDisplay {
  style: ChartStyle;
  studies: readonly StudyId[];
  /** A logarithmic price scale. */
  log: boolean;
  /** XNYS's pre- and post-market bars shown (else the regular sessions only). */
  extended: boolean;
}

export const DEFAULT_DISPLAY: ChartDisplay = { style: "candles", studies: [], log: false, extended: true };

/** What the shell renders: the notes over the chart and the text alternative. */
export interface ChartState {
  loading: boolean;
  error: string | null;
  summary: string;
  /** The newest bar is out of view (the user panned back): "go to latest" is offered. */
  away: boolean;
}

export interface ChartControllerOptions {
  /** Show the legend (the shell writes it into the DOM: lib/chart/legend.ts writeLegend). */
  showLegend: (legend: Legend) => void;
  onState: (state: ChartState) => void;
  /** How many bars are in view, on every zoom or pan (the browser tests read it). */
  onBarsInView?: (bars: number) => void;
  cache?: ChartCache;
  now?: () => number;
}

/** What is drawn, for the browser tests and anyone curious in the console. */
export interface ChartProbe {
  /** The bars on screen (the extended hours left out when hidden). */
  bars: () => Bar[];
  shaded: () => number;
  compared: () => { ticker: string; bars: number } | null;
  percent: () => boolean;
  log: () => boolean;
  /** The studies drawn and their points. */
  studies: () => Record<string, number>;
  /** The price lines drawn (previous close, alerts). */
  lines: () => PriceLineSpec[];
  /** The logical range in view. */
  range: () => LogicalRange | null;
  /** The axis's date labels drawn: bar time and text. */
  dateMarks: () => { time: number; label: string }[];
}

/** One source on screen, from show() to the next. */
interface Showing {
  source: ChartSource;
  series: BarList;
  abort: AbortController;
  /** The wire's bars are taken once the history is on screen (before, they are read from
   * the feed's store when it is). */
  ready: boolean;
  range: LogicalRange | null;
  /** The preset's view as last set (null: none, or the user has moved since). */
  presetSet: LogicalRange | null;
  stop: (() => void)[];
}

/** Bars of room right of the newest one (as the chart's own rightOffset). */
const RIGHT_OFFSET = 4;

const sameSource = (a: ChartSource, b: ChartSource) =>
  a.ticker === b.ticker && a.interval === b.interval && a.preset === b.preset && a.feed === b.feed && a.history === b.history;

export class ChartController {
  readonly probe: ChartProbe;
  private showing: Showing | null = null;
  private look: ChartLook | null = null;
  private display: ChartDisplay = DEFAULT_DISPLAY;
  /** The bars drawn: all the series' bars, or its regular-session ones. */
  private shown: Bar[] = [];
  private live = true;
  private state: ChartState = { loading: true, error: null, summary: "", away: false };
  /** The bar under the crosshair, mouse or keyboard (null: none, the legend shows the newest). */
  private cursor: number | null = null;
  /** The keyboard put the crosshair where it is. */
  private keyboard = false;
  private held: { source: ChartSource; release: () => void } | null = null;
  private compareTicker: string | null = null;
  private comparison: { source: ChartSource; line: Comparison; filtered: boolean } | null = null;
  private prevClose: { price: number; remove: () => void } | null = null;
  private levels: { key: string; specs: PriceLineSpec[]; remove: (() => void)[] } = { key: "", specs: [], remove: [] };
  private readonly studyLines = new Map<StudyId, { line: LineSurface; points: number }>();
  private axisKey = "";
  private palette: ChartPalette | null = null;
  private readonly cache: ChartCache;
  private readonly offCrosshair: () => void;

  constructor(
    private readonly surface: ChartSurface,
    private readonly o: ChartControllerOptions,
  ) {
    this.cache = o.cache ?? chartCache;
    this.offCrosshair = surface.onCrosshair((logical, byUser) => {
      // Programmatic moves (the keyboard's) come without a user's event: the key handler drew them.
      if (!byUser && this.keyboard) return;
      this.keyboard = false;
      const i = logical === null ? null : Math.round(logical);
      this.cursor = i !== null && i >= 0 && i < this.bars.length ? i : null;
      this.showLegend(this.cursor);
    });
    this.probe = {
      bars: () => this.bars.map((b) => ({ ...b })),
      shaded: () => surface.shaded(),
      compared: () => (this.comparison ? { ticker: this.comparison.line.ticker, bars: this.comparison.line.size } : null),
      percent: () => surface.percent(),
      log: () => surface.log(),
      studies: () => Object.fromEntries([...this.studyLines].map(([id, s]) => [id, s.points])),
      lines: () => [...(this.prevClose ? [{ price: this.prevClose.price, title: "Prev close", color: "", dashed: true }] : []), ...this.levels.specs],
      range: () => surface.visibleRange(),
      dateMarks: () => surface.dateMarks(),
    };
  }

  /** The bars on screen, oldest first (the series' logical index is the array index). */
  get bars(): readonly Bar[] {
    return this.shown;
  }

  setLook(look: ChartLook): void {
    const prev = this.look;
    this.look = look;
    if (prev?.decimals !== look.decimals) this.surface.setPriceDecimals(look.decimals);
    this.applyAxis();
    if (prev?.market !== look.market) {
      if (this.showing && this.filtering() !== this.isFiltered) this.redrawInPlace();
      else this.shade();
    }
    this.showLegend(this.cursor);
  }

  /** The page's colours (its theme); drawn again only when they changed. */
  setPalette(palette: ChartPalette): void {
    if (samePalette(this.palette, palette)) return;
    this.palette = palette;
    this.surface.setPalette(palette);
  }

  /** How the bars are drawn: style, studies, log scale, extended hours. */
  setDisplay(display: ChartDisplay): void {
    const prev = this.display;
    this.display = display;
    if (prev.style !== display.style) this.surface.setStyle(display.style);
    if (prev.log !== display.log) this.surface.setLog(display.log);
    if (prev.extended !== display.extended) {
      this.applyAxis();
      if (this.filtering() !== this.isFiltered) this.redrawInPlace();
    }
    this.syncStudies(true);
  }

  /** Show `source` (nothing happens when it is the one shown). */
  show(source: ChartSource): void {
    if (this.showing && sameSource(this.showing.source, source)) return;
    this.stopShowing();
    const { ticker, interval, preset, feed } = source;
    const cached = this.cache.get(ChartCache.key(ticker, interval));
    const series = new BarList(cached ? cached.bars.slice() : []);
    const s: Showing = { source, series, abort: new AbortController(), ready: false, range: null, presetSet: null, stop: [] };
    this.showing = s;
    this.cursor = null;
    // Where the user looks (the zoom kept with the bars), from the first range set here on.
    s.stop.push(
      this.surface.onVisibleRange((r) => {
        s.range = r;
        if (r) this.o.onBarsInView?.(Math.round(r.to - r.from));
        this.checkAway(r);
        // A % scale measures from the first bar in view: the legend's figures move with it.
        if (this.comparison && this.surface.percent()) this.showLegend(this.cursor);
      }),
    );
    this.applyAxis();
    this.drawAll();
    const usable = cached !== undefined && cached.preset === preset;
    if (cached && this.shown.length > 0) {
      s.ready = true;
      this.surface.setVisibleRange(usable ? rangeFor(this.shown.length, cached.view) : this.presetRange(s, true));
    }
    this.showLegend(null);
    this.setState({ loading: !cached, error: null });
    s.stop.push(
      feed.on("bars", (ev) => {
        if (s.ready && this.live && ev.ticker === ticker && ev.interval === interval) this.take(ev.changed);
      }),
    );
    if (cached) this.setState({ summary: this.describe() });
    void this.load(s, cached !== undefined, usable);
    this.syncRetain();
    this.syncComparison();
  }

  /** False while the page is paused: no bars wanted, the candles stay as they are. */
  setLive(live: boolean): void {
    this.live = live;
    this.syncRetain();
    this.comparison?.line.setLive(live);
  }

  /** A second ticker drawn over the first, both in % (null: none). */
  setCompare(ticker: string | null): void {
    this.compareTicker = ticker;
    this.syncComparison();
  }

  /** The previous close as a dashed line across the chart (null: none known). */
  setPrevClose(price: number | null): void {
    const want = price !== null && Number.isFinite(price) ? price : null;
    if (want === (this.prevClose?.price ?? null)) return;
    this.prevClose?.remove();
    this.prevClose =
      want === null ? null : { price: want, remove: this.surface.addPriceLine({ price: want, title: "Prev close", color: "#8b96a5", dashed: true }) };
  }

  /** Lines at these prices (the ticker's alerts: lib/chart/alertLines.ts). */
  setLevels(specs: readonly PriceLineSpec[]): void {
    const key = linesKey(specs);
    if (key === this.levels.key) return;
    for (const r of this.levels.remove) r();
    this.levels = { key, specs: [...specs], remove: specs.map((spec) => this.surface.addPriceLine(spec)) };
  }

  /** The newest bar back in view at the right edge, the zoom kept. */
  goToLatest(): void {
    const n = this.shown.length;
    if (n === 0) return;
    const vis = this.surface.visibleRange();
    const width = vis ? vis.to - vis.from : 150;
    const to = n - 1 + RIGHT_OFFSET;
    this.surface.setVisibleRange({ from: to - width, to });
  }

  /**
   * A key pressed on the chart: the arrows walk the crosshair bar by bar (Shift: 10 at a
   * time), Home and End go to the ends, Escape leaves. True when the key was taken (the page
   * should not also scroll).
   */
  key(key: string, shift: boolean): boolean {
    const list = this.bars;
    if (list.length === 0) return false;
    const last = list.length - 1;
    const at = this.cursor ?? last;
    const step = shift ? 10 : 1;
    let next: number;
    switch (key) {
      case "ArrowLeft":
        next = this.cursor === null ? last : Math.max(0, at - step);
        break;
      case "ArrowRight":
        next = this.cursor === null ? last : Math.min(last, at + step);
        break;
      case "Home":
        next = 0;
        break;
      case "End":
        next = last;
        break;
      case "Escape":
        this.cursor = null;
        this.keyboard = false;
        this.surface.clearCrosshair();
        this.showLegend(null);
        return false;
      default:
        return false;
    }
    this.cursor = next;
    this.keyboard = true;
    const bar = list[next]!;
    // Keep the bar in view.
    const vis = this.surface.visibleRange();
    if (vis && (next < vis.from || next > vis.to)) {
      const width = vis.to - vis.from;
      const from = next < vis.from ? next - 2 : next - width + 2;
      this.surface.setVisibleRange({ from, to: from + width });
    }
    this.surface.setCrosshair(bar);
    this.showLegend(next);
    return true;
  }

  /** The chart lost focus: a crosshair the keyboard placed goes. */
  blur(): void {
    if (!this.keyboard) return;
    this.keyboard = false;
    this.cursor = null;
    this.surface.clearCrosshair();
    this.showLegend(null);
  }

  /** Stop everything: the bars and zoom are kept in the cache, the chart removed. */
  dispose(): void {
    this.stopShowing();
    this.syncComparison();
    this.syncRetain();
    this.offCrosshair();
    this.surface.remove();
  }

  private async load(s: Showing, cached: boolean, usable: boolean): Promise<void> {
    const { ticker, interval, preset, feed, history } = s.source;
    const signal = s.abort.signal;
    let fresh: readonly WireBar[] = [];
    let error: string | null = null;
    try {
      fresh = await history(ticker, interval, preset, signal);
    } catch (e) {
      if (signal.aborted) return;
      error = e instanceof Error ? e.message : String(e);
    }
    if (signal.aborted) return;
    // Where the user is looking, counted from the newest bar, survives the merge.
    const keep = usable ? viewOf(this.shown.length, s.range) : null;
    // Fresh history over what was drawn (newer live bars kept), then the wire's bars: the
    // newest word on the bars they hold.
    s.series.apply(fresh);
    s.series.apply(feed.bars(ticker, interval));
    this.drawAll();
    s.ready = true;
    const n = this.shown.length;
    if (n > 0 && (!cached || keep || !usable)) this.surface.setVisibleRange(keep ? rangeFor(n, keep) : this.presetRange(s, true));
    this.showLegend(this.cursor);
    this.setState({
      loading: false,
      error: error && n === 0 ? `No history: ${error}. Live bars only.` : error ? `History not refreshed: ${error}.` : null,
      summary: this.describe(),
    });
  }

  /** The wire's bars laid over the list: the newest drawn in place, older ones redraw. */
  private take(incoming: readonly WireBar[]): void {
    const s = this.showing;
    if (!s) return;
    const lastBefore = this.shown[this.shown.length - 1]?.time ?? -Infinity;
    const change = s.series.apply(incoming);
    if (change.kind === "none") return;
    const shown = this.shown;
    let drawn = 0;
    if (change.kind === "reset") this.drawAll();
    else {
      const market = this.look?.market ?? "";
      for (const b of change.bars) {
        if (this.isFiltered) {
          if (isExtended(b.time, market)) continue;
          const last = shown[shown.length - 1];
          if (last && last.time === b.time) shown[shown.length - 1] = b;
          else if (!last || b.time > last.time) shown.push(b);
          else continue;
        }
        this.surface.updateBar(b);
        drawn += 1;
      }
      if (drawn === 0) return;
      if (this.shading()) for (let i = Math.max(0, shown.length - drawn); i < shown.length; i += 1) this.surface.putSession(i, sessionOf(shown[i]!.time, "XNYS"));
      this.syncStudies(false, drawn);
      let firstNew = shown.length;
      while (firstNew > 0 && shown[firstNew - 1]!.time > lastBefore) firstNew -= 1;
      if (firstNew < shown.length) this.followSession(firstNew);
    }
    if (this.cursor === null || this.cursor >= shown.length - 2) this.showLegend(this.cursor);
  }

  private stopShowing(): void {
    const s = this.showing;
    if (!s) return;
    this.showing = null;
    s.abort.abort();
    for (const stop of s.stop) stop();
    const list = s.series.bars;
    const { ticker, interval, preset } = s.source;
    if (list.length > 0) this.cache.set(ChartCache.key(ticker, interval), { bars: list, view: viewOf(this.shown.length, s.range), preset, savedAt: (this.o.now ?? Date.now)() });
  }

  /** The shown ticker's bars wanted from the feed while live (let go otherwise). */
  private syncRetain(): void {
    const want = this.live ? (this.showing?.source ?? null) : null;
    const held = this.held;
    if (held && want && held.source.feed === want.feed && held.source.ticker === want.ticker && held.source.interval === want.interval) return;
    this.held = null;
    held?.release();
    if (want) this.held = { source: want, release: want.feed.retain(want.ticker, want.interval) };
  }

  /** The comparison line for the compared ticker and the source shown, or none. */
  private syncComparison(): void {
    const source = this.showing?.source;
    const ticker = source && this.compareTicker && this.compareTicker !== source.ticker ? this.compareTicker : null;
    const cur = this.comparison;
    const filtered = this.isFiltered;
    if (cur && source && cur.source === source && cur.line.ticker === ticker && cur.filtered === filtered) return;
    if (cur) {
      this.comparison = null;
      cur.line.dispose();
      this.showLegend(this.cursor);
    }
    if (!source || !ticker) return;
    const market = this.look?.market ?? "";
    const keep = filtered ? (t: number) => !isExtended(t, market) : undefined;
    const line = new Comparison(this.surface, { ...source, ticker, keep }, this.live, () => this.showLegend(this.cursor));
    this.comparison = { source, line, filtered };
  }

  /** The studies chosen, each a line (`all`: every point afresh; else the newest `tail`). */
  private syncStudies(all: boolean, tail = 1): void {
    const want = new Set(this.display.studies.filter((id) => !STUDIES[id].intraday || this.intervalSec() < 86400));
    for (const [id, s] of this.studyLines) {
      if (want.has(id)) continue;
      s.line.remove();
      this.studyLines.delete(id);
    }
    const bars = this.shown;
    const cal = this.calendar();
    for (const id of STUDY_IDS) {
      if (!want.has(id)) continue;
      let s = this.studyLines.get(id);
      const fresh = !s;
      if (!s) {
        s = { line: this.surface.addLine(STUDIES[id].label, STUDIES[id].color), points: 0 };
        this.studyLines.set(id, s);
      }
      const values = studyValues(id, bars, cal);
      if (all || fresh) {
        const points = studyPoints(bars, values);
        s.line.setPoints(points);
        s.points = points.length;
      } else {
        for (let i = Math.max(0, bars.length - tail); i < bars.length; i += 1) {
          const v = values[i];
          if (v === null || v === undefined || !Number.isFinite(v)) continue;
          s.line.updatePoint({ time: bars[i]!.time, value: v });
        }
        s.points = values.reduce<number>((n, v) => (v === null ? n : n + 1), 0);
      }
    }
  }

  /** Whether the extended hours are left out: XNYS intraday bars with them hidden. */
  private filtering(): boolean {
    return !this.display.extended && this.shading();
  }

  /** What the bars on screen were drawn with. */
  private isFiltered = false;

  private drawAll(): void {
    const all = this.showing?.series.bars ?? [];
    this.isFiltered = this.filtering();
    const market = this.look?.market ?? "";
    this.shown = this.isFiltered ? all.filter((b) => !isExtended(b.time, market)) : all;
    this.surface.setBars(this.shown);
    this.shade();
    this.syncStudies(true);
  }

  /** Drawn again with other bars (the extended hours shown or not): the preset's view. */
  private redrawInPlace(): void {
    const s = this.showing;
    this.cursor = null;
    this.drawAll();
    this.syncComparison();
    if (s && this.shown.length > 0) this.surface.setVisibleRange(this.presetRange(s, true));
    this.showLegend(null);
    this.setState({ summary: this.describe() });
  }

  private intervalSec(): number {
    const interval = this.showing?.source.interval;
    return interval ? INTERVAL_SECONDS[interval] : 60;
  }

  private calendar(): SessionCalendar {
    return sessionCalendar(this.look?.market ?? "", this.intervalSec(), this.display.extended);
  }

  /** Whether the bars are shaded by session: US equities, intraday bars. */
  private shading(): boolean {
    return this.look?.market === "XNYS" && this.showing !== null && shadable(this.intervalSec());
  }

  private shade(): void {
    this.surface.setSessions(this.shading() && !this.isFiltered ? this.bars.map((b) => sessionOf(b.time, "XNYS")) : []);
  }

  /** Axis and crosshair times in the chosen zone, dates on the sessions; daily bars as dates. */
  private applyAxis(): void {
    const interval = this.showing?.source.interval;
    const zone = this.look?.zone;
    if (!interval || !zone) return;
    const cal = this.calendar();
    const key = `${zone.tz} ${zone.label} ${interval} ${cal.tz} ${cal.shiftSec} ${cal.openSec}`;
    if (key === this.axisKey) return;
    this.axisKey = key;
    this.surface.setTimeAxis(timeAxis(zone, interval, cal));
  }

  /** The preset's span back from the newest bar (`set`: about to be shown; remembered). */
  private presetRange(s: Showing, set = false): LogicalRange {
    const list = this.shown;
    const now = (this.o.now ?? Date.now)() / 1000;
    const r =
      presetView(
        list.map((b) => b.time),
        s.source.preset,
        { calendar: this.calendar(), intervalSec: INTERVAL_SECONDS[s.source.interval], now },
      ) ?? rangeFor(list.length, null);
    if (set) s.presetSet = r;
    return r;
  }

  /** A new session's first bar arrived: a view the preset set (1D, 5D) moves on to it, as
   * quote sites do at the open; a view the user chose stays. */
  private followSession(firstNew: number): void {
    const s = this.showing;
    const shown = this.shown;
    if (!s || !s.presetSet || (s.source.preset !== "1D" && s.source.preset !== "5D") || firstNew < 1 || firstNew >= shown.length) return;
    const r = s.range;
    if (!r || Math.abs(r.from - s.presetSet.from) > 0.01 || Math.abs(r.to - s.presetSet.to) > 0.01) return;
    const cal = this.calendar();
    if (sessionDay(shown[firstNew]!.time, cal) === sessionDay(shown[firstNew - 1]!.time, cal)) return;
    this.surface.setVisibleRange(this.presetRange(s, true));
  }

  /** "Go to latest" offered while the newest bar is out of view. */
  private checkAway(r: LogicalRange | null): void {
    const away = r !== null && this.shown.length > 0 && r.to < this.shown.length - 1;
    if (away !== this.state.away) this.setState({ away });
  }

  private showLegend(index: number | null): void {
    const s = this.showing;
    const look = this.look;
    if (!s || !look) return;
    const compared = this.comparison?.line ?? null;
    // The scale in % (a comparison drawn): the change of both series from the view's start.
    const range = compared && this.surface.percent() ? (s.range ?? this.surface.visibleRange()) : null;
    const base = range ? percentBase(this.shown, range.from, compared) : null;
    this.o.showLegend(legendFor(this.shown, index, { ...look, ticker: s.source.ticker, interval: s.source.interval }, compared, base));
  }

  private describe(): string {
    const s = this.showing;
    if (!s || !this.look) return "";
    return describeChart(s.source.ticker, s.source.interval, this.shown, this.look.decimals, this.look.zone);
  }

  private setState(patch: Partial<ChartState>): void {
    this.state = { ...this.state, ...patch };
    this.o.onState(this.state);
  }
}
