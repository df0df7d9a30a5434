// The connection chip, always on screen: a coloured dot and words (never colour alone).
// A button: it opens the connection details (the panel on a desktop, the tab on a phone).

import type { FeedStatusView } from "../lib/feedStatus";

interface Props {
  view: FeedStatusView;
  /** The open connection's latency; null when there is none (no old figure shown as current). */
  latencyMs: number | null;
  /** "last data 14:32:05 ET" when nothing is arriving. */
  lastData?: string | null;
  onOpenDetails?: () => void;
  /** Polling: ms until the next poll ("next poll in 42 s"). */
  nextPollInMs?: number | null;
}

export function ConnectionStatus({ view, latencyMs, lastData, onOpenDetails, nextPollInMs }: Props) {
  const nextPoll = nextPollInMs === null || nextPollInMs === undefined ? null : `next poll in ${Math.max(1, Math.ceil(nextPollInMs / 1000))} s`;
  const extra = !view.flowing && lastData ? ` Last data ${lastData}.` : "";
  return (
    <button
      type="button"
      className={`conn conn-${view.color}`}
      data-testid="connection-status"
      data-state={view.state}
      data-color={view.color}
      data-kind={view.kind}
      title={`${view.detail}${extra}`}
      onClick={onOpenDetails}
    >
      <span className="conn-dot" aria-hidden="true" />
      <span className="conn-title">{view.title}</span>
      {view.kind === "live" && latencyMs !== null && <span className="conn-latency">{Math.round(latencyMs)} ms</span>}
      {!view.flowing && lastData && <span className="conn-last">last data {lastData}</span>}
      {nextPoll && (
        <span className="conn-next" data-testid="next-poll">
          {nextPoll}
        </span>
      )}
      {/* The full sentence for screen readers, after the visible words (which stay part of the name). */}
      <span className="sr-only">
        {" "}
        — {view.detail}
        {extra} Show connection details.
      </span>
    </button>
  );
}
