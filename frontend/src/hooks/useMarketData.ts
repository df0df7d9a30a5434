// useMarketData: quotes for a watchlist, in real time or by polling, for the dashboard.
//
// The feed is the page's StockfeedClient (hooks/useFeedClient.ts, handed down by
// components/FeedProvider.tsx), read through @stockfeed/client/react: useConnection for the
// connection, useMarkets for the sessions, useStockfeedEvent for every message with no
// render. This hook is what the page shows on top: the watchlist and the real-time toggle
// handed to the client, quotes batched into state at most once per `flushMs`, toasts on the
// switches, metrics once a second. The chart takes its bars from the client itself, with no
// render per bar.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { CloseCode, type ConnectionInfo } from "@stockfeed/client";
import { useConnection, useMarkets, useStockfeed, useStockfeedEvent } from "@stockfeed/client/react";
import type { MarketStatus, Quote, WsState } from "../lib/types";

export type { WsState } from "../lib/types";

export type Mode = "realtime" | "polling";

export interface Toast {
  id: number;
  kind: "info" | "warn" | "ok";
  text: string;
}

export interface MarketDataOptions {
  tickers: string[];
  enableRealTime: boolean;
  /** How often polling fetches (the client's option; the fallback's toast says it). */
  pollIntervalMs?: number;
  flushMs?: number;
}

export interface MarketMetrics {
  messagesPerSec: number;
  lastMessageAt: number | null;
  lastUpdateAt: number | null;
}

export interface MarketData {
  quotes: Record<string, Quote>;
  markets: Readonly<Record<string, MarketStatus>>;
  mode: Mode;
  /** Polling because the socket failed (not by the user's choice). */
  fallback: boolean;
  connection: {
    state: WsState;
    attempt: number;
    maxAttempts: number;
    reconnectCount: number;
    latencyMs: number | null;
  };
  metrics: MarketMetrics;
  tickerErrors: Record<string, string>;
  /** The server refused our token (or its absence): what it said. */
  authError: string | null;
  toasts: Toast[];
  dismissToast: (id: number) => void;
}

const EMPTY_METRICS: MarketMetrics = { messagesPerSec: 0, lastMessageAt: null, lastUpdateAt: null };

/** The socket's state as the dashboard names it (the client says `polling` for both the
 * fallback and the user's choice; the page tells them apart with `fallback`). */
function wsStateOf(info: ConnectionInfo): WsState {
  switch (info.state) {
    case "polling":
      return info.fallback ? "error" : "closed";
    default:
      return info.state;
  }
}

const refused = (info: ConnectionInfo) => info.closeCode === CloseCode.unauthorized || info.closeCode === CloseCode.forbidden;

export function useMarketData(options: MarketDataOptions): MarketData {
  const { tickers, enableRealTime, pollIntervalMs = 60_000, flushMs = 100 } = options;
  const client = useStockfeed();
  const info = useConnection();
  const markets = useMarkets();
  const [quotes, setQuotes] = useState<Record<string, Quote>>({});
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [metrics, setMetrics] = useState<MarketMetrics>(EMPTY_METRICS);
  const [tickerErrors, setTickerErrors] = useState<Record<string, string>>({});

  // Everything the message path touches lives outside state: no render per message.
  const pending = useRef(new Map<string, Quote>());
  const flushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const updates = useRef({ count: 0, lastAt: null as number | null });
  const toastId = useRef(0);

  const toast = useCallback((kind: Toast["kind"], text: string) => {
    toastId.current += 1;
    const id = toastId.current;
    setToasts((ts) => [...ts.slice(-4), { id, kind, text }]);
  }, []);
  const dismissToast = useCallback((id: number) => setToasts((ts) => ts.filter((t) => t.id !== id)), []);

  // The watchlist: subscribe the new, unsubscribe the removed (the client sends the frames,
  // now or on the next connection; while polling it fetches the new ones at once).
  const tickerKey = tickers.join(",");
  useEffect(() => {
    client.setTickers(tickerKey ? tickerKey.split(",") : []);
  }, [client, tickerKey]);

  useEffect(() => {
    client.setRealtime(enableRealTime);
  }, [client, enableRealTime]);

  // Quotes batched into state; the flush still due when the client goes is dropped.
  const flush = useCallback(() => {
    flushTimer.current = null;
    if (pending.current.size === 0) return;
    const batch = Object.fromEntries(pending.current);
    pending.current.clear();
    setQuotes((q) => ({ ...q, ...batch }));
  }, []);
  useEffect(
    () => () => {
      if (flushTimer.current !== null) clearTimeout(flushTimer.current);
      flushTimer.current = null;
    },
    [client],
  );
  useStockfeedEvent("message", (m) => {
    if (m.type === "price_update" || m.type === "snapshot") updates.current.count += 1;
  });
  useStockfeedEvent("quote", (quote) => {
    pending.current.set(quote.ticker, quote);
    updates.current.lastAt = quote.receivedAt;
    if (flushTimer.current === null) flushTimer.current = setTimeout(flush, flushMs);
  });
  useStockfeedEvent("tickerError", (e) => setTickerErrors((errs) => ({ ...errs, [e.ticker]: e.message })));
  // Giving up on the socket means polling, said out loud; so does coming back.
  useStockfeedEvent("state", (next, prev) => {
    if (next.fallback && !prev.fallback) {
      toast(
        "warn",
        refused(next)
          ? `WebSocket refused (${next.closeCode}: token missing, expired or not allowed): polling`
          : `WebSocket lost after ${next.maxAttempts} attempts: falling back to polling the REST API every ${Math.round(pollIntervalMs / 1000)} s`,
      );
    } else if (prev.fallback && next.state === "connected") {
      toast("ok", "Real-time restored: back on WebSocket");
    }
  });

  // Once a second: messages per second and last-message times (one render, not per tick).
  useEffect(() => {
    let prevCount = updates.current.count;
    const timer = setInterval(() => {
      const count = updates.current.count;
      const next: MarketMetrics = {
        messagesPerSec: count - prevCount,
        lastMessageAt: client.stats().lastMessageAt,
        lastUpdateAt: updates.current.lastAt,
      };
      prevCount = count;
      setMetrics((m) =>
        m.messagesPerSec === next.messagesPerSec && m.lastMessageAt === next.lastMessageAt && m.lastUpdateAt === next.lastUpdateAt ? m : next,
      );
    }, 1000);
    return () => clearInterval(timer);
  }, [client]);

  const state = wsStateOf(info);
  const connection = useMemo(
    () => ({ state, attempt: info.attempt, maxAttempts: info.maxAttempts, reconnectCount: info.reconnects, latencyMs: info.latencyMs }),
    [state, info.attempt, info.maxAttempts, info.reconnects, info.latencyMs],
  );

  return {
    quotes,
    markets,
    mode: info.state === "polling" || !enableRealTime ? "polling" : "realtime",
    fallback: info.fallback,
    connection,
    metrics,
    tickerErrors,
    authError: info.authError,
    toasts,
    dismissToast,
  };
}
