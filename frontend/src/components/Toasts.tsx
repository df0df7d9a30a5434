// Transient notices (fallback to polling, real time restored, a price alert fired), each
// dismissed after its own while (alerts stay longer). Not a live region: the page's one
// polite region speaks status changes and alerts once.
// Where they go (styles.css, .toasts): on a desktop over the chart's lower left, clear of the
// price axis and the watchlist; on a tablet or a phone (the page scrolls) in the sticky top
// bar, under the header, taking their own room: they never cover the status, the chart's
// price axis or a watchlist row.

import { useEffect, useRef } from "react";

export interface ToastItem {
  key: string;
  kind: "info" | "warn" | "ok" | "alert";
  text: string;
}

export function Toasts({
  toasts,
  onDismiss,
  ttlMs = 8000,
  alertTtlMs = 20_000,
}: {
  toasts: readonly ToastItem[];
  onDismiss: (key: string) => void;
  ttlMs?: number;
  alertTtlMs?: number;
}) {
  // One timer per toast, from when it appeared (a newer toast does not restart the others).
  const timers = useRef(new Map<string, ReturnType<typeof setTimeout>>());
  const dismiss = useRef(onDismiss);
  useEffect(() => {
    dismiss.current = onDismiss;
  });
  useEffect(() => {
    const live = new Set(toasts.map((t) => t.key));
    for (const [key, timer] of timers.current) {
      if (live.has(key)) continue;
      clearTimeout(timer);
      timers.current.delete(key);
    }
    for (const t of toasts) {
      if (timers.current.has(t.key)) continue;
      timers.current.set(
        t.key,
        setTimeout(() => dismiss.current(t.key), t.kind === "alert" ? alertTtlMs : ttlMs),
      );
    }
  }, [toasts, ttlMs, alertTtlMs]);
  useEffect(() => {
    const map = timers.current;
    return () => {
      for (const timer of map.values()) clearTimeout(timer);
      map.clear();
    };
  }, []);
  return (
    <div className="toasts" data-testid="toasts">
      {toasts.map((t) => (
        <div key={t.key} className={`toast toast-${t.kind}`} data-testid="toast" data-kind={t.kind}>
          <span>{t.text}</span>
          <button type="button" aria-label="Dismiss notice" onClick={() => onDismiss(t.key)}>
            <span aria-hidden="true">×</span>
          </button>
        </div>
      ))}
    </div>
  );
}
