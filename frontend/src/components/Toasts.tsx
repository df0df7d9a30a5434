// Transient notices (fallback to polling, real time restored), dismissed after a while.

import { useEffect } from "react";
import type { Toast } from "../hooks/useMarketData";

export function Toasts({ toasts, onDismiss, ttlMs = 8000 }: { toasts: Toast[]; onDismiss: (id: number) => void; ttlMs?: number }) {
  useEffect(() => {
    const timers = toasts.map((t) => setTimeout(() => onDismiss(t.id), ttlMs));
    return () => timers.forEach(clearTimeout);
  }, [toasts, onDismiss, ttlMs]);
  return (
    <div className="toasts" aria-live="assertive">
      {toasts.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`} data-testid="toast" data-kind={t.kind} role="status">
          <span>{t.text}</span>
          <button type="button" aria-label="Dismiss" onClick={() => onDismiss(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
