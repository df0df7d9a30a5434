// The page's plain helpers: compact changes, search normalisation, URL state, the session
// quote line, shortcuts, last known quotes and the theme.
import { formatChange, reportedVolume } from "../src/lib/format";
import { parseLastKnown } from "../src/lib/lastKnown";
import { sessionQuoteParts, sessionTag } from "../src/lib/sessionQuote";
import { shortcutFor, step } from "../src/lib/shortcuts";
import { normalizeQuery } from "../src/lib/symbols";
import { effectiveTheme, toggledTheme } from "../src/lib/theme";
import type { QuoteData } from "../src/lib/types";
import { readUrlState, sameUrlState, writeUrlState } from "../src/lib/urlState";

describe("formatChange", () => {
  it("compacts thousands and never grows past 8 characters", () => {
    expect(formatChange(2294.1, 2)).toBe("+2.29K");
    expect(formatChange(-12_345.6, 2)).toBe("−12.35K");
    expect(formatChange(1_500_000, 2)).toBe("+1.50M");
    expect(formatChange(999_999, 2)).toBe("+1.00M");
    expect(formatChange(999.99, 2)).toBe("+999.99");
    expect(formatChange(1.25, 2)).toBe("+1.25");
    for (const v of [2294.1, -98_765.4, 0.00712, -0.00712, 999.999, 123_456_789]) expect(formatChange(v, 5).length).toBeLessThanOrEqual(8);
  });
  it("keeps at most 4 decimals (EUR/USD quotes in 5)", () => {
    expect(formatChange(-0.00712, 5)).toBe("−0.0071");
    expect(formatChange(0.00004, 5)).toBe("0.0000");
    expect(formatChange(null)).toBe("—");
  });
});

describe("reportedVolume", () => {
  it("an index or a currency pair has no volume of its own: 0 is nothing, not zero", () => {
    expect(reportedVolume("EURUSD=X", 0)).toBeNull();
    expect(reportedVolume("^DJI", 0)).toBeNull();
    expect(reportedVolume("^GSPC", 0)).toBeNull();
    expect(reportedVolume("AAPL", 0)).toBe(0);
    expect(reportedVolume("BTC-USD", 0)).toBe(0);
  });
  it("keeps any volume a source does report, and knows none when there is none", () => {
    expect(reportedVolume("EURUSD=X", 1200)).toBe(1200);
    expect(reportedVolume("^GSPC", 2_345_678_901)).toBe(2_345_678_901);
    expect(reportedVolume("AAPL", null)).toBeNull();
    expect(reportedVolume("AAPL", undefined)).toBeNull();
  });
});

describe("normalizeQuery", () => {
  it("asks a currency pair by its name, however it was typed", () => {
    for (const q of ["usdjpy", "USDJPY", "usd/jpy", "USD-JPY", "usd jpy", "USDJPY=X", " usdjpy=x "]) expect(normalizeQuery(q)).toBe("USD/JPY");
    expect(normalizeQuery("eurusd")).toBe("EUR/USD");
  });
  it("leaves anything else as typed (trimmed)", () => {
    expect(normalizeQuery("  apple  inc ")).toBe("apple inc");
    expect(normalizeQuery("AAPL")).toBe("AAPL");
    expect(normalizeQuery("abcdef")).toBe("abcdef"); // six letters, not two currencies
    expect(normalizeQuery("brk.b")).toBe("brk.b");
  });
});

describe("URL state", () => {
  it("reads valid values and drops the rest", () => {
    expect(readUrlState("?ticker=aapl&interval=15m&range=1m")).toEqual({ ticker: "AAPL", interval: "15m", range: "1M" });
    expect(readUrlState("?ticker=%3Cscript%3E&interval=7m&range=2Y")).toEqual({ ticker: null, interval: null, range: null });
    expect(readUrlState("")).toEqual({ ticker: null, interval: null, range: null });
  });
  it("writes the state and keeps the other parameters", () => {
    const s = writeUrlState("?token=abc&poll=5", { ticker: "JPY=X", interval: "1h", range: "6M" });
    expect(s).toBe("?token=abc&poll=5&ticker=JPY=X&interval=1h&range=6M");
    expect(readUrlState(s)).toEqual({ ticker: "JPY=X", interval: "1h", range: "6M" });
    expect(writeUrlState("?ticker=AAPL", { ticker: null, interval: null, range: null })).toBe("");
  });
  it("round-trips", () => {
    const st = { ticker: "^GSPC", interval: "5m" as const, range: "5D" as const };
    expect(sameUrlState(readUrlState(writeUrlState("", st)), st)).toBe(true);
  });
});

const data = (d: Partial<QuoteData>): QuoteData => ({
  price: 255.26,
  change: null,
  change_percent: null,
  volume: null,
  open: null,
  high: null,
  low: null,
  prev_close: 253.3,
  market_time: null,
  ...d,
});

describe("sessionQuoteParts", () => {
  it("after hours: at close from the previous close, after hours from the regular close", () => {
    const [close, after] = sessionQuoteParts(data({ session: "post", regular_close: 254.5, change: 1.96, change_percent: 0.77 }));
    expect(close).toMatchObject({ label: "At close", price: 254.5 });
    expect(close!.change).toBeCloseTo(1.2, 9);
    expect(close!.percent).toBeCloseTo((1.2 / 253.3) * 100, 9);
    expect(after).toMatchObject({ label: "After hours", price: 255.26 });
    expect(after!.change).toBeCloseTo(0.76, 9);
    expect(after!.percent).toBeCloseTo((0.76 / 254.5) * 100, 9);
  });
  it("pre-market: the change from the last regular close", () => {
    const parts = sessionQuoteParts(data({ session: "pre", price: 255.9, prev_close: 254.5, change: 1.4, change_percent: 0.55 }));
    expect(parts.map((p) => p.label)).toEqual(["At close", "Pre-market"]);
    expect(parts[1]).toMatchObject({ price: 255.9, change: 1.4, percent: 0.55 });
  });
  it("the regular session (or no session): the price and its change", () => {
    expect(sessionQuoteParts(data({ session: "regular", change: 1, change_percent: 0.4 }))).toEqual([
      { label: "", price: 255.26, change: 1, percent: 0.4 },
    ]);
    expect(sessionQuoteParts(data({}))).toHaveLength(1);
  });
  it("tags pre and post, not regular", () => {
    expect(sessionTag("pre")?.short).toBe("PRE");
    expect(sessionTag("post")?.short).toBe("AH");
    expect(sessionTag("regular")).toBeNull();
    expect(sessionTag(undefined)).toBeNull();
  });
});

describe("shortcuts", () => {
  const key = (k: string, extra: Partial<{ ctrlKey: boolean; target: EventTarget | null }> = {}) => ({
    key: k,
    ctrlKey: false,
    metaKey: false,
    altKey: false,
    target: document.body,
    ...extra,
  });
  it("maps keys to actions, not while typing or with a modifier", () => {
    expect(shortcutFor(key("j"))).toBe("next");
    expect(shortcutFor(key("?"))).toBe("help");
    expect(shortcutFor(key("]"))).toBe("interval-up");
    expect(shortcutFor(key("x"))).toBeNull();
    expect(shortcutFor(key("j", { ctrlKey: true }))).toBeNull();
    const input = document.createElement("input");
    expect(shortcutFor(key("j", { target: input }))).toBeNull();
    const checkbox = document.createElement("input");
    checkbox.type = "checkbox";
    expect(shortcutFor(key("j", { target: checkbox }))).toBe("next");
    expect(shortcutFor(key("t", { target: document.createElement("select") }))).toBeNull();
  });
  it("steps through a list, stopping at the ends", () => {
    expect(step(["a", "b", "c"], "b", 1)).toBe("c");
    expect(step(["a", "b", "c"], "c", 1)).toBe("c");
    expect(step(["a", "b", "c"], "a", -1)).toBe("a");
    expect(step(["a", "b"], "zz", 1)).toBe("a");
    expect(step([], "a", 1)).toBeNull();
  });
});

describe("last known quotes", () => {
  it("parses what was saved and drops anything malformed", () => {
    const q = { ticker: "AAPL", seq: 3, timestamp: 1, data: data({}), stale: false, receivedAt: 2 };
    const raw = JSON.stringify({ savedAt: 10, quotes: { AAPL: q, MSFT: { ticker: "MSFT" }, X: { ...q, ticker: "Y" } } });
    expect(parseLastKnown(raw)).toEqual({ savedAt: 10, quotes: { AAPL: q } });
    expect(parseLastKnown("{not json")).toBeNull();
    expect(parseLastKnown(JSON.stringify({ quotes: {} }))).toBeNull();
    expect(parseLastKnown(null)).toBeNull();
  });
});

describe("theme", () => {
  it("follows the system unless chosen", () => {
    expect(effectiveTheme("system", true)).toBe("light");
    expect(effectiveTheme("system", false)).toBe("dark");
    expect(effectiveTheme("dark", true)).toBe("dark");
    expect(toggledTheme("dark")).toBe("light");
    expect(toggledTheme("light")).toBe("dark");
  });
});
