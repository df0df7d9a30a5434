// The selected ticker's day at a glance: open, high, low, previous close, volume, seq.

import { formatCount, formatPrice, reportedVolume } from "../lib/format";
import { formatDateTime, type Zone } from "../lib/timezone";
import type { Quote } from "../lib/types";
import { PanelTitle, type Fold } from "./PanelTitle";

interface Props {
  ticker: string;
  quote: Quote | undefined;
  decimals: number | null;
  zone: Zone;
  fold?: Fold;
}

export function QuoteDetails({ ticker, quote, decimals, zone, fold }: Props) {
  const d = quote?.data;
  const quotedAt = d?.market_time ?? quote?.timestamp ?? null;
  // Where the price sits in the day's range; a source's high/low can lag its last price,
  // so it is kept within 0-100 %.
  const range = d && d.high !== null && d.low !== null && d.high > d.low ? Math.min(1, Math.max(0, (d.price - d.low) / (d.high - d.low))) : null;
  const rows: [string, string][] = [
    ["Open", formatPrice(d?.open, decimals)],
    ["Prev close", formatPrice(d?.prev_close, decimals)],
    ["High", formatPrice(d?.high, decimals)],
    ["Low", formatPrice(d?.low, decimals)],
    ["Volume", formatCount(reportedVolume(ticker, d?.volume))],
    ["Seq", quote ? formatCount(quote.seq) : "—"],
    ["Quote time", quotedAt === null ? "—" : formatDateTime(quotedAt, zone)],
    ["Day range", range === null ? "—" : `${Math.round(range * 100)}%`],
  ];
  return (
    <section className="panel details" data-testid="quote-details" aria-labelledby="qd-title">
      <div className="panel-head">
        <PanelTitle id="qd-title" fold={fold} name="day">
          {ticker || "—"} · day
        </PanelTitle>
      </div>
      <div id="qd-title-body" hidden={fold ? !fold.open : undefined}>
      <dl>
        {rows.map(([k, v]) => (
          <div key={k} className={k === "Quote time" ? "m-row wide" : "m-row"}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <div className="range-bar" aria-hidden="true">
        <span style={{ left: `${range === null ? 50 : Math.min(100, Math.max(0, range * 100))}%` }} />
      </div>
      </div>
    </section>
  );
}
