// useMarketData: quotes for a watchlist, in real time or by polling, for the dashboard.
//
// The feed itself is @stockfeed/client's StockfeedClient (clients/js): the socket, the
// 2/4/8 s backoff and the server's shutdown hint, resume with seq and epoch, dedup, gap
// snapshots, and the polling fallback (after 3 failed attempts: poll /api/quotes, keep
// trying the socket in the background, switch back when it opens; real time turned off:
// poll by choice). This hook is the React side only: one client for the page, the
// watchlist and the real-time toggle handed to it, and what the page shows — quotes batched
// into state at most once per `flushMs`, toasts on the switches, metrics once a second.
// The chart takes its bars from the client itself (`client`), with no render per bar.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { StockfeedClient, type ConnectionInfo, type Jitter } from "@stockfeed/client";
import { CloseCode } from "@stockfeed/client";
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
  token?: string | null;
  /** The socket's address (default: `/ws` on this page's host). */
  url?: string;
  pollIntervalMs?: number;
  /** While polling after a failure, how often the socket is tried again. */
  probeIntervalMs?: number;
  flushMs?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  jitter?: Jitter;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  WebSocketImpl?: typeof WebSocket;
}

export interface MarketMetrics {
  messagesPerSec: number;
  lastMessageAt: number | null;
  lastUpdateAt: number | null;
}

export interface MarketData {
  quotes: Record<string, Quote>;
  markets: Record<string, MarketStatus>;
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
  /** The page's one client: the chart retains its ticker's bars through it. */
  client: StockfeedClient;
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
  const {
    tickers,
    enableRealTime,
    token = null,
    url = "/ws",
    pollIntervalMs = 60_000,
    probeIntervalMs = 10_000,
    flushMs = 100,
    maxAttempts = 3,
    baseDelayMs,
    jitter,
    pingIntervalMs,
    pongTimeoutMs,
    WebSocketImpl,
  } = options;

  // One client for the page: a new one only when where or how to connect changes (the
  // functions among the options, jitter and WebSocketImpl, are taken from the first render).
  // The real-time wish it starts with; later changes go through setRealtime().
  const key = JSON.stringify([url, token, maxAttempts, baseDelayMs, pingIntervalMs, pongTimeoutMs, pollIntervalMs, probeIntervalMs]);
  const create = () =>
    new StockfeedClient(url, {
      token,
      maxAttempts,
      baseDelayMs,
      jitter,
      pingIntervalMs,
      pongTimeoutMs,
      WebSocket: WebSocketImpl,
      polling: { intervalMs: pollIntervalMs, probeIntervalMs },
      realtime: enableRealTime,
      httpUrl: "", // REST on this page's origin
    });
  const [held, setHeld] = useState(() => ({ key, client: create() }));
  if (held.key !== key) setHeld({ key, client: create() }); // React's "adjust state while rendering"
  const client = held.client;

  const [info, setInfo] = useState<ConnectionInfo>(client.connection);
  const [quotes, setQuotes] = useState<Record<string, Quote>>({});
  const [markets, setMarkets] = useState<Record<string, MarketStatus>>({});
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

  // The client's events: quotes batched into state, ticks to the chart, the rest as is.
  useEffect(() => {
    const flush = () => {
      flushTimer.current = null;
      if (pending.current.size === 0) return;
      const batch = Object.fromEntries(pending.current);
      pending.current.clear();
      setQuotes((q) => ({ ...q, ...batch }));
    };
    const offs = [
      client.on("message", (m) => {
        if (m.type === "price_update" || m.type === "snapshot") updates.current.count += 1;
      }),
      client.on("quote", (quote) => {
        pending.current.set(quote.ticker, quote);
        updates.current.lastAt = quote.receivedAt;
        if (flushTimer.current === null) flushTimer.current = setTimeout(flush, flushMs);
      }),
      client.on("market", () => setMarkets({ ...client.markets })),
      client.on("tickerError", (e) => setTickerErrors((errs) => ({ ...errs, [e.ticker]: e.message }))),
      // Giving up on the socket means polling, said out loud; so does coming back.
      client.on("state", (next, prev) => {
        setInfo(next);
        if (next.fallback && !prev.fallback) {
          toast(
            "warn",
            refused(next)
              ? `WebSocket refused (${next.closeCode}: token missing, expired or not allowed): polling`
              : `WebSocket lost after ${maxAttempts} attempts: falling back to polling the REST API every ${Math.round(pollIntervalMs / 1000)} s`,
          );
        } else if (prev.fallback && next.state === "connected") {
          toast("ok", "Real-time restored: back on WebSocket");
        }
      }),
    ];
    void client.connect().catch(() => {
      /* the state says why (refused, gave up); polling takes over */
    });
    return () => {
      for (const off of offs) off();
      client.close();
      if (flushTimer.current !== null) clearTimeout(flushTimer.current);
      flushTimer.current = null;
    };
  }, [client, flushMs, maxAttempts, pollIntervalMs, toast]);

  useEffect(() => {
    client.setRealtime(enableRealTime);
  }, [client, enableRealTime]);

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
    () => ({ state, attempt: info.attempt, maxAttempts, reconnectCount: info.reconnects, latencyMs: info.latencyMs }),
    [state, info.attempt, maxAttempts, info.reconnects, info.latencyMs],
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
    client,
  };
}
