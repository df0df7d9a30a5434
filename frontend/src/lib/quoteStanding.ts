// A quote's standing, said in its price cell: "ok", "stale" (no update for longer than
// expected while its market trades, or the server marked it stale) or "closed" (its market
// is closed: the session's last price, kept). Three different things from the connection's
// state, which the header says.

export type QuoteStanding = "ok" | "stale" | "closed";

export interface StandingContext {
  now: number;
  /** How long an update may take before the quote is late (mode-dependent). */
  expectedMs: number;
  /** Prices should be moving (market in session, or a simulated / 24-7 feed). */
  pricesExpected: boolean;
  /** The market's session, when known. */
  session: "closed" | "pre" | "regular" | "post" | null;
}

/** How long a quote must have stood still before a closed market's quote is called "closed". */
export const CLOSED_QUIET_MS = 60_000;

export function quoteStanding(q: { stale: boolean; timestamp: number }, c: StandingContext): QuoteStanding {
  const age = c.now - q.timestamp;
  // A quote that still moves (a simulator ticking outside hours) is not called closed.
  if (c.session === "closed" && age > CLOSED_QUIET_MS) return "closed";
  if (q.stale) return "stale";
  return c.pricesExpected && age > c.expectedMs ? "stale" : "ok";
}
