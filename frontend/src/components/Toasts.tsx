// Transient notices (fallback to polling, real time restored), dismissed after a while.
// Not a live region: the status announcer speaks the same change once (one polite region).
// Placed clear of the chart's price axis (styles.css, .toasts).

import { useEffect } from "react";
import type { Toast } from "../hooks/useMarketData";

export function Toasts({ toasts, onDismiss, ttlMs = 8000 }: { toasts: Toast[]; onDismiss: (id: number) => void; ttlMs?: number }) {
  useEffect(() => {
    const timers = toasts.map((t) => setTimeout(() => onDismiss(t.id), ttlMs));
    return () => timers.forEach(clearTimeout);
  }, [toasts, onDismiss, ttlMs]);
  return (
    <div className="toasts" data-testid="toasts">
      {toasts.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`} data-testid="toast" data-kind={t.kind}>
          <span>{t.text}</span>
          <button type="button" aria-label="Dismiss notice" onClick={() => onDismiss(t.id)}>
            <span aria-hidden="true">×</span>
          </button>
        </div>
      ))}
    </div>
  );
}
