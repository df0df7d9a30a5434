// Connection numbers for whoever wonders whether the prices are live.

import { formatAge, formatClock } from "../lib/format";
import type { Mode } from "../hooks/useMarketData";
import type { WsState } from "../hooks/useWebSocket";

interface Props {
  latencyMs: number | null;
  reconnectCount: number;
  messagesPerSec: number;
  mode: Mode;
  state: WsState;
  lastUpdateAt: number | null;
  lastMessageAt: number | null;
  now: number;
}

export function WebSocketMetrics(p: Props) {
  const rows: [string, string, string][] = [
    ["Latency", p.latencyMs === null ? "—" : `${Math.round(p.latencyMs)} ms`, "latency"],
    ["Msgs/s", String(p.messagesPerSec), "rate"],
    ["Reconnects", String(p.reconnectCount), "reconnects"],
    ["Mode", p.mode === "realtime" ? "real-time" : "polling", "mode"],
    ["Socket", p.state, "socket"],
    ["Last msg", p.lastMessageAt === null ? "—" : `${formatAge(p.now - p.lastMessageAt)} ago`, "last-message"],
    [
      "Last update",
      p.lastUpdateAt === null ? "—" : `${formatClock(p.lastUpdateAt)} (${formatAge(p.now - p.lastUpdateAt)})`,
      "last-update",
    ],
  ];
  return (
    <section className="panel metrics" data-testid="ws-metrics" aria-label="Connection metrics">
      <div className="panel-head">
        <h2>Connection</h2>
      </div>
      <dl>
        {rows.map(([k, v, id]) => (
          <div key={id} className={id === "last-update" ? "m-row wide" : "m-row"}>
            <dt>{k}</dt>
            <dd data-metric={id}>{v}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}
