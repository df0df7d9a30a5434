// The watchlist: last, change, change %, quote age; a flash on every tick; add/remove.

import { memo, useEffect, useRef, useState, type FormEvent } from "react";
import { formatAge, formatPrice, formatSigned, formatVolume } from "../lib/format";
import { normalizeTicker } from "../lib/market";
import type { Quote } from "../lib/types";

interface Props {
  tickers: string[];
  quotes: Record<string, Quote>;
  selected: string;
  now: number;
  staleOf: (q: Quote) => boolean;
  errors: Record<string, string>;
  onSelect: (t: string) => void;
  onAdd: (t: string) => void;
  onRemove: (t: string) => void;
  maxTickers: number;
}

export function Watchlist(p: Props) {
  const [draft, setDraft] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const t = normalizeTicker(draft);
    if (!t) return setProblem("1–15 of A–Z 0–9 . - = ^");
    if (p.tickers.includes(t)) return setProblem(`${t} is already listed`);
    if (p.tickers.length >= p.maxTickers) return setProblem(`at most ${p.maxTickers} tickers`);
    p.onAdd(t);
    setDraft("");
    setProblem(null);
  };
  return (
    <section className="panel wl" data-testid="watchlist" aria-label="Watchlist">
      <div className="panel-head">
        <h2>Watchlist</h2>
        <form onSubmit={submit} className="wl-add">
          <input
            aria-label="Add ticker"
            placeholder="Add ticker"
            value={draft}
            maxLength={15}
            onChange={(e) => setDraft(e.target.value)}
            data-testid="add-ticker"
          />
          <button type="submit" title="Add to watchlist">+</button>
        </form>
      </div>
      {problem && <div className="wl-problem" role="alert">{problem}</div>}
      <table className="wl-table">
        <thead>
          <tr>
            <th className="l">Symbol</th>
            <th>Last</th>
            <th>Chg</th>
            <th>Chg%</th>
            <th>Vol</th>
            <th>Age</th>
            <th aria-label="Remove" />
          </tr>
        </thead>
        <tbody>
          {p.tickers.map((t) => (
            <Row
              key={t}
              ticker={t}
              quote={p.quotes[t]}
              selected={t === p.selected}
              ageMs={p.quotes[t] ? p.now - p.quotes[t].timestamp : null}
              stale={p.quotes[t] ? p.staleOf(p.quotes[t]) : false}
              error={p.errors[t]}
              onSelect={p.onSelect}
              onRemove={p.onRemove}
            />
          ))}
        </tbody>
      </table>
      {p.tickers.length === 0 && <div className="muted pad">No tickers: add one above.</div>}
    </section>
  );
}

interface RowProps {
  ticker: string;
  quote: Quote | undefined;
  selected: boolean;
  ageMs: number | null;
  stale: boolean;
  error: string | undefined;
  onSelect: (t: string) => void;
  onRemove: (t: string) => void;
}

const Row = memo(function Row({ ticker, quote, selected, ageMs, stale, error, onSelect, onRemove }: RowProps) {
  const priceCell = useRef<HTMLTableCellElement>(null);
  const prev = useRef<number | null>(null);
  const price = quote?.data.price ?? null;
  const seq = quote?.seq ?? null;

  // Flash the price on every tick (a DOM class, restarted, so no extra render).
  useEffect(() => {
    const el = priceCell.current;
    if (!el || price === null) return;
    const before = prev.current;
    prev.current = price;
    if (before === null) return;
    const cls = price > before ? "flash-up" : price < before ? "flash-down" : "flash-same";
    el.classList.remove("flash-up", "flash-down", "flash-same");
    void el.offsetWidth; // restart the animation
    el.classList.add(cls);
  }, [price, seq]);

  const change = quote?.data.change ?? null;
  const dir = change === null || change === 0 ? "flat" : change > 0 ? "up" : "down";
  return (
    <tr
      className={`wl-row ${selected ? "sel" : ""} ${stale ? "stale" : ""}`}
      data-ticker={ticker}
      data-testid={`row-${ticker}`}
      onClick={() => onSelect(ticker)}
      aria-selected={selected}
    >
      <td className="l sym">
        <button type="button" className="sym-btn" onClick={() => onSelect(ticker)}>
          {ticker}
        </button>
        {stale && (
          <span className="tag tag-stale" title="The last quote is older than expected">
            STALE
          </span>
        )}
        {error && (
          <span className="tag tag-err" title={error}>
            ERR
          </span>
        )}
      </td>
      <td ref={priceCell} className="num price" data-testid={`price-${ticker}`}>
        {formatPrice(price)}
      </td>
      <td className={`num ${dir}`}>{formatSigned(change)}</td>
      <td className={`num ${dir}`}>{formatSigned(quote?.data.change_percent ?? null, 2, "%")}</td>
      <td className="num muted">{formatVolume(quote?.data.volume)}</td>
      <td className={`num age ${stale ? "warn" : ""}`}>{formatAge(ageMs)}</td>
      <td>
        <button
          type="button"
          className="rm"
          aria-label={`Remove ${ticker}`}
          title={`Remove ${ticker}`}
          onClick={(e) => {
            e.stopPropagation();
            onRemove(ticker);
          }}
        >
          ×
        </button>
      </td>
    </tr>
  );
});
