// The watchlist: last, change, change %, volume, quote age; a flash on every tick; add/remove.
// A quote's standing is said in its price cell: "stale" (no update for longer than expected
// while its market trades) or "closed" (its market is closed: the last price, kept) — on a
// second line, so the price itself is never pushed out or clipped.

import { memo, useEffect, useRef, useState, type FormEvent } from "react";
import { formatAge, formatPrice, formatSigned, formatVolume } from "../lib/format";
import { normalizeTicker } from "../lib/market";
import type { QuoteStanding } from "../lib/quoteStanding";
import type { Quote } from "../lib/types";

interface Props {
  tickers: string[];
  quotes: Record<string, Quote>;
  selected: string;
  now: number;
  standingOf: (q: Quote) => QuoteStanding;
  decimalsOf: (t: string) => number | null;
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
    if (!t) return setProblem("A ticker is 1–15 of A–Z 0–9 . - = ^");
    if (p.tickers.includes(t)) return setProblem(`${t} is already listed`);
    if (p.tickers.length >= p.maxTickers) return setProblem(`At most ${p.maxTickers} tickers`);
    p.onAdd(t);
    setDraft("");
    setProblem(null);
  };
  return (
    <section className="panel wl" data-testid="watchlist" aria-labelledby="wl-title">
      <div className="panel-head">
        <h2 id="wl-title">Watchlist</h2>
        <form onSubmit={submit} className="wl-add" role="search" aria-label="Add a ticker">
          <input
            aria-label="Ticker to add"
            placeholder="Add ticker"
            value={draft}
            maxLength={15}
            autoCapitalize="characters"
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setDraft(e.target.value)}
            aria-invalid={problem !== null}
            aria-describedby={problem ? "wl-problem" : undefined}
            data-testid="add-ticker"
          />
          <button type="submit" className="wl-add-btn" aria-label="Add ticker to watchlist" data-testid="add-button">
            <span aria-hidden="true">+</span>
            <span className="wl-add-text">Add</span>
          </button>
        </form>
      </div>
      {problem && (
        <div className="wl-problem" id="wl-problem" data-testid="add-problem">
          {problem}
        </div>
      )}
      <div className="wl-scroll">
        <table className="wl-table">
          <caption className="sr-only">Watchlist prices: last, change, change %, volume and quote age</caption>
          <colgroup>
            <col className="c-sym" />
            <col className="c-last" />
            <col className="c-chg" />
            <col className="c-pct" />
            <col className="c-vol" />
            <col className="c-age" />
            <col className="c-rm" />
          </colgroup>
          <thead>
            <tr>
              <th scope="col" className="l">Symbol</th>
              <th scope="col">Last</th>
              <th scope="col" className="col-chg">Chg</th>
              <th scope="col">Chg%</th>
              <th scope="col" className="col-vol">Vol</th>
              <th scope="col" className="col-age">Age</th>
              <th scope="col">
                <span className="sr-only">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {p.tickers.map((t) => {
              const q = p.quotes[t];
              return (
                <Row
                  key={t}
                  ticker={t}
                  quote={q}
                  decimals={p.decimalsOf(t)}
                  selected={t === p.selected}
                  ageMs={q ? p.now - q.timestamp : null}
                  standing={q ? p.standingOf(q) : "ok"}
                  error={p.errors[t]}
                  onSelect={p.onSelect}
                  onRemove={p.onRemove}
                />
              );
            })}
          </tbody>
        </table>
      </div>
      {p.tickers.length === 0 && <div className="muted pad">No tickers: add one above.</div>}
    </section>
  );
}

interface RowProps {
  ticker: string;
  quote: Quote | undefined;
  decimals: number | null;
  selected: boolean;
  ageMs: number | null;
  standing: QuoteStanding;
  error: string | undefined;
  onSelect: (t: string) => void;
  onRemove: (t: string) => void;
}

const STANDING_TITLE: Record<QuoteStanding, string> = {
  ok: "",
  stale: "Stale: no update for longer than expected while its market trades",
  closed: "Market closed: the last price of the session",
};

const Row = memo(function Row({ ticker, quote, decimals, selected, ageMs, standing, error, onSelect, onRemove }: RowProps) {
  const priceCell = useRef<HTMLSpanElement>(null);
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
      className={`wl-row ${selected ? "sel" : ""} ${standing !== "ok" ? standing : ""}`}
      data-ticker={ticker}
      data-testid={`row-${ticker}`}
      data-standing={standing}
      onClick={() => onSelect(ticker)}
    >
      <th scope="row" className="l sym">
        <button
          type="button"
          className="sym-btn"
          aria-current={selected ? "true" : undefined}
          aria-label={`${ticker}: show chart`}
          onClick={(e) => {
            e.stopPropagation();
            onSelect(ticker);
          }}
        >
          {ticker}
        </button>
        {error && (
          <span className="tag tag-err" title={error} data-testid={`error-${ticker}`}>
            ERR<span className="sr-only">: {error}</span>
          </span>
        )}
      </th>
      <td className={`num price-cell ${standing}`} title={STANDING_TITLE[standing] || undefined}>
        <span ref={priceCell} className="price" data-testid={`price-${ticker}`}>
          {formatPrice(price, decimals)}
        </span>
        {standing !== "ok" && (
          <span className={`mark mark-${standing}`} data-testid={`mark-${ticker}`}>
            {standing}
          </span>
        )}
      </td>
      <td className={`num col-chg ${dir}`}>{formatSigned(change, decimals ?? 2)}</td>
      <td className={`num ${dir}`}>{formatSigned(quote?.data.change_percent ?? null, 2, "%")}</td>
      <td className="num muted col-vol">{formatVolume(quote?.data.volume)}</td>
      <td className={`num age col-age ${standing === "stale" ? "warn" : ""}`}>{formatAge(ageMs)}</td>
      <td className="rm-cell">
        <button
          type="button"
          className="rm"
          aria-label={`Remove ${ticker}`}
          title={`Remove ${ticker}`}
          data-testid={`remove-${ticker}`}
          onClick={(e) => {
            e.stopPropagation();
            onRemove(ticker);
          }}
        >
          <span aria-hidden="true">×</span>
        </button>
      </td>
    </tr>
  );
});
