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

export async function searchSymbols(q: string, token: string | null, signal?: AbortSignal, limit = SEARCH_LIMIT): Promise<SymbolEntry[]> {
  const body = await getJson<{ symbols?: SymbolEntry[] }>(`/api/symbols?q=${encodeURIComponent(q)}&limit=${limit}`, token, signal);
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
