// What the chart controller needs of a chart library, and nothing more: the bars as candles,
// a line or an area with their volume, session bands, price lines, more lines (the
// comparison, the studies), the time axis's words and marks, the price scale's mode, the
// visible range and the crosshair. lightweightSurface.ts is the real one (lightweight-charts);
// the unit tests drive the controller through a recording one, since lightweight-charts needs
// a canvas and a laid-out box that jsdom does not have (the browser tests check the real one).

import type { Session } from "../sessions";
import type { ChartPalette } from "./palette";
import type { Bar } from "../types";

/** The bars' logical indexes in view (fractional: half a bar of margin, the right offset). */
export interface LogicalRange {
  from: number;
  to: number;
}

/** Which tick mark the axis asks a label for (lightweight-charts's TickMarkType, by name). */
export type TickKind = "year" | "month" | "day" | "time";

/** How the bars are drawn. */
export type ChartStyle = "candles" | "line" | "area";

export interface TimeAxis {
  /** Intraday bars show their time of day on the axis; daily bars are dates. */
  timeVisible: boolean;
  /** The crosshair's label of a bar's time (epoch seconds). */
  crosshairLabel: (sec: number) => string;
  /** An axis tick's label. */
  tickLabel: (sec: number, kind: TickKind) => string;
  /** The weight of the mark at bar `sec` after bar `prev` (lib/chart/axis.ts WEIGHT). */
  weight: (sec: number, prev: number) => number;
  /** Names the axis: a new key weighs every bar again. */
  key: string;
}

/** A line over the candles (the compared ticker, a study). */
export interface LineSurface {
  setPoints(points: readonly { time: number; value: number }[]): void;
  /** The newest point changed, or one was added after it. */
  updatePoint(point: { time: number; value: number }): void;
  remove(): void;
}

/** A horizontal line at a price (the previous close, an alert's level). */
export interface PriceLineSpec {
  price: number;
  title: string;
  color: string;
  dashed: boolean;
}

export interface ChartSurface {
  /** Every bar and volume bar afresh (logical index = array index). */
  setBars(bars: readonly Bar[]): void;
  /** The newest bar changed, or one was added after it: drawn in place, no redraw. */
  updateBar(bar: Bar): void;
  /** Candles, a line of closes or an area under them (setBars follows). */
  setStyle(style: ChartStyle): void;
  /** Each bar's session band (same index as the bars); empty: none. */
  setSessions(sessions: (Session | null)[]): void;
  /** Bar `index`'s band (the newest changed, or one was added). */
  putSession(index: number, session: Session | null): void;
  /** How many bars are shaded now. */
  shaded(): number;
  setTimeAxis(axis: TimeAxis): void;
  /** Background, text, grid and border colours (the page's theme). */
  setPalette(palette: ChartPalette): void;
  /** The price axis (and the candles' labels) with the instrument's decimals. */
  setPriceDecimals(decimals: number): void;
  /** A horizontal line across the chart; the function takes it away. */
  addPriceLine(spec: PriceLineSpec): () => void;
  /** A line of values (title: on the price axis; the comparison's is its ticker). */
  addLine(title: string, color?: string): LineSurface;
  /** The price scale in % from the first bar in view (a comparison), or in prices. */
  setPercent(on: boolean): void;
  percent(): boolean;
  /** A logarithmic price scale (a comparison's % scale goes first). */
  setLog(on: boolean): void;
  log(): boolean;
  visibleRange(): LogicalRange | null;
  setVisibleRange(range: LogicalRange): void;
  /** Called when the visible range changes; the function stops it. */
  onVisibleRange(fn: (range: LogicalRange | null) => void): () => void;
  /** Called when the crosshair moves: the bar's logical index under it (null: off the bars),
   * and whether the user moved it (mouse, touch) or the program did. */
  onCrosshair(fn: (logical: number | null, byUser: boolean) => void): () => void;
  /** The crosshair on `bar` (its close), as the keyboard puts it. */
  setCrosshair(bar: Bar): void;
  clearCrosshair(): void;
  /** The axis's date labels drawn lately (day, month and year marks): bar time and text. */
  dateMarks(): { time: number; label: string }[];
  remove(): void;
}
