// The last quotes seen, kept in localStorage so that a page opened offline (the service
// worker, public/sw.js, serves the app shell) or before the feed answers shows the last known
// prices, marked as such. Read defensively: anything malformed is dropped.

import type { Quote } from "./types";

const KEY = "stockfeed.last-quotes";

export interface LastKnown {
  savedAt: number;
  quotes: Record<string, Quote>;
}

function isQuote(v: unknown): v is Quote {
  if (typeof v !== "object" || v === null) return false;
  const q = v as Partial<Quote>;
  return typeof q.ticker === "string" && typeof q.seq === "number" && typeof q.timestamp === "number" && typeof q.data?.price === "number";
}

export function parseLastKnown(raw: string | null): LastKnown | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as { savedAt?: unknown; quotes?: unknown };
    if (typeof v.savedAt !== "number" || typeof v.quotes !== "object" || v.quotes === null) return null;
    const quotes: Record<string, Quote> = {};
    for (const [t, q] of Object.entries(v.quotes as Record<string, unknown>)) if (isQuote(q) && q.ticker === t) quotes[t] = q;
    return { savedAt: v.savedAt, quotes };
  } catch {
    return null;
  }
}

export function loadLastKnown(): LastKnown | null {
  try {
    return parseLastKnown(localStorage.getItem(KEY));
  } catch {
    return null;
  }
}

export function saveLastKnown(quotes: Readonly<Record<string, Quote>>, now: number): void {
  try {
    localStorage.setItem(KEY, JSON.stringify({ savedAt: now, quotes }));
  } catch {
    /* quota or disabled: nothing kept for next time */
  }
}
