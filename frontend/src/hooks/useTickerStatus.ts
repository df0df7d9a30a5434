// Each ticker's own market_status. The server answers every subscription with a
// `market_status` naming the ticker, and sends one with `"stale": true` when that ticker
// goes silent while its market trades (and one without when it comes back: DESIGN.md,
// per-ticker liveness). The client keeps statuses per market (useMarkets), the newest
// winning, so the ones naming a ticker are gathered here per ticker, from each change of
// that map.
// (Two tickers' statuses landing in the same React batch keep only the last: the next
// status or quote for the other one sets it right. A per-ticker map from the feed itself
// would close that gap.)

import { useState } from "react";
import type { MarketStatus } from "../lib/types";

type WithTicker = MarketStatus & { ticker?: string };

export function useTickerStatus(markets: Record<string, MarketStatus>): Record<string, MarketStatus> {
  const [s, setS] = useState<{ src: Record<string, MarketStatus> | null; byTicker: Record<string, MarketStatus> }>({ src: null, byTicker: {} });
  if (s.src !== markets) {
    const byTicker = { ...s.byTicker };
    for (const m of Object.values(markets) as WithTicker[]) {
      if (m.ticker && s.src?.[m.market] !== m) byTicker[m.ticker] = m;
    }
    setS({ src: markets, byTicker });
  }
  return s.byTicker;
}

/** The status that speaks for a ticker: its own, else its market's, else the only market known. */
export function statusFor(
  ticker: string,
  byTicker: Record<string, MarketStatus>,
  markets: Record<string, MarketStatus>,
  guessMarket: (t: string) => string,
): MarketStatus | null {
  const own = byTicker[ticker];
  if (own) return own;
  const guess = markets[guessMarket(ticker)];
  if (guess) return guess;
  const all = Object.values(markets);
  return all.length === 1 ? (all[0] ?? null) : null;
}
