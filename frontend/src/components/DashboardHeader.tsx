// The bar that is always visible (sticky on small screens): name, data-source badge,
// market session and clock in the chosen zone, stale count, connection.

import { describeMarket } from "../lib/market";
import type { FeedStatusView } from "../lib/feedStatus";
import { THEME_CHOICES, type ThemeChoice } from "../lib/theme";
import { formatTime, type Zone } from "../lib/timezone";
import type { MarketStatus } from "../lib/types";
import type { ServerInfo } from "../hooks/useServerInfo";
import { ConnectionStatus } from "./ConnectionStatus";

interface Props {
  info: ServerInfo;
  market: MarketStatus | null;
  marketName: string;
  zone: Zone;
  status: FeedStatusView;
  latencyMs: number | null;
  lastData: string | null;
  staleCount: number;
  now: number;
  authError: string | null;
  onOpenDetails: () => void;
  /** Polling: ms until the next poll. */
  nextPollInMs: number | null;
  themeChoice: ThemeChoice;
  onThemeChoice: (c: ThemeChoice) => void;
  onHelp: () => void;
}

const THEME_LABEL: Record<ThemeChoice, string> = { system: "Auto", light: "Light", dark: "Dark" };

export function DashboardHeader(p: Props) {
  const { info, market } = p;
  const m = market ? describeMarket(market, p.zone) : null;
  const session = market ? (market.market === "CRYPTO" ? "open" : market.session) : "unknown";
  return (
    <header className="hdr">
      <div className="hdr-brand">
        <span className="logo" aria-hidden="true">◢</span>
        <h1 className="name">stockfeed</h1>
        {info.simulated && (
          <span className="badge badge-sim" data-testid="simulated-badge" title="Prices come from the simulator, not a market">
            Simulated
          </span>
        )}
        {info.source && !info.simulated && <span className="badge">{info.source}</span>}
        {info.sourceStale && <span className="badge badge-warn">Source stale</span>}
      </div>
      <div className="hdr-market" data-testid="market-status" data-session={session}>
        <span className="muted">{market?.market ?? p.marketName}</span>
        <span className="hdr-clock" data-testid="clock">
          {formatTime(p.now, p.zone)}
        </span>
        {m ? (
          <>
            <span className={`mkt mkt-${session}`} data-testid="market-session">
              {session === "closed" ? "Market closed" : m.label}
            </span>
            {m.detail && <span className="muted mkt-detail">{m.detail}</span>}
            {/* A stale mark naming a ticker is that ticker's (its row says so); without one, the market's feed. */}
            {market?.stale && !(market as { ticker?: string }).ticker && <span className="badge badge-warn">feed stale</span>}
          </>
        ) : (
          <span className="muted">market status …</span>
        )}
      </div>
      <div className="hdr-right">
        {p.authError && (
          <span className="badge badge-err" data-testid="auth-error" role="alert" title={p.authError}>
            Not authorised: open with ?token=…
          </span>
        )}
        {p.staleCount > 0 && (
          <span className="badge badge-warn" data-testid="stale-warning">
            ⚠ {p.staleCount} stale
            <span className="sr-only"> quote{p.staleCount === 1 ? "" : "s"}</span>
          </span>
        )}
        <ConnectionStatus view={p.status} latencyMs={p.latencyMs} lastData={p.lastData} onOpenDetails={p.onOpenDetails} nextPollInMs={p.nextPollInMs} />
        <label className="theme-pick" title="Theme (t switches light / dark)">
          <span className="sr-only">Theme</span>
          <select value={p.themeChoice} onChange={(e) => p.onThemeChoice(e.target.value as ThemeChoice)} data-testid="theme-select">
            {THEME_CHOICES.map((c) => (
              <option key={c} value={c}>
                {THEME_LABEL[c]}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="help-btn" onClick={p.onHelp} aria-label="Keyboard shortcuts" title="Keyboard shortcuts (?)" data-testid="help-button">
          ?
        </button>
      </div>
    </header>
  );
}
