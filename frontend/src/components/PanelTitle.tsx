// A side panel's title: on a desktop or a tablet a button that folds the panel away (its
// state kept across loads by the page), so the watchlist gets the column; on a phone's tabs,
// plain text.

import type { ReactNode } from "react";

export interface Fold {
  open: boolean;
  onToggle: () => void;
}

export function PanelTitle({ id, fold, name, children }: { id: string; fold?: Fold; name: string; children: ReactNode }) {
  if (!fold) return <h2 id={id}>{children}</h2>;
  return (
    <h2 id={id}>
      <button
        type="button"
        className="fold-btn"
        aria-expanded={fold.open}
        aria-controls={`${id}-body`}
        data-testid={`fold-${name}`}
        onClick={fold.onToggle}
      >
        <span className="fold-ind" aria-hidden="true">
          {fold.open ? "▾" : "▸"}
        </span>
        {children}
      </button>
    </h2>
  );
}
