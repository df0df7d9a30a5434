import { describe, expect, it } from "vitest";
import { BarList, toBar } from "../src/lib/candles";

const T0 = 1_795_653_000; // a 5-minute boundary (epoch s)
const bar = (time: number, close: number, volume: number | null = 10) => ({ time, open: 10, high: Math.max(10, close), low: Math.min(10, close), close, volume });

describe("BarList", () => {
  it("the forming bar's upsert and a new bar are tail updates", () => {
    const list = new BarList([toBar(bar(T0 - 300, 11)), toBar(bar(T0, 10.5))]);
    expect(list.apply([bar(T0, 10.9, 12)])).toEqual({ kind: "tail", bars: [toBar(bar(T0, 10.9, 12))] });
    expect(list.apply([bar(T0 + 300, 9)])).toEqual({ kind: "tail", bars: [toBar(bar(T0 + 300, 9))] });
    expect(list.bars.map((b) => b.time)).toEqual([T0 - 300, T0, T0 + 300]);
  });

  it("a repeated bar that did not change costs nothing", () => {
    const list = new BarList([toBar(bar(T0 - 300, 11)), toBar(bar(T0, 10.5))]);
    expect(list.apply([bar(T0 - 300, 11), bar(T0, 10.5)])).toEqual({ kind: "none" });
  });

  it("a bar further back that changed, or a missing one, redraws everything, in time order", () => {
    const list = new BarList([toBar(bar(T0 - 600, 11)), toBar(bar(T0, 10.5))]);
    expect(list.apply([bar(T0 - 300, 12)])).toEqual({ kind: "reset" });
    expect(list.bars.map((b) => b.time)).toEqual([T0 - 600, T0 - 300, T0]);
    expect(list.apply([bar(T0 - 600, 9)])).toEqual({ kind: "reset" });
    expect(list.bars[0]!.close).toBe(9);
  });

  it("a whole series in any order, onto an empty list; null volume is drawn as 0", () => {
    const list = new BarList();
    const change = list.apply([bar(T0 + 300, 9), bar(T0, 10, null)]);
    expect(change.kind).toBe("tail");
    expect(list.bars.map((b) => [b.time, b.volume])).toEqual([
      [T0, 0],
      [T0 + 300, 10],
    ]);
  });

  it("lays fresh history over what was drawn, by time, keeping newer live bars (a chart back from the cache)", () => {
    const flat = (time: number, close: number) => ({ time, open: close, high: close, low: close, close, volume: 10 });
    const drawn = new BarList([flat(60, 1), flat(120, 2), flat(180, 3)].map(toBar));
    drawn.apply([flat(0, 0.5), flat(60, 1.1), flat(120, 2.2)]);
    expect(drawn.bars.map((b) => [b.time, b.close])).toEqual([
      [0, 0.5],
      [60, 1.1],
      [120, 2.2],
      [180, 3],
    ]);
    const empty = new BarList();
    empty.apply([flat(0, 0.5), flat(60, 1.1), flat(120, 2.2)]);
    expect(empty.bars).toHaveLength(3);
    const kept = new BarList([flat(60, 1), flat(120, 2), flat(180, 3)].map(toBar));
    expect(kept.apply([])).toEqual({ kind: "none" });
    expect(kept.bars).toHaveLength(3);
  });
});
