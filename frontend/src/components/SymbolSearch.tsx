// Adding to the watchlist: a search box over the server's symbol directory (/api/symbols),
// as a WAI-ARIA combobox (ARIA 1.2, list autocomplete with the first match highlighted).
// Typing searches after a pause (debounced, the previous request aborted); ArrowDown/Up move
// through the matches, Enter adds the highlighted one, Escape closes (again: clears), a click
// or tap adds. Enter before the answer came waits for it; when the directory cannot answer
// (a relay-only server, too many searches), a well-formed ticker typed in full is added as
// is. Duplicates and a full list are refused in words.

import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";
import { normalizeTicker } from "../lib/market";
import { describeListing, searchErrorText, searchSymbols, type SymbolEntry } from "../lib/symbols";

interface Props {
  token: string | null;
  listed: readonly string[];
  maxTickers: number;
  onAdd: (ticker: string) => void;
  debounceMs?: number;
}

type Answer = { q: string; items: SymbolEntry[]; error: string | null };

export function SymbolSearch({ token, listed, maxTickers, onAdd, debounceMs = 150 }: Props) {
  const id = useId();
  const [text, setText] = useState("");
  const [open, setOpen] = useState(false);
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [nav, setNav] = useState({ q: "", i: 0 });
  const [problem, setProblem] = useState<string | null>(null);
  const commitCtl = useRef<AbortController | null>(null);
  const q = text.trim();

  // Debounced search; a newer query (or unmount) aborts the one in flight.
  useEffect(() => {
    if (!q) return;
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      searchSymbols(q, token, ctl.signal).then(
        (items) => setAnswer({ q, items, error: null }),
        (err: unknown) => {
          if (!ctl.signal.aborted) setAnswer({ q, items: [], error: searchErrorText(err) });
        },
      );
    }, debounceMs);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [q, token, debounceMs]);
  useEffect(() => () => commitCtl.current?.abort(), []);

  const ready = answer !== null && answer.q === q;
  // While a new answer is awaited the last list stays (no flicker), but Enter waits.
  const items = q && answer ? answer.items : [];
  const active = items.length === 0 ? -1 : nav.q === q ? Math.min(nav.i, items.length - 1) : Math.max(0, exactIndex(items, q));
  const listedSet = new Set(listed);
  const note = !q
    ? null
    : ready && answer.error
      ? answer.error
      : ready && items.length === 0
        ? `No matches for “${q}”`
        : !ready && items.length === 0
          ? "Searching…"
          : null;
  const expanded = open && items.length > 0;
  const popup = open && q !== "" && (items.length > 0 || note !== null);
  const optId = (i: number) => `${id}-opt-${i}`;

  const tryAdd = (ticker: string): void => {
    if (listedSet.has(ticker)) return setProblem(`${ticker} is already in the watchlist`);
    if (listed.length >= maxTickers) return setProblem(`The watchlist holds at most ${maxTickers} tickers: remove one first`);
    onAdd(ticker);
    setText("");
    setOpen(false);
    setProblem(null);
  };

  /** Enter or the Add button: the highlighted match; the answer awaited when not in yet. */
  const commit = (): void => {
    if (!q) return setProblem("Type a symbol or a name");
    if (ready) {
      const pick = items[active];
      if (pick) return tryAdd(pick.symbol);
      const typed = answer.error ? normalizeTicker(q) : null;
      if (typed) return tryAdd(typed);
      return setOpen(true);
    }
    commitCtl.current?.abort();
    const ctl = new AbortController();
    commitCtl.current = ctl;
    searchSymbols(q, token, ctl.signal).then(
      (found) => {
        setAnswer({ q, items: found, error: null });
        const pick = found[Math.max(0, exactIndex(found, q))];
        if (pick) tryAdd(pick.symbol);
        else setOpen(true);
      },
      (err: unknown) => {
        if (ctl.signal.aborted) return;
        setAnswer({ q, items: [], error: searchErrorText(err) });
        const typed = normalizeTicker(q);
        if (typed) tryAdd(typed);
        else setOpen(true);
      },
    );
  };

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!open) return setOpen(true);
      if (items.length === 0) return;
      const step = e.key === "ArrowDown" ? 1 : -1;
      setNav({ q, i: (active + step + items.length) % items.length });
    } else if (e.key === "Enter") {
      e.preventDefault();
      commit();
    } else if (e.key === "Escape") {
      if (open && q) {
        e.preventDefault();
        setOpen(false);
      } else if (text) {
        e.preventDefault();
        setText("");
        setProblem(null);
      }
    }
  };

  const describedBy = [note && popup ? `${id}-note` : null, problem ? `${id}-problem` : null].filter(Boolean).join(" ") || undefined;
  return (
    <div className="wl-search">
      <form
        className="wl-add"
        role="search"
        aria-label="Add a ticker"
        onSubmit={(e) => {
          e.preventDefault();
          commit();
        }}
      >
        <div className="wl-combo">
          <input
            role="combobox"
            aria-label="Add a ticker: search by symbol or name"
            aria-expanded={expanded}
            aria-controls={`${id}-list`}
            aria-autocomplete="list"
            aria-activedescendant={expanded && active >= 0 ? optId(active) : undefined}
            aria-invalid={problem !== null || (ready && answer.error !== null)}
            aria-describedby={describedBy}
            placeholder="Add: symbol or name"
            value={text}
            maxLength={64}
            autoComplete="off"
            autoCapitalize="characters"
            spellCheck={false}
            enterKeyHint="search"
            onChange={(e) => {
              setText(e.target.value);
              setOpen(true);
              setProblem(null);
            }}
            onKeyDown={onKeyDown}
            onFocus={() => setOpen(true)}
            onBlur={() => setOpen(false)}
            data-testid="add-ticker"
          />
          <div className="wl-pop" hidden={!popup} data-testid="search-popup">
            <ul role="listbox" id={`${id}-list`} aria-label="Matching symbols" className="wl-options">
              {items.map((s, i) => {
                const isListed = listedSet.has(s.symbol);
                return (
                  <li
                    key={s.symbol}
                    id={optId(i)}
                    role="option"
                    aria-selected={i === active}
                    aria-disabled={isListed || undefined}
                    className={`wl-opt${i === active ? " active" : ""}${isListed ? " listed" : ""}`}
                    data-testid={`option-${s.symbol}`}
                    onMouseDown={(e) => e.preventDefault()} // keep the focus in the box
                    onMouseEnter={() => setNav({ q, i })}
                    onClick={() => tryAdd(s.symbol)}
                  >
                    <span className="opt-sym">{s.symbol}</span>
                    <span className="opt-name">{s.name}</span>
                    <span className="opt-ex">
                      {describeListing(s)}
                      {isListed ? " · listed" : ""}
                    </span>
                  </li>
                );
              })}
            </ul>
            {note && (
              <div className={`wl-pop-note${ready && answer.error ? " err" : ""}`} id={`${id}-note`} data-testid="search-note">
                {note}
              </div>
            )}
          </div>
        </div>
        <button type="submit" className="wl-add-btn" aria-label="Add ticker to watchlist" data-testid="add-button">
          <span aria-hidden="true">+</span>
          <span className="wl-add-text">Add</span>
        </button>
      </form>
      {problem && (
        <div className="wl-problem" id={`${id}-problem`} data-testid="add-problem">
          {problem}
        </div>
      )}
    </div>
  );
}

/** The index of the match whose symbol is what was typed, or -1. */
function exactIndex(items: readonly SymbolEntry[], q: string): number {
  const up = q.toUpperCase();
  return items.findIndex((s) => s.symbol === up);
}
