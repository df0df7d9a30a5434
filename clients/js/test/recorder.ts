// What a client passed on, per ticker, and the two promises the client makes checked:
// no duplicate (a ticker's seq only goes up within an epoch) and no silent gap (every
// jump is a gap snapshot, or announced by a `conflated` notice).
import type { StockfeedClient } from "../src/client.js";
import type { ServerMessage } from "../src/messages.js";

export interface Seen {
  type: "price_update" | "snapshot";
  seq: number;
  gap: boolean;
  conflated: boolean;
}

export class Recorder {
  readonly seen = new Map<string, Seen[]>();
  readonly messages: ServerMessage[] = [];
  readonly gaps: string[] = [];
  readonly states: string[] = [];
  private conflated = new Set<string>();

  constructor(client: StockfeedClient) {
    client.on("message", (m) => {
      this.messages.push(m);
      if (m.type === "conflated") this.conflated.add(m.ticker);
      if (m.type !== "price_update" && m.type !== "snapshot") return;
      const list = this.seen.get(m.ticker) ?? [];
      list.push({ type: m.type, seq: m.seq, gap: m.type === "snapshot" && m.gap === true, conflated: this.conflated.delete(m.ticker) });
      this.seen.set(m.ticker, list);
    });
    client.on("gap", (g) => this.gaps.push(g.ticker));
    client.on("state", (info) => {
      if (this.states.at(-1) !== info.state) this.states.push(info.state);
    });
  }

  count(ticker: string): number {
    return this.seen.get(ticker)?.length ?? 0;
  }

  /** Everything wrong with what `ticker` got: duplicates and silent jumps. */
  problems(ticker: string): string[] {
    const out: string[] = [];
    const list = this.seen.get(ticker) ?? [];
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const cur = list[i]!;
      if (cur.gap) continue; // the history broke here, and the client said so
      if (cur.seq <= prev.seq) out.push(`duplicate or older: seq ${cur.seq} after ${prev.seq}`);
      else if (cur.seq !== prev.seq + 1 && !cur.conflated) out.push(`silent gap: seq ${prev.seq} -> ${cur.seq}`);
    }
    return out;
  }
}
