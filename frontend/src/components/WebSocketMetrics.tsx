// Connection numbers for whoever wonders whether the prices are live, each saying what it
// counts: reconnections (the feed came back) apart from failed attempts (a try that did not
// open), and a latency only for the connection that is open now.

import { formatAge } from "../lib/format";
import type { FeedStatusView } from "../lib/feedStatus";
import { formatTime, type Zone } from "../lib/timezone";
import { PanelTitle, type Fold } from "./PanelTitle";

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
  /** Polling: when the next poll is due (ms from now). */
  nextPollInMs?: number | null;
  fold?: Fold;
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
    ...(p.nextPollInMs === null || p.nextPollInMs === undefined ? [] : [["Next poll", `in ${Math.max(1, Math.ceil(p.nextPollInMs / 1000))} s`, "next-poll"] as [string, string, string]]),
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
        <PanelTitle id="ws-title" fold={p.fold} name="connection">
          Connection
        </PanelTitle>
      </div>
      <div id="ws-title-body" hidden={p.fold ? !p.fold.open : undefined}>
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
      </div>
    </section>
  );
}
