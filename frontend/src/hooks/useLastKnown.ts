// The last known quotes (lib/lastKnown.ts): read once when the page opens, shown for tickers
// the feed has not quoted yet, and the feed's quotes written back at most every `everyMs`
// (and when the page is hidden), so the next visit, online or not, starts from them.

import { useEffect, useMemo, useRef, useState } from "react";
import { loadLastKnown, saveLastKnown, type LastKnown } from "../lib/lastKnown";
import type { Quote } from "../lib/types";

export function useLastKnown(
  live: Readonly<Record<string, Quote>>,
  tickers: readonly string[],
  everyMs = 2000,
): { quotes: Record<string, Quote>; knownOnly: (t: string) => boolean; savedAt: number | null } {
  const [kept] = useState<LastKnown | null>(loadLastKnown);
  const quotes = useMemo(() => {
    if (!kept) return live as Record<string, Quote>;
    const out: Record<string, Quote> = {};
    for (const t of tickers) {
      const q = live[t] ?? kept.quotes[t];
      if (q) out[t] = q;
    }
    return { ...out, ...live };
  }, [kept, live, tickers]);

  const latest = useRef({ quotes, tickers });
  useEffect(() => {
    latest.current = { quotes, tickers };
  });
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const write = useRef(() => {
    timer.current = null;
    const { quotes: q, tickers: ts } = latest.current;
    const keep: Record<string, Quote> = {};
    for (const t of ts) if (q[t]) keep[t] = q[t];
    if (Object.keys(keep).length > 0) saveLastKnown(keep, Date.now());
  });
  useEffect(() => {
    if (timer.current === null && Object.keys(live).length > 0) timer.current = setTimeout(write.current, everyMs);
  }, [live, everyMs]);
  useEffect(() => {
    const onHide = () => {
      if (document.visibilityState === "hidden") write.current();
    };
    document.addEventListener("visibilitychange", onHide);
    return () => {
      document.removeEventListener("visibilitychange", onHide);
      if (timer.current !== null) clearTimeout(timer.current);
    };
  }, []);

  const knownOnly = (t: string) => live[t] === undefined && kept?.quotes[t] !== undefined;
  return { quotes, knownOnly, savedAt: kept?.savedAt ?? null };
}
