// The watchlist's intraday sparklines: the closes of a ticker's latest session (from its
// 5m bars, as the page's StockfeedClient holds them) drawn as one SVG polyline; the previous
// session's until the latest has a few bars (sparkCloses).

/** The interval sparklines are drawn from. */
export const SPARK_INTERVAL = "5m";
/** A gap longer than this between two bars starts a new session (overnight, a weekend). */
export const SESSION_GAP_SEC = 3600;
/** At most a regular US session of 5m bars (6.5 h): also a day's window for 24 h markets. */
export const SESSION_MAX_BARS = 78;

/** Where the latest session starts: after the last gap longer than `maxGapSec`, at most
 * the last `maxBars` back. */
function latestStart(bars: readonly { time: number }[], maxGapSec: number, maxBars: number): number {
  const floor = Math.max(0, bars.length - maxBars);
  let start = bars.length - 1;
  while (start > floor && bars[start]!.time - bars[start - 1]!.time <= maxGapSec) start -= 1;
  return Math.max(0, start);
}

function closesFrom(bars: readonly { close: number }[], start: number): number[] {
  const out: number[] = [];
  for (let i = start; i < bars.length; i += 1) {
    const c = bars[i]!.close;
    if (Number.isFinite(c)) out.push(c);
  }
  return out;
}

/** The closes of the latest session, oldest first: the bars after the last gap longer than
 * `maxGapSec`, at most the last `maxBars`. */
export function sessionCloses(
  bars: readonly { time: number; close: number }[],
  maxGapSec = SESSION_GAP_SEC,
  maxBars = SESSION_MAX_BARS,
): number[] {
  if (bars.length === 0) return [];
  return closesFrom(bars, latestStart(bars, maxGapSec, maxBars));
}

/** A sparkline's closes; `previous`: the session before the latest (today's has too few bars
 * yet). The watchlist passes it to the Sparkline as it is. */
export type SparkCloses = readonly number[] & { readonly previous?: boolean };

/** Today has a line of its own from this many bars on (half an hour of 5m bars); before,
 * the previous session is drawn, so a pre-market's first minutes are not a flat stroke. */
export const SPARK_MIN_BARS = 6;

/** The latest session's closes, or the previous session's (marked) while the latest has
 * fewer than `minBars` and the previous more. */
export function sparkCloses(
  bars: readonly { time: number; close: number }[],
  minBars = SPARK_MIN_BARS,
  maxGapSec = SESSION_GAP_SEC,
  maxBars = SESSION_MAX_BARS,
): SparkCloses {
  if (bars.length === 0) return [];
  const start = latestStart(bars, maxGapSec, maxBars);
  const latest = closesFrom(bars, start);
  if (latest.length >= minBars || start === 0) return latest;
  const before = bars.slice(0, start);
  const prev = closesFrom(before, latestStart(before, maxGapSec, maxBars));
  return prev.length > latest.length ? Object.assign(prev, { previous: true as const }) : latest;
}

/** Whether two series are equal, value for value and session (a redraw is skipped when they are). */
export function sameSeries(a: SparkCloses | undefined, b: SparkCloses | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length || Boolean(a.previous) !== Boolean(b.previous)) return false;
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
