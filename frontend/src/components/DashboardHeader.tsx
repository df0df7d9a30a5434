// The bar that is always visible: name, data-source badge, market session, connection.

import { describeMarket, exchangeClock } from "../lib/market";
import type { ConnectionView } from "../lib/status";
import type { MarketStatus } from "../lib/types";
import type { ServerInfo } from "../hooks/useServerInfo";
import { ConnectionStatus } from "./ConnectionStatus";

interface Props {
  info: ServerInfo;
  market: MarketStatus | null;
  marketName: string;
  connection: ConnectionView;
  latencyMs: number | null;
  staleCount: number;
  now: number;
  authError: string | null;
}

export function DashboardHeader({ info, market, marketName, connection, latencyMs, staleCount, now, authError }: Props) {
  const m = market ? describeMarket(market) : null;
  return (
    <header className="hdr">
      <div className="hdr-brand">
        <span className="logo" aria-hidden="true">◢</span>
        <span className="name">stockfeed</span>
        {info.simulated && (
          <span className="badge badge-sim" data-testid="simulated-badge" title="Prices come from the simulator, not a market">
            Simulated data
          </span>
        )}
        {info.source && !info.simulated && <span className="badge">{info.source}</span>}
        {info.sourceStale && <span className="badge badge-warn">Source stale</span>}
      </div>
      <div className="hdr-market" data-testid="market-status" aria-live="polite">
        <span className="muted">{market?.market ?? marketName}</span>
        <span className="hdr-clock">{exchangeClock(now, market?.market ?? marketName)}</span>
        {m ? (
          <>
            <span className={market?.is_open ? "mkt-open" : "mkt-closed"}>{m.label}</span>
            {m.detail && <span className="muted">{m.detail}</span>}
            {market?.stale && <span className="badge badge-warn">feed stale</span>}
          </>
        ) : (
          <span className="muted">market status …</span>
        )}
      </div>
      <div className="hdr-right">
        {authError && (
          <span className="badge badge-err" data-testid="auth-error" role="alert" title={authError}>
            Not authorised: open with ?token=…
          </span>
        )}
        {staleCount > 0 && (
          <span className="badge badge-warn" data-testid="stale-warning" role="alert">
            ⚠ {staleCount} stale quote{staleCount === 1 ? "" : "s"}
          </span>
        )}
        <ConnectionStatus view={connection} latencyMs={latencyMs} />
      </div>
    </header>
  );
}
