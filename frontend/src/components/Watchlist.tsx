// The watchlist: a search box to add (SymbolSearch), then per ticker its session's sparkline,
// last, change, change %, volume, quote age; a flash on every tick; remove.
// Sorting by symbol, change % or volume (column header buttons with aria-sort, or the Sort
// menu, which also has "My order"); the sorted order is taken once a second, so rows do not
// jump on every tick. "My order" (the stored list) is changed with Alt+ArrowUp/Down on a row,
// or the Move buttons that "Reorder" shows (44 px on touch screens). ArrowUp/Down on a symbol
// go to the row above or below.
// A quote's standing is said in its price cell: "stale" (no update for longer than expected
// while its market trades) or "closed" (its market is closed: the last price, kept) — on a
// second line, so the price itself is never pushed out or clipped; a triggered price alert
// is marked there too, in words.

import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import type { Sparks } from "../hooks/useSparklines";
import { formatAge, formatChange, formatPrice, formatSigned, formatVolume, reportedVolume } from "../lib/format";
import { sessionTag } from "../lib/sessionQuote";
import type { QuoteStanding } from "../lib/quoteStanding";
import type { Quote } from "../lib/types";
import { moveTicker, MY_ORDER, nextSort, SORT_LABEL, sortTickers, type Sort, type SortKey } from "../lib/watchlistOrder";
import { Sparkline } from "./Sparkline";
import { SymbolSearch } from "./SymbolSearch";

interface Props {
  /** In the user's own order. */
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
  token: string | null;
  sparks: Sparks;
  sort: Sort;
  onSort: (s: Sort) => void;
  /** The user's order changed. */
  onReorder: (tickers: readonly string[]) => void;
  /** Ticker → its triggered alert(s), in words. */
  alertMarks: Readonly<Record<string, string>>;
  /** Said once by the page's live region. */
  onAnnounce: (text: string) => void;
}

const SORT_OPTIONS: [string, string][] = [
  ["mine:asc", "My order"],
  ["symbol:asc", "Symbol A–Z"],
  ["symbol:desc", "Symbol Z–A"],
  ["change:desc", "Change % high–low"],
  ["change:asc", "Change % low–high"],
  ["volume:desc", "Volume high–low"],
  ["volume:asc", "Volume low–high"],
];

export function Watchlist(p: Props) {
  const [reorderWanted, setReordering] = useState(false);
  const reordering = reorderWanted && p.sort.key === "mine";
  // The quotes the order is taken from: refreshed once a second (with `now`), not per tick.
  const [snap, setSnap] = useState({ now: p.now, quotes: p.quotes });
  if (snap.now !== p.now) setSnap({ now: p.now, quotes: p.quotes });
  const order = useMemo(() => sortTickers(p.tickers, snap.quotes, p.sort), [p.tickers, snap.quotes, p.sort]);

  const { tickers, sort, onReorder, onAnnounce, onSort } = p;
  const pendingFocus = useRef<string | null>(null);
  const move = useCallback(
    (t: string, delta: number, focusId: string | null) => {
      if (sort.key !== "mine") {
        onAnnounce(`Sorted by ${SORT_LABEL[sort.key]}: choose My order to move rows`);
        return;
      }
      const next = moveTicker(tickers, t, delta);
      if (next === tickers) return;
      pendingFocus.current = focusId;
      onReorder(next);
      onAnnounce(`${t} moved to position ${next.indexOf(t) + 1} of ${next.length}`);
    },
    [tickers, sort.key, onReorder, onAnnounce],
  );
  // A moved row may lose the focus (its node is moved): give it back.
  useLayoutEffect(() => {
    const id = pendingFocus.current;
    if (!id) return;
    pendingFocus.current = null;
    const el = id === "search" ? document.querySelector<HTMLElement>(".wl-combo input") : document.querySelector<HTMLElement>(`[data-focus-id="${CSS.escape(id)}"]`);
    el?.focus();
  });

  // A removed row takes its focused button with it: the focus goes to the row that takes its
  // place (the next, or the previous at the end), else to the search box.
  const { onRemove } = p;
  const orderNow = useRef(order);
  useLayoutEffect(() => {
    orderNow.current = order;
  });
  const remove = useCallback(
    (t: string) => {
      const active = document.activeElement;
      const hadFocus = active instanceof HTMLElement && active.closest(`tr[data-ticker="${CSS.escape(t)}"]`) !== null;
      if (hadFocus) {
        const rows = orderNow.current;
        const i = rows.indexOf(t);
        const next = rows[i + 1] ?? rows[i - 1];
        pendingFocus.current = next ? `rm-${next}` : "search";
      }
      onRemove(t);
    },
    [onRemove],
  );

  // Which prices are on screen (data-seen on the price): a row scrolled out of view, or in a
  // hidden tab, does not flash, so a long list costs what its visible rows cost.
  const scroller = useRef<HTMLDivElement>(null);
  const rowKey = order.join(",");
  useEffect(() => {
    const root = scroller.current;
    if (!root || typeof IntersectionObserver === "undefined") return;
    const io = new IntersectionObserver(
      (entries) => {
        for (const e of entries) (e.target as HTMLElement).dataset.seen = e.isIntersecting ? "1" : "0";
      },
      { root },
    );
    for (const el of root.querySelectorAll<HTMLElement>(".price")) io.observe(el);
    return () => io.disconnect();
  }, [rowKey]);

  const count = p.tickers.length;
  return (
    <section className={`panel wl${reordering ? " reordering" : ""}`} data-testid="watchlist" aria-labelledby="wl-title">
      <div className="panel-head wl-head">
        <h2 id="wl-title">Watchlist</h2>
        <span className="wl-count muted" data-testid="wl-count">
          {count} of {p.maxTickers}
        </span>
        <div className="wl-tools">
          <label className="wl-sort">
            <span className="wl-sort-label">Sort</span>
            <select
              value={`${p.sort.key}:${p.sort.dir}`}
              onChange={(e) => {
                const [key, dir] = e.target.value.split(":") as [SortKey, Sort["dir"]];
                onSort({ key, dir });
              }}
              data-testid="sort-select"
            >
              {SORT_OPTIONS.map(([v, label]) => (
                <option key={v} value={v}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            className={`wl-reorder${reordering ? " on" : ""}`}
            aria-pressed={reordering}
            title="Move rows up and down (in My order)"
            data-testid="reorder-toggle"
            onClick={() => {
              if (!reordering && p.sort.key !== "mine") onSort(MY_ORDER);
              setReordering(!reordering);
            }}
          >
            Reorder
          </button>
        </div>
      </div>
      <SymbolSearch token={p.token} listed={p.tickers} maxTickers={p.maxTickers} onAdd={p.onAdd} />
      <div className="wl-scroll" ref={scroller}>
        <table className="wl-table" data-sort={`${p.sort.key}:${p.sort.dir}`}>
          <caption className="sr-only">
            Watchlist prices: session trend, last, change, change %, volume and quote age; sorted by {SORT_LABEL[p.sort.key]}
            {p.sort.key === "mine" ? "" : p.sort.dir === "asc" ? ", ascending" : ", descending"}. Alt+Arrow Up or Down on a row moves it in My
            order.
          </caption>
          <colgroup>
            <col className="c-sym" />
            <col className="c-spark" />
            <col className="c-last" />
            <col className="c-chg" />
            <col className="c-pct" />
            <col className="c-vol" />
            <col className="c-age" />
            <col className="c-move" />
            <col className="c-rm" />
          </colgroup>
          <thead>
            <tr>
              <SortHeader label="Symbol" k="symbol" className="l" sort={p.sort} onSort={onSort} />
              <th scope="col" className="col-spark">
                Trend
              </th>
              <th scope="col">Last</th>
              <th scope="col" className="col-chg">
                Chg
              </th>
              <SortHeader label="Chg%" k="change" className="col-pct" sort={p.sort} onSort={onSort} />
              <SortHeader label="Vol" k="volume" className="col-vol" sort={p.sort} onSort={onSort} />
              <th scope="col" className="col-age">
                Age
              </th>
              <th scope="col" className="col-move">
                Move
              </th>
              <th scope="col">
                <span className="sr-only">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {order.map((t, i) => {
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
                  spark={p.sparks[t]}
                  alertMark={p.alertMarks[t]}
                  first={i === 0}
                  last={i === order.length - 1}
                  onSelect={p.onSelect}
                  onRemove={remove}
                  onMove={move}
                />
              );
            })}
          </tbody>
        </table>
      </div>
      {p.tickers.length === 0 && <div className="muted pad">No tickers: search above to add one.</div>}
    </section>
  );
}

function SortHeader({ label, k, className, sort, onSort }: { label: string; k: SortKey; className: string; sort: Sort; onSort: (s: Sort) => void }) {
  const on = sort.key === k;
  return (
    <th scope="col" className={className} aria-sort={on ? (sort.dir === "asc" ? "ascending" : "descending") : undefined}>
      <button
        type="button"
        className={`sort-btn${on ? " on" : ""}`}
        title={`Sort by ${SORT_LABEL[k]}`}
        data-testid={`sort-${k}`}
        onClick={() => onSort(nextSort(sort, k))}
      >
        {label}
        <span className="sort-ind" aria-hidden="true">
          {on ? (sort.dir === "asc" ? "▲" : "▼") : ""}
        </span>
      </button>
    </th>
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
  spark: readonly number[] | undefined;
  alertMark: string | undefined;
  first: boolean;
  last: boolean;
  onSelect: (t: string) => void;
  onRemove: (t: string) => void;
  onMove: (t: string, delta: number, focusId: string | null) => void;
}

const STANDING_TITLE: Record<QuoteStanding, string> = {
  ok: "",
  stale: "Stale: no update for longer than expected while its market trades",
  closed: "Market closed: the last price of the session",
};

const Row = memo(function Row(r: RowProps) {
  const { ticker, quote, decimals, selected, standing, onSelect, onRemove, onMove } = r;
  const priceCell = useRef<HTMLSpanElement>(null);
  const prev = useRef<number | null>(null);
  const price = quote?.data.price ?? null;
  const seq = quote?.seq ?? null;

  // Flash the price on every tick: a CSS animation (of an overlay's opacity, which the
  // compositor runs) started by a class. Two names per direction, alternated, restart it
  // without forcing a layout; no timer, no render. prefers-reduced-motion turns it off (CSS).
  const flip = useRef(false);
  useEffect(() => {
    const el = priceCell.current;
    if (!el || price === null) return;
    const before = prev.current;
    prev.current = price;
    if (before === null || el.dataset.seen === "0") return;
    const dir = price > before ? "up" : price < before ? "down" : "same";
    flip.current = !flip.current;
    el.dataset.flash = `${dir}-${flip.current ? "a" : "b"}`;
  }, [price, seq]);

  const onKeyDown = (e: KeyboardEvent<HTMLTableRowElement>) => {
    if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
    const target = e.target as HTMLElement;
    if (e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      onMove(ticker, e.key === "ArrowUp" ? -1 : 1, target.dataset.focusId ?? null);
    } else if (!e.altKey && !e.ctrlKey && !e.metaKey && !e.shiftKey && target.classList.contains("sym-btn")) {
      e.preventDefault();
      const row = e.key === "ArrowUp" ? e.currentTarget.previousElementSibling : e.currentTarget.nextElementSibling;
      row?.querySelector<HTMLElement>(".sym-btn")?.focus();
    }
  };

  const change = quote?.data.change ?? null;
  const tag = sessionTag(quote?.data.session);
  const dir = change === null || change === 0 ? "flat" : change > 0 ? "up" : "down";
  const marked = standing !== "ok" || r.alertMark !== undefined || tag !== null;
  return (
    <tr
      className={`wl-row ${selected ? "sel" : ""} ${standing !== "ok" ? standing : ""} ${r.alertMark ? "alerted" : ""}`}
      data-ticker={ticker}
      data-testid={`row-${ticker}`}
      data-standing={standing}
      data-alert={r.alertMark ? "triggered" : undefined}
      onClick={() => onSelect(ticker)}
      onKeyDown={onKeyDown}
    >
      <th scope="row" className="l sym">
        <button
          type="button"
          className="sym-btn"
          aria-current={selected ? "true" : undefined}
          aria-label={`${ticker}: show chart`}
          data-focus-id={`sym-${ticker}`}
          onClick={(e) => {
            e.stopPropagation();
            onSelect(ticker);
          }}
        >
          {ticker}
        </button>

        {r.error && (
          <span className="tag tag-err" title={r.error} data-testid={`error-${ticker}`}>
            ERR<span className="sr-only">: {r.error}</span>
          </span>
        )}
      </th>
      <td className="spark-cell col-spark">
        <Sparkline ticker={ticker} values={r.spark} prevClose={quote?.data.prev_close ?? null} decimals={decimals} />
      </td>
      <td className={`num price-cell ${standing}`} title={STANDING_TITLE[standing] || undefined}>
        <span ref={priceCell} className="price" data-testid={`price-${ticker}`}>
          {formatPrice(price, decimals)}
        </span>
        {marked && (
          <span className="marks">
            {tag && (
              <span className={`mark mark-sess mark-${quote?.data.session}`} title={tag.long} data-testid={`session-${ticker}`}>
                {tag.short}
                <span className="sr-only">: {tag.long}</span>
              </span>
            )}
            {standing !== "ok" && (
              <span className={`mark mark-${standing}`} data-testid={`mark-${ticker}`}>
                {standing}
              </span>
            )}
            {r.alertMark && (
              <span className="mark mark-alert" title={r.alertMark} data-testid={`alert-mark-${ticker}`}>
                alert<span className="sr-only">: {r.alertMark}</span>
              </span>
            )}
          </span>
        )}
      </td>
      <td className={`num col-chg ${dir}`} title={change === null ? undefined : formatSigned(change, decimals ?? 2)}>
        {formatChange(change, decimals ?? 2)}
      </td>
      <td className={`num col-pct ${dir}`}>{formatSigned(quote?.data.change_percent ?? null, 2, "%")}</td>
      <td className="num muted col-vol">{formatVolume(reportedVolume(ticker, quote?.data.volume))}</td>
      <td className={`num age col-age ${standing === "stale" ? "warn" : ""}`}>{formatAge(r.ageMs)}</td>
      <td className="move-cell col-move">
        <MoveButton ticker={ticker} dir="up" edge={r.first} onMove={onMove} />
        <MoveButton ticker={ticker} dir="down" edge={r.last} onMove={onMove} />
      </td>
      <td className="rm-cell">
        <button
          type="button"
          className="rm"
          aria-label={`Remove ${ticker}`}
          title={`Remove ${ticker}`}
          data-testid={`remove-${ticker}`}
          data-focus-id={`rm-${ticker}`}
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

function MoveButton({ ticker, dir, edge, onMove }: { ticker: string; dir: "up" | "down"; edge: boolean; onMove: RowProps["onMove"] }) {
  const id = `${dir}-${ticker}`;
  return (
    <button
      type="button"
      className="mv"
      aria-label={`Move ${ticker} ${dir}`}
      aria-disabled={edge || undefined}
      data-testid={`move-${dir}-${ticker}`}
      data-focus-id={id}
      onClick={(e) => {
        e.stopPropagation();
        if (!edge) onMove(ticker, dir === "up" ? -1 : 1, id);
      }}
    >
      <span aria-hidden="true">{dir === "up" ? "↑" : "↓"}</span>
    </button>
  );
}
