import { describe, expect, it } from "vitest";
import { describeChart } from "../src/lib/chart/describe";
import { ChartCache, rangeFor, viewOf } from "../src/lib/chartCache";
import type { Bar } from "../src/lib/types";

const bar = (time: number, close: number): Bar => ({ time, open: close, high: close, low: close, close, volume: 10 });

describe("ChartCache", () => {
  it("keeps the most recently used entries", () => {
    const c = new ChartCache(2);
    c.set("A|5m", { bars: [bar(1, 1)], view: null, preset: "5D", savedAt: 0 });
    c.set("B|5m", { bars: [], view: null, preset: "5D", savedAt: 0 });
    c.get("A|5m");
    c.set("C|5m", { bars: [], view: null, preset: "5D", savedAt: 0 });
    expect(c.get("B|5m")).toBeUndefined();
    expect(c.get("A|5m")?.bars).toHaveLength(1);
    expect(c.size).toBe(2);
    expect(ChartCache.key("AAPL", "1m")).toBe("AAPL|1m");
  });
});

describe("the view", () => {
  it("is kept counted from the newest bar, so new bars keep the same window", () => {
    const v = viewOf(200, { from: 150, to: 204 });
    expect(v).toEqual({ fromEnd: 50, toEnd: -4 });
    expect(rangeFor(203, v)).toEqual({ from: 153, to: 207 });
    expect(rangeFor(100, null)).toEqual({ from: 0, to: 104 });
    expect(rangeFor(400, null)).toEqual({ from: 250, to: 404 });
  });
});

describe("the chart's text alternative", () => {
  it("says the span, the last close and the range, with separators", () => {
    const zone = { tz: "America/New_York", label: "ET" };
    const t0 = Date.UTC(2025, 10, 24, 14, 30) / 1000;
    const text = describeChart("BTC-USD", "5m", [bar(t0, 63000), { ...bar(t0 + 300, 63334.74), high: 63500, low: 62900 }], 2, zone);
    expect(text).toBe(
      "BTC-USD 5m candlestick chart: 2 bars from 24 Nov, 09:30 ET to 24 Nov, 09:35 ET. Last close 63,334.74, +334.74 over the chart; low 62,900.00, high 63,500.00.",
    );
    expect(describeChart("AAPL", "1d", [], 2, zone)).toBe("AAPL 1D candlestick chart: no bars yet.");
  });
});
