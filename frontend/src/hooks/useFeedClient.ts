// The page's one StockfeedClient (@stockfeed/client, clients/js): the socket, the 2/4/8 s
// backoff and the server's shutdown hint, resume with seq and epoch, dedup, gap snapshots,
// and the polling fallback (after `maxAttempts` failed attempts: poll /api/quotes, keep
// trying the socket in the background, switch back when it opens; real time turned off:
// poll by choice). A new client only when where or how to connect changes (the functions
// among the options, jitter and WebSocketImpl, are taken from the first render).
//
// Started in an effect of the component that calls this hook: React runs the effects of the
// components under it first, so the watchlist and the real-time choice (useMarketData) are
// known when it connects, and a page that starts polling by choice never opens a socket.
// Closed when the component goes or the client is replaced.

import { useEffect, useState } from "react";
import { StockfeedClient, type Jitter } from "@stockfeed/client";

export interface FeedOptions {
  token?: string | null;
  /** The socket's address (default: `/ws` on this page's host). */
  url?: string;
  pollIntervalMs?: number;
  /** While polling after a failure, how often the socket is tried again. */
  probeIntervalMs?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  jitter?: Jitter;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  WebSocketImpl?: typeof WebSocket;
}

export function useFeedClient(options: FeedOptions): StockfeedClient {
  const {
    token = null,
    url = "/ws",
    pollIntervalMs = 60_000,
    probeIntervalMs = 10_000,
    maxAttempts = 3,
    baseDelayMs,
    jitter,
    pingIntervalMs,
    pongTimeoutMs,
    WebSocketImpl,
  } = options;
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
      httpUrl: "", // REST on this page's origin
    });
  const [held, setHeld] = useState(() => ({ key, client: create() }));
  if (held.key !== key) setHeld({ key, client: create() }); // React's "adjust state while rendering"
  const client = held.client;

  useEffect(() => {
    void client.connect().catch(() => {
      /* the state says why (refused, gave up); polling takes over */
    });
    return () => client.close();
  }, [client]);

  return client;
}
