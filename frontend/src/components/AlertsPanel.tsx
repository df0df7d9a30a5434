// Price alerts: add one for the selected ticker (above a level, below a level, or a move of
// N % from the previous close either way), see them all with their state (armed, or when and
// at what price one fired), re-arm a fired one, delete any. Says what the browser allows:
// notifications blocked or missing, the alerts still work in the page.

import { useId, useState, type FormEvent } from "react";
import type { NotifyPermission } from "../hooks/useAlerts";
import { describeCondition, pendingNote, type AlertKind, type PriceAlert } from "../lib/alerts";
import { formatPrice } from "../lib/format";
import { formatTime, type Zone } from "../lib/timezone";
import { PanelTitle, type Fold } from "./PanelTitle";

interface Props {
  ticker: string;
  price: number | null;
  decimalsOf: (t: string) => number | null;
  alerts: readonly PriceAlert[];
  /** Whether a ticker is watched (an alert fires only on a watched ticker's quotes). */
  watched: (t: string) => boolean;
  permission: NotifyPermission;
  zone: Zone;
  onAdd: (ticker: string, kind: AlertKind, level: string) => string | null;
  onRemove: (id: string) => void;
  onRearm: (id: string) => void;
  fold?: Fold;
}

const PERMISSION_NOTE: Record<NotifyPermission, string | null> = {
  granted: null,
  default: "The browser asks to allow notifications when you add an alert; alerts also show on this page.",
  denied: "Browser notifications are blocked for this site: alerts show on this page only (a notice and a mark in the watchlist).",
  unsupported: "This browser has no notifications: alerts show on this page only (a notice and a mark in the watchlist).",
};

export function AlertsPanel(p: Props) {
  const id = useId();
  const [kind, setKind] = useState<AlertKind>("above");
  const [level, setLevel] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const mine = p.alerts.filter((a) => a.ticker === p.ticker);
  const others = p.alerts.filter((a) => a.ticker !== p.ticker);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!p.ticker) return setProblem("Select a ticker first");
    const err = p.onAdd(p.ticker, kind, level);
    setProblem(err);
    if (!err) setLevel("");
  };
  const note = PERMISSION_NOTE[p.permission];
  return (
    <section className="panel alerts" data-testid="alerts" aria-labelledby={`${id}-title`}>
      <div className="panel-head">
        <PanelTitle id={`${id}-title`} fold={p.fold} name="alerts">
          Alerts · {p.ticker || "—"}
        </PanelTitle>
        <span className="muted al-now">last {formatPrice(p.price, p.decimalsOf(p.ticker))}</span>
      </div>
      <div id={`${id}-title-body`} hidden={p.fold ? !p.fold.open : undefined}>
      <form className="al-form" onSubmit={submit} aria-label={`New alert for ${p.ticker || "the selected ticker"}`}>
        <label className="al-field">
          <span>When</span>
          <select value={kind} onChange={(e) => setKind(e.target.value as AlertKind)} data-testid="alert-kind">
            <option value="above">Price above</option>
            <option value="below">Price below</option>
            <option value="move">Moves ± % from prev close</option>
          </select>
        </label>
        <label className="al-field">
          <span>{kind === "move" ? "Move %" : "Level"}</span>
          <input
            type="text"
            inputMode="decimal"
            autoComplete="off"
            value={level}
            placeholder={kind === "move" ? "2" : p.price === null ? "price" : formatPrice(p.price, p.decimalsOf(p.ticker)).replace(/,/g, "")}
            onChange={(e) => setLevel(e.target.value)}
            aria-invalid={problem !== null}
            aria-describedby={problem ? `${id}-problem` : undefined}
            data-testid="alert-level"
          />
        </label>
        <button type="submit" className="al-add" data-testid="alert-add">
          Add alert
        </button>
      </form>
      {problem && (
        <div className="al-problem" id={`${id}-problem`} data-testid="alert-problem">
          {problem}
        </div>
      )}
      {note && (
        <p className="al-note muted" data-testid="alert-permission" data-permission={p.permission}>
          {note}
        </p>
      )}
      <AlertList {...p} title={p.ticker || "Selected"} alerts={mine} empty={`No alerts on ${p.ticker || "this ticker"}.`} />
      {others.length > 0 && <AlertList {...p} title="Other tickers" alerts={others} withTicker />}
      </div>
    </section>
  );
}

function AlertList({
  title,
  alerts,
  withTicker = false,
  empty,
  decimalsOf,
  price,
  watched,
  zone,
  onRemove,
  onRearm,
}: Pick<Props, "decimalsOf" | "price" | "watched" | "zone" | "onRemove" | "onRearm"> & {
  title: string;
  alerts: readonly PriceAlert[];
  withTicker?: boolean;
  empty?: string;
}) {
  if (alerts.length === 0) return empty ? <p className="al-empty muted">{empty}</p> : null;
  return (
    <>
      <h3 className="al-sub">{title}</h3>
      <ul className="al-list">
        {alerts.map((a) => {
          const fmt = (v: number) => formatPrice(v, decimalsOf(a.ticker));
          const name = `${a.ticker} ${describeCondition(a, fmt)}`;
          const t = a.triggered;
          const hint = withTicker ? null : pendingNote(a, price);
          return (
            <li key={a.id} className={`al-item${t ? " fired" : ""}`} data-testid="alert-item" data-state={t ? "triggered" : "armed"} data-ticker={a.ticker}>
              <div className="al-what">
                <span className="al-cond">{withTicker ? name : describeCondition(a, fmt)}</span>
                <span className={`al-state ${t ? "fired" : "armed"}`}>
                  {t ? `Triggered ${formatTime(t.at, zone)} at ${fmt(t.price)}` : "Armed"}
                  {!watched(a.ticker) && " · not in the watchlist: not checked"}
                  {hint && ` · ${hint}`}
                </span>
              </div>
              <div className="al-actions">
                {t && (
                  <button type="button" onClick={() => onRearm(a.id)} aria-label={`Re-arm alert ${name}`} data-testid="alert-rearm">
                    Re-arm
                  </button>
                )}
                <button type="button" onClick={() => onRemove(a.id)} aria-label={`Delete alert ${name}`} data-testid="alert-delete">
                  Delete
                </button>
              </div>
            </li>
          );
        })}
      </ul>
    </>
  );
}
