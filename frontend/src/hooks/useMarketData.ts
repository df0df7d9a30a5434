// useMarketData: quotes for a watchlist, in real time over the one multiplexed socket or
// by polling /api/quotes, with the fallback between them.
//
// - Real-time: subscribe on every open; on a reconnect, `resume` from the last seq (and
//   epoch) seen per ticker, so the server replays what was missed (docs/protocol.md). That
//   bookkeeping (seq, epochs, dedup, resume, held tickers) is lib/feedState.ts; this hook
//   keeps the React side: state, timers, toasts, metrics.
// - After the socket gives up (3 failed reconnects): poll, say so in a toast, and keep
//   trying the socket in the background; when it opens, switch back with a toast.
// - On every switch (and at start) the latest quotes are fetched over REST, so nothing
//   published while switching is missed.
// Quotes reach React state at most once per `flushMs`; the chart hears every tick through
// `subscribeTicks` callbacks instead.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, getJson, wsUrl as defaultWsUrl } from "../lib/api";
import type { Jitter } from "../lib/backoff";
import { FeedState, type FeedChange } from "../lib/feedState";
import { CloseCode } from "../lib/protocol";
import type { MarketStatus, PriceMessage, Quote, ServerMessage, Tick } from "../lib/types";
import { useWebSocket, type WsState } from "./useWebSocket";

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
  subscribeTicks: (fn: (tick: Tick) => void) => () => void;
}

type QuotesResponse = Record<string, PriceMessage | null>;
type MarketResponse = Record<string, MarketStatus | null>;

const EMPTY_METRICS: MarketMetrics = { messagesPerSec: 0, lastMessageAt: null, lastUpdateAt: null };

export function useMarketData(options: MarketDataOptions): MarketData {
  const {
    tickers,
    enableRealTime,
    token = null,
    pollIntervalMs = 60_000,
    probeIntervalMs = 10_000,
    flushMs = 100,
    maxAttempts = 3,
  } = options;
  const url = options.url ?? defaultWsUrl(token);

  const [quotes, setQuotes] = useState<Record<string, Quote>>({});
  const [markets, setMarkets] = useState<Record<string, MarketStatus>>({});
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [metrics, setMetrics] = useState<MarketMetrics>(EMPTY_METRICS);
  const [tickerErrors, setTickerErrors] = useState<Record<string, string>>({});
  const [restAuthError, setRestAuthError] = useState<string | null>(null);

  // Everything the message path touches lives outside state: no render per message.
  const [feed] = useState(() => new FeedState());
  const pending = useRef(new Map<string, Quote>());
  const flushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const tickListeners = useRef(new Set<(t: Tick) => void>());
  const updates = useRef({ count: 0, lastAt: null as number | null });
  const toastId = useRef(0);
  const tickersRef = useRef(tickers);

  useEffect(() => {
    tickersRef.current = tickers;
  });

  const toast = useCallback((kind: Toast["kind"], text: string) => {
    toastId.current += 1;
    const id = toastId.current;
    setToasts((ts) => [...ts.slice(-4), { id, kind, text }]);
  }, []);
  const dismissToast = useCallback((id: number) => setToasts((ts) => ts.filter((t) => t.id !== id)), []);

  const flush = useCallback(() => {
    flushTimer.current = null;
    if (pending.current.size === 0) return;
    const batch = Object.fromEntries(pending.current);
    pending.current.clear();
    setQuotes((q) => ({ ...q, ...batch }));
  }, []);

  /** A quote the feed took (socket or REST): to state (batched) and to the tick listeners. */
  const deliver = useCallback(
    (change: FeedChange) => {
      if (change.kind !== "quote") return;
      const { quote, tick } = change;
      pending.current.set(quote.ticker, quote);
      updates.current.lastAt = quote.receivedAt;
      if (flushTimer.current === null) flushTimer.current = setTimeout(flush, flushMs);
      if (tick) for (const fn of tickListeners.current) fn(tick);
    },
    [flush, flushMs],
  );

  const onMessage = useCallback(
    (msg: ServerMessage) => {
      if (msg.type === "price_update" || msg.type === "snapshot") updates.current.count += 1;
      const change = feed.receive(msg);
      switch (change.kind) {
        case "quote":
          deliver(change);
          break;
        case "market": {
          const { status } = change;
          setMarkets((m) => ({ ...m, [status.market]: status }));
          break;
        }
        case "ticker_error": {
          const { ticker, message } = change;
          setTickerErrors((e) => ({ ...e, [ticker]: message }));
          break;
        }
        default:
          break;
      }
    },
    [feed, deliver],
  );

  const fetchQuotes = useCallback(
    async (signal?: AbortSignal) => {
      const names = tickersRef.current;
      if (names.length === 0) return;
      const list = names.map(encodeURIComponent).join(",");
      try {
        const body = await getJson<QuotesResponse>(`/api/quotes?tickers=${list}`, token, signal);
        for (const msg of Object.values(body)) if (msg) deliver(feed.receivePolled(msg));
        setRestAuthError(null);
      } catch (e) {
        // Unreachable: the connection status says so. Refused: say why.
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) setRestAuthError(e.message);
      }
      try {
        const body = await getJson<MarketResponse>(`/api/market-status?tickers=${list}`, token, signal);
        const next: Record<string, MarketStatus> = {};
        for (const s of Object.values(body)) if (s) next[s.market] = s;
        if (Object.keys(next).length > 0) setMarkets((m) => ({ ...m, ...next }));
      } catch {
        /* an older server without the endpoint: the socket's market_status only */
      }
    },
    [feed, deliver, token],
  );

  const ws = useWebSocket({
    url,
    enabled: enableRealTime,
    maxAttempts,
    baseDelayMs: options.baseDelayMs,
    jitter: options.jitter,
    pingIntervalMs: options.pingIntervalMs,
    pongTimeoutMs: options.pongTimeoutMs,
    WebSocketImpl: options.WebSocketImpl,
    onMessage,
    onOpen: () => {
      const frame = feed.connected(tickersRef.current);
      if (frame) ws.send(frame);
    },
    // Giving up on the socket means polling, said out loud; so does coming back.
    onStateChange: (prev, next, snap) => {
      if (next === "error" && (snap.closeCode === CloseCode.unauthorized || snap.closeCode === CloseCode.forbidden)) {
        toast("warn", `WebSocket refused (${snap.closeCode}: token missing, expired or not allowed): polling`);
      } else if (next === "error") {
        toast("warn", `Connection lost after ${maxAttempts} attempts: polling every ${Math.round(pollIntervalMs / 1000)} s`);
      } else if (prev === "error" && next === "connected") {
        toast("ok", "Real-time restored: back on WebSocket");
      }
    },
  });
  const { state, send, retry } = ws;
  // Polling because the socket gave up (it keeps being retried in the background).
  const fallback = enableRealTime && state === "error";

  const mode: Mode = enableRealTime && !fallback ? "realtime" : "polling";

  // Every switch, and the start: the latest quotes over REST. While polling, on a timer.
  const tickerKey = tickers.join(",");
  useEffect(() => {
    const ctl = new AbortController();
    // A network request (its results set state later, when they arrive).
    // eslint-disable-next-line react-hooks/set-state-in-effect
    void fetchQuotes(ctl.signal);
    if (mode !== "polling") return () => ctl.abort();
    const timer = setInterval(() => void fetchQuotes(ctl.signal), pollIntervalMs);
    return () => {
      ctl.abort();
      clearInterval(timer);
    };
  }, [mode, pollIntervalMs, fetchQuotes, tickerKey]);

  // While in fallback, keep knocking on the socket.
  useEffect(() => {
    if (!fallback || !enableRealTime) return;
    const timer = setInterval(() => retry(), probeIntervalMs);
    return () => clearInterval(timer);
  }, [fallback, enableRealTime, probeIntervalMs, retry]);

  // Watchlist edits while connected: subscribe the new, unsubscribe the removed.
  useEffect(() => {
    if (state !== "connected") return;
    const { subscribe, unsubscribe } = feed.changes(tickerKey ? tickerKey.split(",") : []);
    if (subscribe && send(subscribe)) feed.applied(subscribe);
    if (unsubscribe && send(unsubscribe)) feed.applied(unsubscribe);
  }, [tickerKey, state, send, feed]);

  // Once a second: messages per second and last-message times (one render, not per tick).
  useEffect(() => {
    let prevCount = updates.current.count;
    const timer = setInterval(() => {
      const count = updates.current.count;
      const next: MarketMetrics = {
        messagesPerSec: count - prevCount,
        lastMessageAt: ws.stats().lastMessageAt,
        lastUpdateAt: updates.current.lastAt,
      };
      prevCount = count;
      setMetrics((m) =>
        m.messagesPerSec === next.messagesPerSec &&
        m.lastMessageAt === next.lastMessageAt &&
        m.lastUpdateAt === next.lastUpdateAt
          ? m
          : next,
      );
    }, 1000);
    return () => clearInterval(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- ws.stats is stable
  }, []);

  useEffect(
    () => () => {
      if (flushTimer.current !== null) clearTimeout(flushTimer.current);
    },
    [],
  );

  const subscribeTicks = useCallback((fn: (t: Tick) => void) => {
    tickListeners.current.add(fn);
    return () => {
      tickListeners.current.delete(fn);
    };
  }, []);

  const wsRefused = ws.closeCode === CloseCode.unauthorized || ws.closeCode === CloseCode.forbidden;
  const authError = restAuthError ?? (wsRefused ? `WebSocket refused (${ws.closeCode})` : null);

  const connection = useMemo(
    () => ({
      state: ws.state,
      attempt: ws.attempt,
      maxAttempts,
      reconnectCount: ws.reconnectCount,
      latencyMs: ws.latencyMs,
    }),
    [ws.state, ws.attempt, maxAttempts, ws.reconnectCount, ws.latencyMs],
  );

  return {
    quotes,
    markets,
    mode,
    fallback,
    connection,
    metrics,
    tickerErrors,
    authError,
    toasts,
    dismissToast,
    subscribeTicks,
  };
}
