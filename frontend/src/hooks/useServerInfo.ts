// The feed's source (for the "Simulated data" badge) from /api/ws/health, refreshed
// every 30 s; an unreachable server keeps the last answer.

import { useEffect, useState } from "react";
import { getJson } from "../lib/api";

export interface ServerInfo {
  source: string | null; // active source: sim, yfinance, replay, none
  simulated: boolean;
  sourceStale: boolean;
  status: string | null; // ok | degraded
  problems: string[];
}

interface Health {
  status?: string;
  problems?: string[];
  source?: { active?: string | null; simulated?: boolean; stale?: boolean };
}

const UNKNOWN: ServerInfo = { source: null, simulated: false, sourceStale: false, status: null, problems: [] };

export function useServerInfo(token: string | null, refreshMs = 30_000): ServerInfo {
  const [info, setInfo] = useState<ServerInfo>(UNKNOWN);
  useEffect(() => {
    const ctl = new AbortController();
    const load = async () => {
      try {
        const h = await getJson<Health>("/api/ws/health", token, ctl.signal);
        setInfo({
          source: h.source?.active ?? null,
          simulated: h.source?.simulated === true,
          sourceStale: h.source?.stale === true,
          status: h.status ?? null,
          problems: h.problems ?? [],
        });
      } catch {
        /* keep what we knew */
      }
    };
    void load();
    const timer = setInterval(() => void load(), refreshMs);
    return () => {
      ctl.abort();
      clearInterval(timer);
    };
  }, [token, refreshMs]);
  return info;
}
