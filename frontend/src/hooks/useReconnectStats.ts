// Reconnections and failed attempts, told apart. The socket counts every reconnect attempt it
// makes (`reconnectCount`); a user asks two other things: how often did the feed come back
// (reconnections), and how many tries did not open (failed attempts). Both are read from the
// socket's state changes: reconnecting -> connected is a reconnection; reconnecting -> error,
// or attempt k -> k+1 while reconnecting, is a failure.

import { useState } from "react";

export interface ReconnectStats {
  reconnections: number;
  failedAttempts: number;
  /** The latency figure belongs to the connection that is open now. */
  latencyCurrent: boolean;
}

interface Track {
  state: string;
  attempt: number;
  lost: boolean;
  reconnections: number;
  failed: number;
}

export function useReconnectStats(state: string, attempt: number): ReconnectStats {
  const [t, setT] = useState<Track>({ state, attempt, lost: false, reconnections: 0, failed: 0 });
  if (t.state !== state || t.attempt !== attempt) {
    // Derived from the previous render's values (React's "store information from previous
    // renders" pattern): no effect, no extra commit.
    const next: Track = { ...t, state, attempt };
    const tried = t.state === "reconnecting" || t.state === "connecting";
    if (tried && (state === "error" || (state === "reconnecting" && attempt > t.attempt))) {
      next.failed += 1;
    }
    if (state === "reconnecting" || state === "error") next.lost = true;
    if (state === "connected" && t.lost) {
      next.reconnections += 1;
      next.lost = false;
    }
    if (state === "closed") next.lost = false; // turned off by the user: not a loss
    setT(next);
  }
  return { reconnections: t.reconnections, failedAttempts: t.failed, latencyCurrent: state === "connected" };
}
