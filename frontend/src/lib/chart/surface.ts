// What the chart controller needs of a chart library, and nothing more: candles with their
// volume, session bands, a price line, a comparison line, the time axis's words, the visible
// range and the crosshair. lightweightSurface.ts is the real one (lightweight-charts); the
// unit tests drive the controller through a recording one, since lightweight-charts needs a
// canvas and a laid-out box that jsdom does not have (the browser tests check the real one).

import type { Session } from "../sessions";
import type { Bar } from "../types";

/** The bars' logical indexes in view (fractional: half a bar of margin, the right offset). */
export interface LogicalRange {
  from: number;
  to: number;
}

/** Which tick mark the axis asks a label for (lightweight-charts's TickMarkType, by name). */
export type TickKind = "year" | "month" | "day" | "time";

export interface TimeAxis {
  /** Intraday bars show their time of day on the axis; daily bars are dates. */
  timeVisible: boolean;
  /** The crosshair's label of a bar's time (epoch seconds). */
  crosshairLabel: (sec: number) => string;
  /** An axis tick's label. */
  tickLabel: (sec: number, kind: TickKind) => string;
}

/** A line of closes over the candles (the compared ticker). */
export interface LineSurface {
  setPoints(points: readonly { time: number; value: number }[]): void;
  /** The newest point changed, or one was added after it. */
  updatePoint(point: { time: number; value: number }): void;
  remove(): void;
}

export interface ChartSurface {
  /** Every candle and volume bar afresh (logical index = array index). */
  setBars(bars: readonly Bar[]): void;
  /** The newest bar changed, or one was added after it: drawn in place, no redraw. */
  updateBar(bar: Bar): void;
  /** Each bar's session band (same index as the bars); empty: none. */
  setSessions(sessions: (Session | null)[]): void;
  /** Bar `index`'s band (the newest changed, or one was added). */
  putSession(index: number, session: Session | null): void;
  /** How many bars are shaded now. */
  shaded(): number;
  setTimeAxis(axis: TimeAxis): void;
  /** The price axis (and the candles' labels) with the instrument's decimals. */
  setPriceDecimals(decimals: number): void;
  /** A dashed "Prev close" line; the function takes it away. */
  addPrevClose(price: number): () => void;
  /** A line of another ticker's closes (title: its ticker). */
  addLine(title: string): LineSurface;
  /** The price scale in % from the first bar in view (a comparison), or in prices. */
  setPercent(on: boolean): void;
  percent(): boolean;
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
  remove(): void;
}
