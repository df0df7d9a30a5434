// Price alerts: per ticker, "above a level", "below a level" or "moved N % from the
// previous close (either way)". Pure: what an alert is, how it is kept (validated when read
// back from localStorage), and when a quote sets one off. The hook (hooks/useAlerts.ts)
// feeds it every quote and does the telling.
//
// An alert fires once, on a crossing: the previous price on one side of the level and the
// new one on the other (at or past it). The previous price is the last one this page saw
// for the ticker, else the price when the alert was set or re-armed (`ref`): an alert set
// below the level that finds the price above it after a reload fires, since it crossed
// meanwhile. A move alert fires on the first quote whose move from the previous close is at
// least its size, whether it got there on that quote or was there already.

export type AlertKind = "above" | "below" | "move";

export interface PriceAlert {
  id: string;
  ticker: string;
  kind: AlertKind;
  /** A price (above, below) or a percentage, > 0 (move). */
  level: number;
  /** The price when set or re-armed (null: none known then). */
  ref: number | null;
  createdAt: number;
  /** When it fired, and at what price and move; null while armed. */
  triggered: { at: number; price: number; movePct: number | null } | null;
}

/** What a quote brings to the check. */
export interface AlertQuote {
  price: number | null;
  changePercent?: number | null;
  prevClose?: number | null;
}

export const MAX_ALERTS = 200;
export const MAX_MOVE_PCT = 100;

const KINDS: readonly AlertKind[] = ["above", "below", "move"];
const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

export function isPriceAlert(v: unknown): v is PriceAlert {
  if (typeof v !== "object" || v === null) return false;
  const a = v as Record<string, unknown>;
  const t = a.triggered as Record<string, unknown> | null | undefined;
  return (
    typeof a.id === "string" &&
    typeof a.ticker === "string" &&
    KINDS.includes(a.kind as AlertKind) &&
    num(a.level) &&
    a.level > 0 &&
    (a.ref === null || num(a.ref)) &&
    num(a.createdAt) &&
    (t === null || (typeof t === "object" && t !== undefined && num(t.at) && num(t.price) && (t.movePct === null || num(t.movePct))))
  );
}

export const isAlertList = (v: unknown): v is PriceAlert[] => Array.isArray(v) && v.length <= MAX_ALERTS && v.every(isPriceAlert);

/** The move from the previous close, %: the quote's own figure, else worked out. */
export function movePct(q: AlertQuote): number | null {
  if (num(q.changePercent)) return q.changePercent;
  if (num(q.price) && num(q.prevClose) && q.prevClose !== 0) return ((q.price - q.prevClose) / q.prevClose) * 100;
  return null;
}

/** Whether `alert` (armed) fires on a quote at `q`, the previous price being `prev`. */
export function fires(alert: PriceAlert, prev: number | null, q: AlertQuote): boolean {
  if (alert.triggered || !num(q.price)) return false;
  const price = q.price;
  switch (alert.kind) {
    case "above": {
      const before = prev ?? alert.ref;
      return before !== null && before < alert.level && price >= alert.level;
    }
    case "below": {
      const before = prev ?? alert.ref;
      return before !== null && before > alert.level && price <= alert.level;
    }
    case "move": {
      const m = movePct(q);
      return m !== null && Math.abs(m) >= alert.level;
    }
  }
}

/** The alerts (of `q`'s ticker) that a quote sets off, marked triggered at `now`. */
export function check(alerts: readonly PriceAlert[], prev: number | null, q: AlertQuote, now: number): PriceAlert[] {
  const out: PriceAlert[] = [];
  for (const a of alerts) {
    if (fires(a, prev, q)) out.push({ ...a, triggered: { at: now, price: q.price as number, movePct: movePct(q) } });
  }
  return out;
}

/** A new alert, or what is wrong with the level. */
export function makeAlert(
  ticker: string,
  kind: AlertKind,
  rawLevel: string,
  ref: number | null,
  now: number,
  id: string,
): PriceAlert | { error: string } {
  const level = Number(rawLevel.trim().replace(/,/g, ""));
  if (rawLevel.trim() === "" || !Number.isFinite(level) || level <= 0) {
    return { error: kind === "move" ? "Enter a move in %, more than 0" : "Enter a price, more than 0" };
  }
  if (kind === "move" && level > MAX_MOVE_PCT) return { error: `A move of at most ${MAX_MOVE_PCT} %` };
  return { id, ticker, kind, level, ref, createdAt: now, triggered: null };
}

/** Armed again from the price now. */
export function rearm(alert: PriceAlert, price: number | null): PriceAlert {
  return { ...alert, triggered: null, ref: price ?? alert.ref };
}

/** A hint when an alert cannot fire soon: a level already passed waits for a new crossing. */
export function pendingNote(alert: PriceAlert, price: number | null): string | null {
  if (alert.triggered || price === null || alert.kind === "move") return null;
  if (alert.kind === "above" && price >= alert.level) return "already above: fires when it crosses up again";
  if (alert.kind === "below" && price <= alert.level) return "already below: fires when it crosses down again";
  return null;
}

type Fmt = (v: number) => string;
const pct = (v: number) => `${v.toLocaleString("en-US", { maximumFractionDigits: 2 })} %`;

/** "Above 190.00", "Below 180.00", "Moves ±2 %". */
export function describeCondition(a: PriceAlert, price: Fmt): string {
  if (a.kind === "above") return `Above ${price(a.level)}`;
  if (a.kind === "below") return `Below ${price(a.level)}`;
  return `Moves ±${pct(a.level)}`;
}

/** What fired, in words: "AAPL rose above 190.00 (last 190.12)". */
export function describeTrigger(a: PriceAlert, price: Fmt): string {
  const t = a.triggered;
  if (!t) return `${a.ticker}: ${describeCondition(a, price)}`;
  if (a.kind === "above") return `${a.ticker} rose above ${price(a.level)} (last ${price(t.price)})`;
  if (a.kind === "below") return `${a.ticker} fell below ${price(a.level)} (last ${price(t.price)})`;
  const m = t.movePct;
  const moved = m === null ? "" : ` ${m >= 0 ? "+" : "−"}${pct(Math.abs(m))}`;
  return `${a.ticker} moved${moved} from the previous close (alert at ±${pct(a.level)}; last ${price(t.price)})`;
}
