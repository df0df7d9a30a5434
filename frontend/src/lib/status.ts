// What the connection dot says: a colour, a state name (the `data-state` attribute) and a
// sentence for the tooltip and screen readers (never colour alone).

import type { WsState } from "./types";
import { formatAge } from "./format";

export type DotColor = "green" | "yellow" | "red";
export type DotState = "connected" | "connecting" | "reconnecting" | "polling" | "disconnected";

export interface ConnectionInput {
  state: WsState;
  attempt: number;
  maxAttempts: number;
  reconnectCount: number;
  latencyMs: number | null;
  realtimeEnabled: boolean;
  fallback: boolean;
  lastMessageAgeMs: number | null;
}

export interface ConnectionView {
  color: DotColor;
  state: DotState;
  title: string; // short, shown next to the dot
  detail: string; // full sentence: tooltip and aria-label
}

export function connectionView(c: ConnectionInput): ConnectionView {
  let color: DotColor;
  let state: DotState;
  let title: string;
  if (!c.realtimeEnabled) {
    [color, state, title] = ["red", "polling", "Polling (real-time off)"];
  } else if (c.fallback) {
    [color, state, title] = ["red", "polling", "Polling (WebSocket down, retrying)"];
  } else if (c.state === "connected") {
    [color, state, title] = ["green", "connected", "Live (WebSocket)"];
  } else if (c.state === "reconnecting") {
    [color, state, title] = ["yellow", "reconnecting", `Reconnecting (attempt ${c.attempt} of ${c.maxAttempts})`];
  } else if (c.state === "connecting") {
    [color, state, title] = ["yellow", "connecting", "Connecting"];
  } else {
    [color, state, title] = ["red", "disconnected", "Disconnected"];
  }
  const parts = [
    title,
    `latency ${c.latencyMs === null ? "—" : `${Math.round(c.latencyMs)} ms`}`,
    `${c.reconnectCount} reconnect${c.reconnectCount === 1 ? "" : "s"}`,
    `last message ${c.lastMessageAgeMs === null ? "never" : `${formatAge(c.lastMessageAgeMs)} ago`}`,
  ];
  return { color, state, title, detail: `Connection: ${parts.join(", ")}` };
}

/**
 * A quote is stale when the server says so, or when, with prices expected to move (market
 * in session, or a simulated/24-7 feed), it is older than `expectedMs`.
 */
export function isStale(
  q: { stale: boolean; timestamp: number },
  now: number,
  expectedMs: number,
  pricesExpected: boolean,
): boolean {
  if (q.stale) return true;
  return pricesExpected && now - q.timestamp > expectedMs;
}
