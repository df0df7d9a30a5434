import type { ConnectionView } from "../lib/status";

export function ConnectionStatus({ view, latencyMs }: { view: ConnectionView; latencyMs: number | null }) {
  return (
    <div
      className={`conn conn-${view.color}`}
      data-testid="connection-status"
      data-state={view.state}
      data-color={view.color}
      role="status"
      aria-label={view.detail}
      title={view.detail}
      tabIndex={0}
    >
      <span className="conn-dot" aria-hidden="true" />
      <span className="conn-title">{view.title}</span>
      {view.state === "connected" && latencyMs !== null && (
        <span className="conn-latency">{Math.round(latencyMs)} ms</span>
      )}
    </div>
  );
}
