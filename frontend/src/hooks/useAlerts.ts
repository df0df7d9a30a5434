// Price alerts for the dashboard: kept in localStorage (validated when read back), checked
// against every quote the page's StockfeedClient takes (socket or polling; useStockfeedEvent,
// no render per tick: only a firing changes state), and told once when one fires: a browser
// notification when allowed, a toast, a line for the page's live region, and the alert
// marked triggered (the watchlist row says so) until the user re-arms or deletes it. The
// browser's permission is asked when an alert is added while it has not been asked yet;
// "denied" or no Notification API at all leave the alerts working in the page.

import { useCallback, useEffect, useRef, useState } from "react";
import { useStockfeed, useStockfeedEvent } from "@stockfeed/client/react";
import { check, describeTrigger, isAlertList, makeAlert, MAX_ALERTS, rearm, type AlertKind, type PriceAlert } from "../lib/alerts";
import { formatPrice } from "../lib/format";
import { load, save } from "../lib/storage";

export type NotifyPermission = NotificationPermission | "unsupported";

export interface AlertToast {
  key: string;
  kind: "alert";
  text: string;
}

export interface Alerts {
  alerts: PriceAlert[];
  permission: NotifyPermission;
  /** Add an alert on `ticker`; the error in words, or null when added. */
  add: (ticker: string, kind: AlertKind, level: string) => string | null;
  remove: (id: string) => void;
  rearm: (id: string) => void;
  toasts: AlertToast[];
  dismissToast: (key: string) => void;
}

const KEY = "alerts";

const supported = () => typeof window !== "undefined" && typeof window.Notification === "function";
const currentPermission = (): NotifyPermission => (supported() ? window.Notification.permission : "unsupported");

async function askPermission(): Promise<NotifyPermission> {
  if (!supported()) return "unsupported";
  if (window.Notification.permission !== "default") return window.Notification.permission;
  try {
    const answer = await window.Notification.requestPermission();
    return answer ?? window.Notification.permission;
  } catch {
    return window.Notification.permission;
  }
}

function notify(title: string, body: string, tag: string): void {
  if (!supported() || window.Notification.permission !== "granted") return;
  try {
    new window.Notification(title, { body, tag });
  } catch {
    /* some mobile browsers allow notifications from a service worker only: the toast tells */
  }
}

let counter = 0;
const newId = () => `${Date.now().toString(36)}-${(counter += 1).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

/** `onFired`: an alert fired, in words (for the page's live region). */
export function useAlerts(decimalsOf: (t: string) => number | null, onFired?: (text: string) => void): Alerts {
  const client = useStockfeed();
  const [alerts, setAlerts] = useState<PriceAlert[]>(() => load(KEY, [], isAlertList));
  const [permission, setPermission] = useState<NotifyPermission>(currentPermission);
  const [toasts, setToasts] = useState<AlertToast[]>([]);

  const update = useCallback((fn: (prev: PriceAlert[]) => PriceAlert[]) => {
    setAlerts((prev) => {
      const next = fn(prev);
      if (next !== prev) save(KEY, next);
      return next;
    });
  }, []);

  // Armed alerts by ticker, for the quote path; a firing takes its alert out at once, so a
  // second quote before the next render cannot fire it again.
  const armed = useRef(new Map<string, PriceAlert[]>());
  useEffect(() => {
    const m = new Map<string, PriceAlert[]>();
    for (const a of alerts) if (!a.triggered) m.set(a.ticker, [...(m.get(a.ticker) ?? []), a]);
    armed.current = m;
  }, [alerts]);

  // Every quote the client takes, with no render unless an alert fires.
  const last = useRef(new Map<string, number>()); // the previous price seen, per ticker
  const fires = useRef(0);
  useStockfeedEvent("quote", (q) => {
    const price = q.data.price;
    const prev = last.current.get(q.ticker) ?? null;
    if (typeof price === "number" && Number.isFinite(price)) last.current.set(q.ticker, price);
    const list = armed.current.get(q.ticker);
    if (!list) return;
    const hit = check(list, prev, { price, changePercent: q.data.change_percent, prevClose: q.data.prev_close }, Date.now());
    if (hit.length === 0) return;
    const ids = new Set(hit.map((a) => a.id));
    const left = list.filter((a) => !ids.has(a.id));
    if (left.length > 0) armed.current.set(q.ticker, left);
    else armed.current.delete(q.ticker);
    update((prev) => prev.map((a) => hit.find((h) => h.id === a.id && !a.triggered) ?? a));
    const d = decimalsOf(q.ticker);
    for (const a of hit) {
      const text = describeTrigger(a, (v) => formatPrice(v, d));
      notify(`Price alert: ${a.ticker}`, text, a.id);
      fires.current += 1;
      const n = fires.current;
      setToasts((ts) => [...ts.slice(-4), { key: `alert-${a.id}-${n}`, kind: "alert", text: `Alert: ${text}` }]);
      onFired?.(`Alert: ${text}.`);
    }
  });

  const add = useCallback(
    (ticker: string, kind: AlertKind, level: string): string | null => {
      const price = client.quote(ticker)?.data.price ?? null;
      const made = makeAlert(ticker, kind, level, price, Date.now(), newId());
      if ("error" in made) return made.error;
      if (alerts.length >= MAX_ALERTS) return `At most ${MAX_ALERTS} alerts: delete one first`;
      update((prev) => [...prev, made]);
      if (currentPermission() === "default") void askPermission().then(setPermission);
      return null;
    },
    [client, update, alerts.length],
  );
  const remove = useCallback((id: string) => update((prev) => prev.filter((a) => a.id !== id)), [update]);
  const rearmOne = useCallback(
    (id: string) => update((prev) => prev.map((a) => (a.id === id ? rearm(a, client.quote(a.ticker)?.data.price ?? null) : a))),
    [client, update],
  );
  const dismissToast = useCallback((key: string) => setToasts((ts) => ts.filter((t) => t.key !== key)), []);

  return { alerts, permission, add, remove, rearm: rearmOne, toasts, dismissToast };
}
