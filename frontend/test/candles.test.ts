import { describe, expect, it } from "vitest";
import { bucketStart, CandleBuilder } from "../src/lib/candles";

const T0 = 1_795_653_000; // a 5-minute boundary (epoch s): 1795653000 % 300 === 0

describe("bucketStart", () => {
  it("floors to the interval", () => {
    expect(T0 % 300).toBe(0);
    expect(bucketStart(T0 + 299, "5m")).toBe(T0);
    expect(bucketStart(T0 + 300, "5m")).toBe(T0 + 300);
    expect(bucketStart(T0 + 59, "1m")).toBe(T0);
    expect(bucketStart(T0 + 10, "1d")).toBe(T0 - (T0 % 86400));
  });
});

describe("CandleBuilder", () => {
  const history = [
    { time: T0 - 300, open: 10, high: 11, low: 9, close: 10.5, volume: 100 },
    { time: T0, open: 10.5, high: 10.6, low: 10.4, close: 10.5, volume: 50 },
  ];

  it("replaces the forming candle for a tick in the same bucket", () => {
    const b = new CandleBuilder("5m");
    b.load(history);
    const r1 = b.apply((T0 + 10) * 1000, 10.9, 1000);
    expect(r1).toEqual({ kind: "replace", bar: { time: T0, open: 10.5, high: 10.9, low: 10.4, close: 10.9, volume: 50 } });
    const r2 = b.apply((T0 + 20) * 1000, 10.2, 1012);
    expect(r2).toEqual({ kind: "replace", bar: { time: T0, open: 10.5, high: 10.9, low: 10.2, close: 10.2, volume: 62 } });
  });

  it("appends a candle for a tick in a later bucket", () => {
    const b = new CandleBuilder("5m");
    b.load(history);
    b.apply((T0 + 10) * 1000, 10.9, 1000);
    const r = b.apply((T0 + 300) * 1000, 11, 1005);
    expect(r).toEqual({ kind: "append", bar: { time: T0 + 300, open: 11, high: 11, low: 11, close: 11, volume: 5 } });
    expect(b.current?.time).toBe(T0 + 300);
  });

  it("ignores a tick older than the forming candle and keeps its state", () => {
    const b = new CandleBuilder("5m");
    b.load(history);
    b.apply((T0 + 10) * 1000, 10.9, 1000);
    expect(b.apply((T0 - 1) * 1000, 1, 2000)).toEqual({ kind: "ignore" });
    // The late tick changed neither the candle nor the volume baseline.
    const r = b.apply((T0 + 30) * 1000, 10.8, 1001);
    expect(r).toEqual({ kind: "replace", bar: { time: T0, open: 10.5, high: 10.9, low: 10.4, close: 10.8, volume: 51 } });
  });

  it("starts from nothing and treats a smaller day volume as a new day", () => {
    const b = new CandleBuilder("1m");
    expect(b.apply(T0 * 1000, 5, 500)).toMatchObject({ kind: "append", bar: { volume: 0, open: 5 } });
    expect(b.apply((T0 + 60) * 1000, 6, 20)).toMatchObject({ kind: "append", bar: { time: T0 + 60, volume: 20 } });
    expect(b.apply((T0 + 61) * 1000, 6.5, null)).toMatchObject({ kind: "replace", bar: { volume: 20, close: 6.5 } });
  });
});
