// The symbol directory, `GET /api/symbols?q=…&limit=…` (docs/protocol.md, REST API): best
// match first; and its refusals in words for the search box.

import { ApiError, getJson } from "./api";

export interface SymbolEntry {
  symbol: string;
  name: string;
  exchange: string;
  type: string;
  currency: string | null;
  price_decimals: number | null;
}

export const SEARCH_LIMIT = 8;

// ISO 4217 codes the directory quotes pairs in: "usdjpy" is read as the pair "USD/JPY".
const CURRENCIES = new Set(
  "USD EUR JPY GBP CHF CAD AUD NZD CNY HKD SGD SEK NOK DKK MXN INR KRW BRL ZAR TRY PLN".split(" "),
);

/**
 * What the directory is asked for what the user typed. The directory names a currency pair
 * "USD/JPY" under the symbol Yahoo gives it (`JPY=X`), so "usdjpy", "USD-JPY", "usd jpy" and
 * "USDJPY=X" are asked as "USD/JPY"; otherwise the text, trimmed, with runs of spaces made one.
 */
export function normalizeQuery(raw: string): string {
  const text = raw.trim().replace(/\s+/g, " ");
  const letters = text.toUpperCase().replace(/=X$/, "").replace(/[\s/._-]/g, "");
  if (/^[A-Z]{6}$/.test(letters)) {
    const base = letters.slice(0, 3);
    const quote = letters.slice(3);
    if (CURRENCIES.has(base) && CURRENCIES.has(quote)) return `${base}/${quote}`;
  }
  return text;
}

export async function searchSymbols(q: string, token: string | null, signal?: AbortSignal, limit = SEARCH_LIMIT): Promise<SymbolEntry[]> {
  const query = normalizeQuery(q);
  const body = await getJson<{ symbols?: SymbolEntry[] }>(`/api/symbols?q=${encodeURIComponent(query)}&limit=${limit}`, token, signal);
  return Array.isArray(body.symbols) ? body.symbols.filter((s) => typeof s?.symbol === "string") : [];
}

/** Why a search failed, for the user: the server's own words for a refused query. */
export function searchErrorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 422) return `Not a valid search: ${err.message}`;
    if (err.status === 429) return "Too many searches: wait a few seconds, then type again";
    if (err.status === 401 || err.status === 403) return `Search refused: ${err.message}`;
    if (err.status === 503) return `Search unavailable: ${err.message}`;
    return `Search failed: ${err.message}`;
  }
  return "Search failed: the server cannot be reached";
}

const TYPE_LABEL: Record<string, string> = { equity: "Stock", etf: "ETF", index: "Index", crypto: "Crypto", fx: "FX", future: "Future" };

/** "NASDAQ · Stock". */
export function describeListing(s: Pick<SymbolEntry, "exchange" | "type">): string {
  return [s.exchange, TYPE_LABEL[s.type] ?? s.type].filter(Boolean).join(" · ");
}
