// Price alerts (lib/alerts.ts) as lines on the chart: "above" and "below" at their level, a
// move alert as its two levels around the previous close (none while that is unknown). The
// armed ones solid, the triggered ones dashed.

import type { PriceAlert } from "../alerts";
import type { PriceLineSpec } from "./surface";

const ARMED = "#f0b429";
const FIRED = "#8d98a6";

export function alertLines(alerts: readonly PriceAlert[], ticker: string, prevClose: number | null): PriceLineSpec[] {
  const out: PriceLineSpec[] = [];
  for (const a of alerts) {
    if (a.ticker !== ticker) continue;
    const color = a.triggered ? FIRED : ARMED;
    const dashed = a.triggered !== null;
    if (a.kind === "above") out.push({ price: a.level, title: "Alert ↑", color, dashed });
    else if (a.kind === "below") out.push({ price: a.level, title: "Alert ↓", color, dashed });
    else if (prevClose !== null && Number.isFinite(prevClose) && prevClose > 0) {
      out.push({ price: prevClose * (1 + a.level / 100), title: `Alert +${a.level}%`, color, dashed });
      out.push({ price: prevClose * (1 - a.level / 100), title: `Alert −${a.level}%`, color, dashed });
    }
  }
  return out;
}

/** A key for a list of lines: the same key, the same lines. */
export const linesKey = (lines: readonly PriceLineSpec[]): string => lines.map((l) => `${l.price}|${l.title}|${l.color}|${l.dashed}`).join(";");
