// The crosshair legend (lib/chart/legend.ts): with the price scale in % (a comparison shown)
// it gives both series' change in % from their first bar in view, as the axis does, not a
// price; without, prices and the change from the bar before.
import { describe, expect, it } from "vitest";
import { legendFor, percentBase, type Compared } from "../src/lib/chart/legend";
import type { Bar } from "../src/lib/types";

const UTC = { tz: "UTC", label: "UTC" };
/** Tuesday 25 Nov 2025, 14:30 UTC, and 5m bars after it. */
const T0 = Date.UTC(2025, 10, 25, 14, 30) / 1000;
const at = (i: number) => T0 + i * 300;
const bar = (i: number, close: number): Bar => ({ time: at(i), open: close, high: close, low: close, close, volume: 10 });
const look = { ticker: "AAPL", interval: "5m" as const, decimals: 2, zone: UTC, market: "SIM" };

// AAPL 100, 102, 105, 99, 110; MSFT 40, 50, none at bar 2, 48, 55.
const bars = [100, 102, 105, 99, 110].map((c, i) => bar(i, c));
const msft: Compared = { ticker: "MSFT", byTime: new Map([0, 1, 3, 4].map((i, k) => [at(i), bar(i, [40, 50, 48, 55][k]!)])) };

describe("percentBase", () => {
  it("is the first whole bar in view, and the compared ticker's first bar at or after it", () => {
    expect(percentBase(bars, -0.5, msft)).toEqual({ time: at(0), close: 100, compared: 40 });
    expect(percentBase(bars, 0.5, msft)).toEqual({ time: at(1), close: 102, compared: 50 });
    expect(percentBase(bars, 1, msft)).toEqual({ time: at(1), close: 102, compared: 50 });
    // No MSFT bar at bar 2: its base is its next one (bar 3).
    expect(percentBase(bars, 1.5, msft)).toEqual({ time: at(2), close: 105, compared: 48 });
    expect(percentBase(bars, 1.5, null)).toEqual({ time: at(2), close: 105, compared: null });
    expect(percentBase(bars, 4.5, msft)).toBeNull();
    expect(percentBase([], 0, msft)).toBeNull();
  });
});

describe("legendFor", () => {
  it("without a % scale: prices, and the change from the bar before", () => {
    const l = legendFor(bars, null, look, msft);
    expect(l.text).toMatchObject({ name: "AAPL · 5m", c: "110.00", chg: "+11.00 (+11.11%)", cmp: "MSFT 55.00" });
    expect(l.trend).toBe("up");
  });

  it("on a % scale: both series in % from their first bar in view, the newest bar or the hovered one", () => {
    const base = percentBase(bars, 0.5, msft); // AAPL from 102, MSFT from 50
    let l = legendFor(bars, null, look, msft, base);
    // 110 / 102 − 1 = +7.84 %; 55 / 50 − 1 = +10.00 %.
    expect(l.text.chg).toBe("+7.84% since 25 Nov, 14:35 UTC");
    expect(l.text.cmp).toBe("MSFT +10.00%");
    expect(l.trend).toBe("up");
    // The prices of the bar stay (O H L C); the change is the axis's, not a price.
    expect(l.text.c).toBe("110.00");
    expect(l.text.cmp).not.toMatch(/\d\.\d\d$/);

    // Hovered bar 3: AAPL 99 / 102 − 1 = −2.94 %; MSFT 48 / 50 − 1 = −4.00 %.
    l = legendFor(bars, 3, look, msft, base);
    expect(l.text.chg).toBe("−2.94% since 25 Nov, 14:35 UTC");
    expect(l.text.cmp).toBe("MSFT −4.00%");
    expect(l.trend).toBe("down");

    // The base bar itself: 0 % for both; a bar MSFT has none for: a dash.
    l = legendFor(bars, 1, look, msft, base);
    expect(l.text.chg).toBe("0.00% since 25 Nov, 14:35 UTC");
    expect(l.text.cmp).toBe("MSFT 0.00%");
    expect(l.trend).toBe("flat");
    expect(legendFor(bars, 2, look, msft, base).text.cmp).toBe("MSFT —");
  });

  it("on a % scale with nothing of the compared ticker in view: its change is unknown", () => {
    const only: Compared = { ticker: "MSFT", byTime: new Map([[at(0), bar(0, 40)]]) };
    const base = percentBase(bars, 0.5, only);
    expect(base?.compared).toBeNull();
    expect(legendFor(bars, 0, look, only, base).text.cmp).toBe("MSFT —");
  });

  it("an index's volume of 0 is none, a stock's is zero", () => {
    const still = [bar(0, 100), { ...bar(1, 101), volume: 0 }];
    expect(legendFor(still, null, { ...look, ticker: "^DJI" }, null).text.v).toBe("—");
    expect(legendFor(still, null, look, null).text.v).toBe("0");
    expect(legendFor(still, 0, { ...look, ticker: "^DJI" }, null).text.v).toBe("10");
  });
});
