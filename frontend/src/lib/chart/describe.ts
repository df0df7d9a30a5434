// The chart in words, for screen readers (the chart box's aria-describedby): span, last
// close, low and high.

import type { Interval } from "../candles";
import { formatPrice, formatSigned } from "../format";
import type { Zone } from "../timezone";
import type { Bar } from "../types";
import { barTimeLabel, intervalLabel } from "./axis";

export function describeChart(ticker: string, interval: Interval, list: readonly Bar[], decimals: number, zone: Zone): string {
  const first = list[0];
  const last = list[list.length - 1];
  if (!first || !last) return `${ticker} ${intervalLabel(interval)} candlestick chart: no bars yet.`;
  let lo = Infinity;
  let hi = -Infinity;
  for (const b of list) {
    lo = Math.min(lo, b.low);
    hi = Math.max(hi, b.high);
  }
  const when = barTimeLabel(zone, interval);
  const chg = last.close - first.open;
  return (
    `${ticker} ${intervalLabel(interval)} candlestick chart: ${list.length} bars from ${when(first.time)} to ${when(last.time)}. ` +
    `Last close ${formatPrice(last.close, decimals)}, ${formatSigned(chg, decimals)} over the chart; ` +
    `low ${formatPrice(lo, decimals)}, high ${formatPrice(hi, decimals)}.`
  );
}
