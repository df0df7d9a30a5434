// How many decimals each instrument quotes in. The server sends `price_decimals` in
// snapshots (DESIGN.md, "Symbols"); later `price_update`s may leave it out, so the last
// value seen per ticker is kept. Unknown: null (lib/format.ts then picks by magnitude).

import { validDecimals } from "./format";
import type { Quote } from "./types";

export function decimalsOfQuote(q: Pick<Quote, "data"> | undefined): number | null {
  if (!q) return null;
  return validDecimals((q.data as unknown as Record<string, unknown>).price_decimals);
}

export class PrecisionBook {
  private readonly byTicker = new Map<string, number>();

  /** Remember the quote's precision, if it carries one. */
  note(q: Quote): void {
    const d = decimalsOfQuote(q);
    if (d !== null) this.byTicker.set(q.ticker, d);
  }

  set(ticker: string, decimals: unknown): void {
    const d = validDecimals(decimals);
    if (d !== null) this.byTicker.set(ticker, d);
  }

  get(ticker: string): number | null {
    return this.byTicker.get(ticker) ?? null;
  }
}
