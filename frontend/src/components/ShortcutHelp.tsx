// The keyboard shortcuts' help (`?`): a modal dialog listing lib/shortcuts.ts. Escape, the
// Close button or `?` again closes it; the focus goes back where it was.

import { useEffect, useRef } from "react";
import { SHORTCUTS } from "../lib/shortcuts";

export function ShortcutHelp({ onClose }: { onClose: () => void }) {
  const dialog = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    dialog.current?.querySelector<HTMLElement>("button")?.focus();
    return () => before?.focus?.();
  }, []);
  return (
    <div className="help-back" onClick={onClose}>
      <div
        ref={dialog}
        className="help"
        role="dialog"
        aria-modal="true"
        aria-labelledby="help-title"
        data-testid="shortcut-help"
        onClick={(e) => e.stopPropagation()}
        onKeyDown={(e) => {
          if (e.key === "Escape" || e.key === "?") {
            e.preventDefault();
            e.stopPropagation();
            onClose();
          } else if (e.key === "Tab") {
            // One focusable control: the focus stays in the dialog.
            e.preventDefault();
          }
        }}
      >
        <div className="help-head">
          <h2 id="help-title">Keyboard shortcuts</h2>
          <button type="button" className="help-close" onClick={onClose}>
            Close
          </button>
        </div>
        <dl className="help-list">
          {SHORTCUTS.map((s) => (
            <div key={s.action} className="help-row">
              <dt>
                {s.keys.map((k) => (
                  <kbd key={k}>{k}</kbd>
                ))}
              </dt>
              <dd>{s.text}</dd>
            </div>
          ))}
          <div className="help-row">
            <dt>
              <kbd>Alt</kbd>+<kbd>↑</kbd>/<kbd>↓</kbd>
            </dt>
            <dd>Move the focused row in My order</dd>
          </div>
        </dl>
      </div>
    </div>
  );
}
