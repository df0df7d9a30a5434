// The selected ticker's day at a glance: open, high, low, previous close, volume, seq.

import { formatPrice, formatVolume } from "../lib/format";
import { exchangeClock, marketOf } from "../lib/market";
import type { Quote } from "../lib/types";

export function QuoteDetails({ ticker, quote }: { ticker: string; quote: Quote | undefined }) {
  const d = quote?.data;
  const quotedAt = d?.market_time ?? quote?.timestamp ?? null;
  const range = d && d.high !== null && d.low !== null && d.high > d.low ? (d.price - d.low) / (d.high - d.low) : null;
  const rows: [string, string][] = [
    ["Open", formatPrice(d?.open)],
    ["Prev close", formatPrice(d?.prev_close)],
    ["High", formatPrice(d?.high)],
    ["Low", formatPrice(d?.low)],
    ["Volume", formatVolume(d?.volume)],
    ["Seq", quote ? String(quote.seq) : "—"],
    // In the exchange's time, like the header and the chart's axis.
    ["Quote time", quotedAt === null ? "—" : exchangeClock(quotedAt, marketOf(ticker))],
    ["Day range", range === null ? "—" : `${Math.round(range * 100)}%`],
  ];
  return (
    <section className="panel details" data-testid="quote-details" aria-label={`${ticker} details`}>
      <div className="panel-head">
        <h2>{ticker || "—"} · day</h2>
      </div>
      <dl>
        {rows.map(([k, v]) => (
          <div key={k} className="m-row">
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <div className="range-bar" aria-hidden="true">
        <span style={{ left: `${range === null ? 50 : Math.min(100, Math.max(0, range * 100))}%` }} />
      </div>
    </section>
  );
}
