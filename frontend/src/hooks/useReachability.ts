// Whether the server answers over HTTP, probed while the socket is not carrying the feed.
// useMarketData's polls keep their failures to themselves; this probe is what tells
// "polling" (REST gets through) from "server unreachable" (nothing does).

import { useEffect, useState } from "react";

export interface Reachability {
  /** The last probe's answer; null before the first one (or while not probing). */
  reachable: boolean | null;
  /** Epoch ms of the last answered probe. */
  lastOkAt: number | null;
}

export function useReachability(opts: {
  active: boolean;
  periodMs: number;
  token: string | null;
  path?: string;
  timeoutMs?: number;
}): Reachability {
  const { active, periodMs, token, path = "/api/ws/health", timeoutMs = 4000 } = opts;
  const [state, setState] = useState<Reachability>({ reachable: null, lastOkAt: null });
  useEffect(() => {
    if (!active) return;
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | null = null;
    const probe = async () => {
      const headers: Record<string, string> = {};
      if (token) headers.Authorization = `Bearer ${token}`;
      let ok = false;
      try {
        const signal = AbortSignal.any([ctl.signal, AbortSignal.timeout(timeoutMs)]);
        // Any answer from the server counts (a 401 is a server that answers).
        const res = await fetch(path, { headers, signal, cache: "no-store" });
        ok = res.status < 500;
      } catch {
        ok = false;
      }
      if (ctl.signal.aborted) return;
      setState((s) => ({ reachable: ok, lastOkAt: ok ? Date.now() : s.lastOkAt }));
      timer = setTimeout(() => void probe(), periodMs);
    };
    void probe();
    return () => {
      ctl.abort();
      if (timer !== null) clearTimeout(timer);
      // The next spell of probing starts from "not known yet".
      setState((s) => (s.reachable === null ? s : { ...s, reachable: null }));
    };
  }, [active, periodMs, token, path, timeoutMs]);
  return state;
}
