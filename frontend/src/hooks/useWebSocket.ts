// useWebSocket: one socket for the page's life (or while `enabled`), reconnecting with
// backoff. Incoming messages go to listeners registered with `subscribe` (and the
// `onMessage` option) through refs: a burst of ticks never becomes a burst of renders.
// Only connection-level changes (state, attempt, latency) are React state.

import { useCallback, useEffect, useRef, useState } from "react";
import { SocketController, type SocketOptions, type SocketSnapshot } from "../lib/socket";
import type { ServerMessage } from "../lib/types";
import type { WsState } from "../lib/socket";

export type { WsState } from "../lib/socket";

export type Listener = (msg: ServerMessage, raw: string) => void;

export interface UseWebSocketOptions extends SocketOptions {
  enabled?: boolean;
  onMessage?: Listener;
  onOpen?: (reconnected: boolean) => void;
  /** Called on every state change, from the socket's events (not from a render). */
  onStateChange?: (prev: WsState, next: WsState, snapshot: SocketSnapshot) => void;
}

export interface WebSocketHandle extends SocketSnapshot {
  send: (msg: object) => boolean;
  subscribe: (fn: Listener) => () => void;
  /** After giving up (state `error`): one more attempt now. */
  retry: () => void;
  /** Epoch ms of the last message and the number of messages so far (read, not state). */
  stats: () => { lastMessageAt: number | null; messages: number };
}

const CLOSED: SocketSnapshot = { state: "closed", attempt: 0, reconnectCount: 0, latencyMs: null };

export function useWebSocket(options: UseWebSocketOptions): WebSocketHandle {
  const { url, enabled = true } = options;
  const [snap, setSnap] = useState<SocketSnapshot>(CLOSED);
  const ctrl = useRef<SocketController | null>(null);
  const listeners = useRef(new Set<Listener>());
  const opts = useRef(options);
  // Counts carried over when the socket is recreated (toggle off and on, URL change).
  const carried = useRef({ reconnects: 0, messages: 0, lastAt: null as number | null });

  useEffect(() => {
    opts.current = options;
  });

  useEffect(() => {
    if (!enabled) return;
    const o = opts.current;
    const carry = carried.current;
    let prevState: WsState = "closed";
    const c = new SocketController(
      {
        url,
        maxAttempts: o.maxAttempts,
        baseDelayMs: o.baseDelayMs,
        jitter: o.jitter,
        pingIntervalMs: o.pingIntervalMs,
        pongTimeoutMs: o.pongTimeoutMs,
        settlePingMs: o.settlePingMs,
        WebSocketImpl: o.WebSocketImpl,
        now: o.now,
      },
      {
        onChange: (s) => {
          if (ctrl.current !== c) return;
          setSnap({ ...s, reconnectCount: s.reconnectCount + carry.reconnects });
          if (s.state !== prevState) {
            const before = prevState;
            prevState = s.state;
            opts.current.onStateChange?.(before, s.state, s);
          }
        },
        onMessage: (msg, raw) => {
          opts.current.onMessage?.(msg, raw);
          for (const fn of listeners.current) fn(msg, raw);
        },
        onOpen: (reconnected) => opts.current.onOpen?.(reconnected),
      },
    );
    ctrl.current = c;
    c.start();
    return () => {
      carry.reconnects += c.snapshot.reconnectCount;
      carry.messages += c.messages;
      carry.lastAt = c.lastMessageAt ?? carry.lastAt;
      ctrl.current = null;
      c.close();
      setSnap((s) => ({ ...CLOSED, reconnectCount: s.reconnectCount, latencyMs: s.latencyMs }));
    };
  }, [url, enabled]);

  const send = useCallback((msg: object) => ctrl.current?.send(msg) ?? false, []);
  const retry = useCallback(() => ctrl.current?.retry(), []);
  const subscribe = useCallback((fn: Listener) => {
    listeners.current.add(fn);
    return () => {
      listeners.current.delete(fn);
    };
  }, []);
  const stats = useCallback(() => {
    const c = ctrl.current;
    return {
      lastMessageAt: c?.lastMessageAt ?? carried.current.lastAt,
      messages: carried.current.messages + (c?.messages ?? 0),
    };
  }, []);

  return { ...snap, send, subscribe, retry, stats };
}
