// The selected ticker's quote line above the chart, as quote sites write it (lib/sessionQuote.ts):
// "AAPL 254.50 +1.20 (+0.47 %)", or "At close 254.50 … · After hours 255.26 +0.76 (+0.30 %)";
// "last known" when the price is one kept from an earlier visit.

import { formatPrice, formatSigned } from "../lib/format";
import { sessionQuoteParts } from "../lib/sessionQuote";
import type { Quote } from "../lib/types";

export function QuoteHeadline({ ticker, quote, decimals, lastKnown }: { ticker: string; quote: Quote | undefined; decimals: number | null; lastKnown: boolean }) {
  const parts = quote ? sessionQuoteParts(quote.data) : [];
  return (
    <div className="qh" data-testid="quote-headline">
      <span className="qh-sym">{ticker || "—"}</span>
      {parts.length === 0 && <span className="muted">no quote yet</span>}
      {parts.map((p, i) => {
        const dir = p.change === null || p.change === 0 ? "flat" : p.change > 0 ? "up" : "down";
        return (
          <span key={p.label || "last"} className="qh-part" data-part={p.label || "last"}>
            {p.label && <span className="qh-label">{p.label}</span>}
            <span className="qh-price">{formatPrice(p.price, decimals)}</span>
            {p.change !== null && (
              <span className={`qh-chg ${dir}`}>
                {formatSigned(p.change, decimals ?? 2)}
                {p.percent !== null && ` (${formatSigned(p.percent, 2, " %")})`}
              </span>
            )}
            {i < parts.length - 1 && (
              <span className="qh-sep" aria-hidden="true">
                ·
              </span>
            )}
          </span>
        );
      })}
      {lastKnown && (
        <span className="qh-known" data-testid="last-known-mark">
          last known
        </span>
      )}
    </div>
  );
}
