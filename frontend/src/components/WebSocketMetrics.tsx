// Connection numbers for whoever wonders whether the prices are live, each saying what it
// counts: reconnections (the feed came back) apart from failed attempts (a try that did not
// open), and a latency only for the connection that is open now.

import { formatAge } from "../lib/format";
import type { FeedStatusView } from "../lib/feedStatus";
import { formatTime, type Zone } from "../lib/timezone";

interface Props {
  status: FeedStatusView;
  latencyMs: number | null;
  latencyCurrent: boolean;
  reconnections: number;
  failedAttempts: number;
  messagesPerSec: number;
  lastUpdateAt: number | null;
  lastMessageAt: number | null;
  now: number;
  zone: Zone;
}

export function WebSocketMetrics(p: Props) {
  const latency =
    p.latencyCurrent && p.latencyMs !== null
      ? `${Math.round(p.latencyMs)} ms`
      : p.latencyMs !== null
        ? `— (was ${Math.round(p.latencyMs)} ms)`
        : "—";
  const rows: [string, string, string][] = [
    ["Status", p.status.title, "status"],
    ["Latency", latency, "latency"],
    ["Msgs/s", p.status.flowing ? String(p.messagesPerSec) : "0", "rate"],
    ["Reconnections", String(p.reconnections), "reconnections"],
    ["Failed attempts", String(p.failedAttempts), "failed-attempts"],
    ["Last msg", p.lastMessageAt === null ? "—" : `${formatAge(p.now - p.lastMessageAt)} ago`, "last-message"],
    [
      "Last data",
      p.lastUpdateAt === null ? "—" : `${formatTime(p.lastUpdateAt, p.zone)} (${formatAge(p.now - p.lastUpdateAt)} ago)`,
      "last-update",
    ],
  ];
  return (
    <section className="panel metrics" data-testid="ws-metrics" aria-labelledby="ws-title" tabIndex={-1} id="connection-details">
      <div className="panel-head">
        <h2 id="ws-title">Connection</h2>
      </div>
      <dl>
        {rows.map(([k, v, id]) => (
          <div key={id} className={id === "last-update" || id === "status" ? "m-row wide" : "m-row"}>
            <dt>{k}</dt>
            <dd data-metric={id}>{v}</dd>
          </div>
        ))}
      </dl>
      <p className="metrics-help">
        {p.status.detail} <b>Reconnections</b>: times the live feed came back after a drop. <b>Failed attempts</b>: connection
        tries that did not open. <b>Latency</b>: a ping's round trip on the open connection (none while it is down).
      </p>
    </section>
  );
}
