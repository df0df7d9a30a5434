// The watchlist's intraday sparklines: the closes of a ticker's latest session (from its
// 5m bars, as the page's StockfeedClient holds them) drawn as one SVG polyline.

/** The interval sparklines are drawn from. */
export const SPARK_INTERVAL = "5m";
/** A gap longer than this between two bars starts a new session (overnight, a weekend). */
export const SESSION_GAP_SEC = 3600;
/** At most a regular US session of 5m bars (6.5 h): also a day's window for 24 h markets. */
export const SESSION_MAX_BARS = 78;

/** The closes of the latest session, oldest first: the bars after the last gap longer than
 * `maxGapSec`, at most the last `maxBars`. */
export function sessionCloses(
  bars: readonly { time: number; close: number }[],
  maxGapSec = SESSION_GAP_SEC,
  maxBars = SESSION_MAX_BARS,
): number[] {
  if (bars.length === 0) return [];
  const floor = Math.max(0, bars.length - maxBars);
  let start = bars.length - 1;
  while (start > floor && bars[start]!.time - bars[start - 1]!.time <= maxGapSec) start -= 1;
  const out: number[] = [];
  for (let i = start; i < bars.length; i += 1) {
    const c = bars[i]!.close;
    if (Number.isFinite(c)) out.push(c);
  }
  return out;
}

/** Whether two series are equal, value for value (a redraw is skipped when they are). */
export function sameSeries(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

/** SVG polyline points for `values` in a `width` x `height` box (`pad` kept clear at the top
 * and bottom), and the y of `ref` (the previous close) when it falls inside the range. */
export function sparkGeometry(
  values: readonly number[],
  width: number,
  height: number,
  ref: number | null = null,
  pad = 2,
): { points: string; refY: number | null } {
  if (values.length === 0) return { points: "", refY: null };
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo;
  const y = (v: number) => (span === 0 ? height / 2 : pad + ((hi - v) / span) * (height - 2 * pad));
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const pts = values.map((v, i) => `${(values.length > 1 ? i * step : width / 2).toFixed(1)},${y(v).toFixed(1)}`);
  // A single value: a short flat stroke, so it is still seen.
  const points = values.length === 1 ? `0,${y(values[0]!).toFixed(1)} ${width},${y(values[0]!).toFixed(1)}` : pts.join(" ");
  const refY = ref !== null && Number.isFinite(ref) && ref >= lo && ref <= hi && span > 0 ? Number(y(ref).toFixed(1)) : null;
  return { points, refY };
}
