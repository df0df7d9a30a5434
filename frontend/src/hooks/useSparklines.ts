// The watchlist's sparklines, through the page's one StockfeedClient: every listed ticker's
// 5m bars are retained (the latest session's closes, or the previous session's while the
// latest has only a few: lib/sparkline.ts sparkCloses), new ones a batch at a time (the server sends `bars`, then a `bar` per
// change; while polling the client fetches them over REST), and the latest session's closes
// are taken at most once per
// `flushMs` for the tickers whose bars changed: one state update a second for 50 rows, not
// one per tick. Nothing is retained while `active` is false (the dashboard paused: no
// socket, no polls); the lines drawn stay as they were.

import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { useStockfeed } from "@stockfeed/client/react";
import { sameSeries, sparkCloses, SPARK_INTERVAL, type SparkCloses } from "../lib/sparkline";

export type Sparks = Readonly<Record<string, SparkCloses>>;

/** New tickers retained per step, and the step: the server builds a new ticker's bars from
 * its history, at most 18 history answers in progress or waiting (docs/protocol.md, REST
 * limits); a whole watchlist at once would leave some sparklines without their history. */
export const SPARK_BATCH = 10;
export const SPARK_STEP_MS = 600;

export function useSparklines(tickers: readonly string[], active: boolean, flushMs = 1000): Sparks {
  const client = useStockfeed();
  const [sparks, setSparks] = useState<Sparks>({});
  const key = tickers.join(",");

  // Held while listed and active; new ones taken SPARK_BATCH at a time. Layout effects: they
  // run before useMarketData's (passive) ones, so a pause lets go of the bars before the
  // client switches (a switch fetches every ticker still wanted, once).
  const held = useRef(new Map<string, () => void>());
  useLayoutEffect(() => {
    const map = held.current;
    const want = new Set(active && key ? key.split(",") : []);
    for (const [t, release] of map) {
      if (want.has(t)) continue;
      release();
      map.delete(t);
    }
    const queue = [...want].filter((t) => !map.has(t));
    const admit = () => {
      for (const t of queue.splice(0, SPARK_BATCH)) map.set(t, client.retain(t, SPARK_INTERVAL));
      if (queue.length === 0) clearInterval(timer);
    };
    const timer = setInterval(admit, SPARK_STEP_MS);
    admit();
    return () => clearInterval(timer);
  }, [client, key, active]);
  useLayoutEffect(() => {
    const map = held.current;
    return () => {
      for (const release of map.values()) release();
      map.clear();
    };
  }, [client]);

  // The bars' listener lives with the watchlist it serves (a new list starts it afresh, with
  // every listed ticker to be read), so it is an effect's, not useStockfeedEvent's.
  useEffect(() => {
    const listed = new Set(key ? key.split(",") : []);
    const dirty = new Set(listed); // what the client holds already
    // A whole series (the first one, or afresh after a resume) is drawn at once; the `bar`
    // updates wait for the next flush.
    let soon: ReturnType<typeof setTimeout> | null = null;
    const off = client.on("bars", (ev) => {
      if (ev.interval !== SPARK_INTERVAL || !listed.has(ev.ticker)) return;
      dirty.add(ev.ticker);
      if (ev.whole && soon === null) {
        soon = setTimeout(() => {
          soon = null;
          flush();
        }, 50);
      }
    });
    let prune = true;
    const flush = () => {
      if (dirty.size === 0 && !prune) return;
      const batch = [...dirty];
      const dropGone = prune;
      dirty.clear();
      prune = false;
      setSparks((prev) => {
        let next: Record<string, SparkCloses> | null = null;
        if (dropGone) {
          for (const t of Object.keys(prev)) {
            if (listed.has(t)) continue;
            next ??= { ...prev };
            delete next[t];
          }
        }
        for (const t of batch) {
          const closes = sparkCloses(client.bars(t, SPARK_INTERVAL));
          if (sameSeries(prev[t], closes) || (closes.length === 0 && prev[t])) continue;
          next ??= { ...prev };
          next[t] = closes;
        }
        return next ?? prev;
      });
    };
    const first = setTimeout(flush, 0);
    const timer = setInterval(flush, flushMs);
    return () => {
      off();
      clearTimeout(first);
      if (soon !== null) clearTimeout(soon);
      clearInterval(timer);
    };
  }, [client, key, flushMs]);

  return sparks;
}
