import { describe, expect, it } from "vitest";
import { defaultDecimals, formatCount, formatPrice, formatSigned, formatVolume, validDecimals } from "../src/lib/format";
import { PrecisionBook, decimalsOfQuote } from "../src/lib/precision";
import type { Quote } from "../src/lib/types";

describe("formatPrice", () => {
  it("puts in thousands separators and follows the instrument's decimals", () => {
    expect(formatPrice(63334.74)).toBe("63,334.74");
    expect(formatPrice(1234567.891, 2)).toBe("1,234,567.89");
    expect(formatPrice(1.085234, 5)).toBe("1.08523");
    expect(formatPrice(1.1, 4)).toBe("1.1000");
    expect(formatPrice(0.123456)).toBe("0.1235"); // under 1, unknown precision: 4 places
    expect(formatPrice(189.1, 0)).toBe("189");
    expect(formatPrice(null)).toBe("—");
    expect(formatPrice(Number.NaN, 2)).toBe("—");
  });

  it("ignores a precision that is not a small whole number", () => {
    expect(formatPrice(12.345, 2.5)).toBe("12.35");
    expect(formatPrice(12.345, -1)).toBe("12.35");
    expect(validDecimals("2")).toBeNull();
    expect(validDecimals(11)).toBeNull();
    expect(validDecimals(5)).toBe(5);
    expect(defaultDecimals(0.5)).toBe(4);
  });
});

describe("formatSigned", () => {
  it("signs with a real minus, separates thousands, and never says −0.00", () => {
    expect(formatSigned(1234.5)).toBe("+1,234.50");
    expect(formatSigned(-0.00012, 4)).toBe("−0.0001");
    expect(formatSigned(-0.001)).toBe("0.00");
    expect(formatSigned(0.64, 2, "%")).toBe("+0.64%");
    expect(formatSigned(null)).toBe("—");
  });
});

describe("volumes", () => {
  it("abbreviates in columns and spells out in full elsewhere", () => {
    expect(formatVolume(123456)).toBe("123.5K");
    expect(formatVolume(83_201_478)).toBe("83.20M");
    expect(formatVolume(999)).toBe("999");
    expect(formatCount(83_201_478)).toBe("83,201,478");
    expect(formatCount(undefined)).toBe("—");
  });
});

describe("PrecisionBook", () => {
  const quote = (ticker: string, extra: Record<string, unknown> = {}): Quote => ({
    ticker,
    seq: 1,
    timestamp: 0,
    stale: false,
    receivedAt: 0,
    data: { price: 1.08, change: null, change_percent: null, volume: null, open: null, high: null, low: null, prev_close: null, market_time: null, ...extra },
  });

  it("keeps the last price_decimals seen per ticker (updates may leave it out)", () => {
    const book = new PrecisionBook();
    expect(book.get("EURUSD=X")).toBeNull();
    book.note(quote("EURUSD=X", { price_decimals: 5 }));
    book.note(quote("EURUSD=X")); // a price_update without it
    expect(book.get("EURUSD=X")).toBe(5);
    expect(decimalsOfQuote(quote("X", { price_decimals: "4" }))).toBeNull();
  });
});
