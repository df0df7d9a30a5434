// SMA, EMA and VWAP against values worked out by hand (each case says how), and the chart's
// studies built on them.
import { describe, expect, it } from "vitest";
import { alertLines, linesKey } from "../src/lib/chart/alertLines";
import { isChartDisplay } from "../src/lib/chart/display";
import { studyPoints, studyValues } from "../src/lib/chart/studies";
import { ema, sma, vwap } from "../src/lib/indicators";
import type { PriceAlert } from "../src/lib/alerts";
import { sessionCalendar } from "../src/lib/sessions";

describe("SMA", () => {
  it("the mean of the last n closes, none before n", () => {
    // (1+2+3)/3 = 2, (2+3+4)/3 = 3, (3+4+5)/3 = 4.
    expect(sma([1, 2, 3, 4, 5], 3)).toEqual([null, null, 2, 3, 4]);
    // Period 1 is the closes themselves; too few closes, no value.
    expect(sma([7, 8], 1)).toEqual([7, 8]);
    expect(sma([7, 8], 3)).toEqual([null, null]);
  });
  it("a running sum does not drift: 10,000 closes of 0.1 average 0.1", () => {
    const out = sma(new Array<number>(10_000).fill(0.1), 20);
    expect(out[9_999]).toBeCloseTo(0.1, 12);
  });
  it("refuses a period that is not a whole number of bars", () => {
    expect(() => sma([1], 0)).toThrow(RangeError);
    expect(() => ema([1], 2.5)).toThrow(/whole number/);
  });
});

describe("EMA", () => {
  it("seeded with the SMA of the first n closes, then α·close + (1−α)·previous", () => {
    // n = 3: α = 2/4 = 0.5. Seed (2+4+6)/3 = 4; then 0.5·8 + 0.5·4 = 6; 0.5·10 + 0.5·6 = 8.
    expect(ema([2, 4, 6, 8, 10], 3)).toEqual([null, null, 4, 6, 8]);
    // n = 2: α = 2/3. Seed (10+11)/2 = 10.5; then (2/3)·12 + (1/3)·10.5 = 8 + 3.5 = 11.5;
    // then (2/3)·9 + (1/3)·11.5 = 6 + 3.8333… = 9.8333….
    const out = ema([10, 11, 12, 9], 2);
    expect(out.slice(0, 3)).toEqual([null, 10.5, 11.5]);
    expect(out[3]).toBeCloseTo(9 + 5 / 6, 12);
    expect(ema([1, 2], 3)).toEqual([null, null]);
  });
});

describe("VWAP", () => {
  const bar = (time: number, high: number, low: number, close: number, volume: number) => ({ time, high, low, close, volume });
  it("Σ(typical·volume)/Σvolume from each session's first bar", () => {
    // Session 1: typical (11+9+10)/3 = 10 with 100; (12+10+11)/3 = 11 with 300:
    // (10·100 + 11·300)/400 = 4300/400 = 10.75. Session 2 starts again: (21+19+20)/3 = 20.
    const bars = [bar(1, 11, 9, 10, 100), bar(2, 12, 10, 11, 300), bar(101, 21, 19, 20, 50)];
    expect(vwap(bars, (t) => Math.floor(t / 100))).toEqual([10, 10.75, 20]);
  });
  it("none until the session has traded volume (an index has none)", () => {
    const bars = [bar(1, 11, 9, 10, 0), bar(2, 12, 10, 11, 0), bar(3, 14, 12, 13, 10)];
    expect(vwap(bars, () => 0)).toEqual([null, null, 13]);
  });
});

describe("the chart's studies", () => {
  const bars = Array.from({ length: 25 }, (_, i) => ({ time: 1000 + i * 60, open: 1, high: i + 2, low: i, close: i + 1, volume: 10 }));
  it("SMA 20 from the 20th bar on; points only where there is a value", () => {
    const values = studyValues("sma", bars, sessionCalendar("SIM", 60));
    // Closes 1..20 average 10.5; the 25th bar's last 20 closes are 6..25: 15.5.
    expect(values[19]).toBe(10.5);
    expect(values[24]).toBe(15.5);
    const points = studyPoints(bars, values);
    expect(points).toHaveLength(6);
    expect(points[0]).toEqual({ time: bars[19]!.time, value: 10.5 });
  });
  it("VWAP over one UTC day of the simulator: every bar's typical price is its close here", () => {
    // high = close + 1, low = close − 1: the typical price is the close; equal volumes, so
    // VWAP is the mean of the closes so far: bar 3's (1+2+3)/3 = 2.
    expect(studyValues("vwap", bars, sessionCalendar("SIM", 60))[2]).toBe(2);
  });
});

describe("alert lines", () => {
  const alert = (over: Partial<PriceAlert>): PriceAlert => ({ id: "a", ticker: "AAPL", kind: "above", level: 200, ref: 190, createdAt: 0, triggered: null, ...over });
  it("above and below at their level, a move alert around the previous close, the triggered dashed", () => {
    const lines = alertLines(
      [
        alert({ kind: "above", level: 200 }),
        alert({ kind: "below", level: 180, triggered: { at: 1, price: 179, movePct: null } }),
        alert({ kind: "move", level: 5 }),
        alert({ ticker: "MSFT", level: 400 }),
      ],
      "AAPL",
      100,
    );
    // 100 · 1.05 = 105, 100 · 0.95 = 95.
    expect(lines.map((l) => [l.price, l.dashed])).toEqual([
      [200, false],
      [180, true],
      [105, false],
      [95, false],
    ]);
    expect(alertLines([alert({ kind: "move", level: 5 })], "AAPL", null)).toEqual([]);
    expect(linesKey(lines)).toBe(linesKey(alertLines([alert({ kind: "above", level: 200 })], "AAPL", 100).concat(lines.slice(1))));
  });
});

describe("display choices read back", () => {
  it("keeps a valid one, drops anything else", () => {
    expect(isChartDisplay({ style: "area", studies: ["sma", "vwap"], log: true, extended: false })).toBe(true);
    expect(isChartDisplay({ style: "bars", studies: [], log: false, extended: true })).toBe(false);
    expect(isChartDisplay({ style: "line", studies: ["rsi"], log: false, extended: true })).toBe(false);
    expect(isChartDisplay({ style: "line", studies: ["sma", "sma"], log: false, extended: true })).toBe(false);
    expect(isChartDisplay(null)).toBe(false);
  });
});
