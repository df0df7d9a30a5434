// Studies drawn over the candles, as pure functions of the bars (oldest first). Each answers
// one value per bar, null where it is not defined yet (the first period-1 bars of an
// average; a session's bars before it has traded any volume).
//
// SMA(n): the mean of the last n closes. EMA(n): α = 2/(n+1), seeded with the SMA of the
// first n closes (the usual convention, as TA-Lib and most charting sites do), then
// ema = α·close + (1-α)·previous. VWAP: from each session's first bar, Σ(typical·volume) /
// Σvolume with typical = (high+low+close)/3, starting again with each session.

export type Series = (number | null)[];

export interface StudyBar {
  time: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

function checkPeriod(period: number): void {
  if (!Number.isInteger(period) || period < 1) throw new RangeError(`period must be a whole number of bars >= 1, not ${period}`);
}

export function sma(values: readonly number[], period: number): Series {
  checkPeriod(period);
  const out: Series = new Array<number | null>(values.length).fill(null);
  let sum = 0;
  for (let i = 0; i < values.length; i += 1) {
    sum += values[i]!;
    if (i >= period) sum -= values[i - period]!;
    if (i >= period - 1) out[i] = sum / period;
  }
  return out;
}

export function ema(values: readonly number[], period: number): Series {
  checkPeriod(period);
  const out: Series = new Array<number | null>(values.length).fill(null);
  if (values.length < period) return out;
  const alpha = 2 / (period + 1);
  let seed = 0;
  for (let i = 0; i < period; i += 1) seed += values[i]!;
  let prev = seed / period;
  out[period - 1] = prev;
  for (let i = period; i < values.length; i += 1) {
    prev = alpha * values[i]! + (1 - alpha) * prev;
    out[i] = prev;
  }
  return out;
}

/** `session(time)` names each bar's session (lib/sessions.ts sessionDay): VWAP starts again
 * where it changes. */
export function vwap(bars: readonly StudyBar[], session: (time: number) => number): Series {
  const out: Series = new Array<number | null>(bars.length).fill(null);
  let current: number | null = null;
  let pv = 0;
  let vol = 0;
  for (let i = 0; i < bars.length; i += 1) {
    const b = bars[i]!;
    const s = session(b.time);
    if (s !== current) {
      current = s;
      pv = 0;
      vol = 0;
    }
    const v = Number.isFinite(b.volume) && b.volume > 0 ? b.volume : 0;
    pv += ((b.high + b.low + b.close) / 3) * v;
    vol += v;
    out[i] = vol > 0 ? pv / vol : null;
  }
  return out;
}
