// The watchlist's pure parts: the session a sparkline draws, its geometry, sorting and moving
// rows, and the search's refusals in words.
import { describe, expect, it } from "vitest";
import { ApiError } from "../src/lib/api";
import { sameSeries, sessionCloses, sparkCloses, sparkGeometry } from "../src/lib/sparkline";
import { describeListing, searchErrorText } from "../src/lib/symbols";
import type { Quote } from "../src/lib/types";
import { isSort, moveTicker, MY_ORDER, nextSort, sortTickers } from "../src/lib/watchlistOrder";

const bar = (time: number, close: number) => ({ time, close });

describe("sessionCloses", () => {
  it("takes the bars after the last gap longer than an hour", () => {
    const yesterday = [bar(0, 1), bar(300, 2), bar(600, 3)];
    const today = [bar(600 + 17 * 3600, 10), bar(600 + 17 * 3600 + 300, 11), bar(600 + 17 * 3600 + 600, 12)];
    expect(sessionCloses([...yesterday, ...today])).toEqual([10, 11, 12]);
  });

  it("keeps a session with holes under an hour whole, and at most 78 bars of a market that never closes", () => {
    expect(sessionCloses([bar(0, 1), bar(3000, 2), bar(3300, 3)])).toEqual([1, 2, 3]);
    const crypto = Array.from({ length: 120 }, (_, i) => bar(i * 300, i));
    const closes = sessionCloses(crypto);
    expect(closes).toHaveLength(78);
    expect(closes[0]).toBe(42);
    expect(closes.at(-1)).toBe(119);
  });

  it("nothing in, nothing out; one bar is a session", () => {
    expect(sessionCloses([])).toEqual([]);
    expect(sessionCloses([bar(5, 7)])).toEqual([7]);
  });
});

describe("sparkGeometry", () => {
  it("spans the box, highest value at the top", () => {
    const g = sparkGeometry([1, 3, 2], 60, 20, null, 2);
    expect(g.points).toBe("0.0,18.0 30.0,2.0 60.0,10.0");
    expect(g.refY).toBeNull();
  });

  it("draws the previous close when it falls inside the range", () => {
    expect(sparkGeometry([1, 3], 60, 20, 2, 2).refY).toBe(10);
    expect(sparkGeometry([1, 3], 60, 20, 5, 2).refY).toBeNull();
  });

  it("a flat or single-value series is a level line in the middle", () => {
    expect(sparkGeometry([5, 5], 60, 20).points).toBe("0.0,10.0 60.0,10.0");
    expect(sparkGeometry([5], 60, 20).points).toBe("0,10.0 60,10.0");
    expect(sparkGeometry([], 60, 20).points).toBe("");
  });

  it("sameSeries compares value by value", () => {
    expect(sameSeries([1, 2], [1, 2])).toBe(true);
    expect(sameSeries([1, 2], [1, 3])).toBe(false);
    expect(sameSeries(undefined, [])).toBe(false);
  });
});

const quote = (ticker: string, change_percent: number | null, volume: number | null): Quote =>
  ({ ticker, seq: 1, timestamp: 1, stale: false, receivedAt: 1, data: { price: 1, change_percent, volume } }) as unknown as Quote;

describe("sorting and moving", () => {
  const tickers = ["MSFT", "AAPL", "TSLA", "NVDA"];
  const quotes = {
    MSFT: quote("MSFT", 0.5, 300),
    AAPL: quote("AAPL", -1.2, 900),
    TSLA: quote("TSLA", 2.4, 100),
  };

  it("my order is the list as stored", () => {
    expect(sortTickers(tickers, quotes, MY_ORDER)).toEqual(tickers);
  });

  it("by symbol, change % and volume, either way; no quote yet: last", () => {
    expect(sortTickers(tickers, quotes, { key: "symbol", dir: "asc" })).toEqual(["AAPL", "MSFT", "NVDA", "TSLA"]);
    expect(sortTickers(tickers, quotes, { key: "symbol", dir: "desc" })).toEqual(["TSLA", "NVDA", "MSFT", "AAPL"]);
    expect(sortTickers(tickers, quotes, { key: "change", dir: "desc" })).toEqual(["TSLA", "MSFT", "AAPL", "NVDA"]);
    expect(sortTickers(tickers, quotes, { key: "change", dir: "asc" })).toEqual(["AAPL", "MSFT", "TSLA", "NVDA"]);
    expect(sortTickers(tickers, quotes, { key: "volume", dir: "desc" })).toEqual(["AAPL", "MSFT", "TSLA", "NVDA"]);
  });

  it("a header pressed: its natural direction first, then the other", () => {
    expect(nextSort(MY_ORDER, "change")).toEqual({ key: "change", dir: "desc" });
    expect(nextSort({ key: "change", dir: "desc" }, "change")).toEqual({ key: "change", dir: "asc" });
    expect(nextSort(MY_ORDER, "symbol")).toEqual({ key: "symbol", dir: "asc" });
    expect(nextSort({ key: "volume", dir: "asc" }, "mine")).toEqual(MY_ORDER);
  });

  it("moves a ticker, clamped at the ends (the same list when nothing moves)", () => {
    expect(moveTicker(tickers, "TSLA", -1)).toEqual(["MSFT", "TSLA", "AAPL", "NVDA"]);
    expect(moveTicker(tickers, "MSFT", 1)).toEqual(["AAPL", "MSFT", "TSLA", "NVDA"]);
    expect(moveTicker(tickers, "MSFT", -1)).toBe(tickers);
    expect(moveTicker(tickers, "NVDA", 5)).toBe(tickers);
    expect(moveTicker(tickers, "XYZ", 1)).toBe(tickers);
  });

  it("a stored sort is read back only when well-formed", () => {
    expect(isSort({ key: "change", dir: "desc" })).toBe(true);
    expect(isSort({ key: "price", dir: "desc" })).toBe(false);
    expect(isSort({ key: "mine" })).toBe(false);
    expect(isSort(null)).toBe(false);
  });
});

describe("search words", () => {
  it("the server's own message for a refused query; 429 says wait", () => {
    expect(searchErrorText(new ApiError(422, "bad_request", "query.q: String should match pattern"))).toBe(
      "Not a valid search: query.q: String should match pattern",
    );
    expect(searchErrorText(new ApiError(429, "rate_limited", "slow down"))).toMatch(/^Too many searches: wait/);
    expect(searchErrorText(new ApiError(503, "source_unavailable", "relay only"))).toBe("Search unavailable: relay only");
    expect(searchErrorText(new TypeError("Failed to fetch"))).toMatch(/cannot be reached/);
  });

  it("where and what an instrument is", () => {
    expect(describeListing({ exchange: "NASDAQ", type: "equity" })).toBe("NASDAQ · Stock");
    expect(describeListing({ exchange: "CCY", type: "fx" })).toBe("CCY · FX");
  });
});

describe("sparkCloses", () => {
  const bar = (time: number, close: number) => ({ time, close });
  // Yesterday: 20 bars 5 minutes apart; then a night's gap; today starts at 100,000.
  const yesterday = Array.from({ length: 20 }, (_, i) => bar(i * 300, 50 + i));
  const today = (n: number) => Array.from({ length: n }, (_, i) => bar(100_000 + i * 300, 90 + i));

  it("the previous session, marked, while today has fewer than 6 bars", () => {
    const early = sparkCloses([...yesterday, ...today(2)]);
    expect(early.previous).toBe(true);
    expect([...early]).toEqual(yesterday.map((b) => b.close));
  });
  it("today's own line from its 6th bar on", () => {
    const later = sparkCloses([...yesterday, ...today(6)]);
    expect(later.previous).toBeUndefined();
    expect([...later]).toEqual([90, 91, 92, 93, 94, 95]);
  });
  it("today's few bars when there is no longer previous session", () => {
    expect([...sparkCloses(today(3))]).toEqual([90, 91, 92]);
    expect([...sparkCloses([bar(0, 1), ...today(3)])]).toEqual([90, 91, 92]);
    expect(sparkCloses([])).toEqual([]);
  });
  it("a previous-session series differs from today's with the same closes", () => {
    const prev = sparkCloses([...yesterday, ...today(1)]);
    expect(sameSeries(prev, [...prev])).toBe(false);
    expect(sameSeries(prev, sparkCloses([...yesterday, ...today(1)]))).toBe(true);
  });
});
