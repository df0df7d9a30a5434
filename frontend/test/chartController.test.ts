// The chart controller (lib/chart/ChartController.ts) against a recording surface, a fake
// feed and history the test answers: what it draws and when, what it asks the feed for, what
// it keeps, what the legend and the keyboard do. The browser tests (e2e/bars.spec.ts) drive
// the same class over the real lightweight-charts.
import { beforeEach, describe, expect, it } from "vitest";
import { ChartController, DEFAULT_DISPLAY, type ChartLook, type ChartSource, type ChartState } from "../src/lib/chart/ChartController";
import { timeAxis } from "../src/lib/chart/axis";
import type { Legend } from "../src/lib/chart/legend";
import { DARK, paletteFrom } from "../src/lib/chart/palette";
import { ChartCache, rangeFor } from "../src/lib/chartCache";
import type { Interval } from "../src/lib/candles";
import { presetView, type RangePreset } from "../src/lib/ranges";
import { sessionCalendar } from "../src/lib/sessions";
import { FakeFeed, FakeSurface, Histories, settle, wire } from "./chartFakes";

const ET = { tz: "America/New_York", label: "ET" };
const UTC = { tz: "UTC", label: "UTC" };
/** Monday 24 Nov 2025, 09:30 New York time: the regular session's first 5m bar. */
const T0 = Date.UTC(2025, 10, 24, 14, 30) / 1000;
/** 08:00 and 16:30 New York time, that day. */
const PRE = Date.UTC(2025, 10, 24, 13, 0) / 1000;
const POST = Date.UTC(2025, 10, 24, 21, 30) / 1000;
const at = (i: number) => T0 + i * 300;
const closes = (bars: readonly { close: number }[]) => bars.map((b) => b.close);

/** The view's context as the controller gives it for look() and 5m bars (now: 1000 ms). */
const VIEW = { calendar: sessionCalendar("SIM", 300), intervalSec: 300, now: 1 };

let surface: FakeSurface;
let feed: FakeFeed;
let histories: Histories;
let cache: ChartCache;
let legends: Legend[];
let states: ChartState[];
let inView: number[];
let chart: ChartController;

const look = (over: Partial<ChartLook> = {}): ChartLook => ({ decimals: 2, zone: ET, market: "SIM", ...over });
const source = (ticker = "AAPL", interval: Interval = "5m", preset: RangePreset = "5D"): ChartSource => ({
  ticker,
  interval,
  preset,
  feed,
  history: histories.load,
});
const legend = () => legends[legends.length - 1]!;
const state = () => states[states.length - 1]!;

/** A chart as the shell starts one: the look, then AAPL 5m 5D, live. */
function start(src = source(), lk = look()): void {
  chart.setLook(lk);
  chart.show(src);
  chart.setLive(true);
}

/** The history of `ticker` answered with `n` bars from T0, closes 101, 102, … */
async function answer(ticker: string, n: number, from = 0): Promise<void> {
  histories.last(ticker).answer(Array.from({ length: n }, (_, i) => wire(at(from + i), 101 + from + i)));
  await settle();
}

beforeEach(() => {
  surface = new FakeSurface();
  feed = new FakeFeed();
  histories = new Histories();
  cache = new ChartCache();
  legends = [];
  states = [];
  inView = [];
  chart = new ChartController(surface, {
    showLegend: (l) => legends.push(l),
    onState: (s) => states.push(s),
    onBarsInView: (n) => inView.push(n),
    cache,
    now: () => 1000,
  });
});

describe("bars", () => {
  it("draws the history, the feed's held bars laid over it, and the preset's span in view", async () => {
    start();
    expect(state()).toMatchObject({ loading: true, error: null });
    expect(histories.last("AAPL")).toMatchObject({ interval: "5m", preset: "5D" });
    expect(feed.held.get("AAPL 5m")).toBe(1);
    // The feed has the newest bar (changed since the history was built) and one more.
    feed.hold("AAPL", "5m", [wire(at(4), 99), wire(at(5), 98)]);
    await answer("AAPL", 5);
    expect(closes(surface.bars)).toEqual([101, 102, 103, 104, 99, 98]);
    expect(surface.range).toEqual(presetView(surface.bars.map((b) => b.time), "5D", VIEW));
    expect(inView[inView.length - 1]).toBe(Math.round(surface.range!.to - surface.range!.from));
    expect(state()).toMatchObject({ loading: false, error: null });
    expect(state().summary).toMatch(/^AAPL 5m candlestick chart: 6 bars from 24 Nov, 09:30 ET to 24 Nov, 09:55 ET\. Last close 98\.00/);
    expect(chart.probe.bars()).toEqual(surface.bars);
  });

  it("takes live bars once the history is drawn: the newest in place, a new one appended, an older change redraws", async () => {
    start();
    feed.send("AAPL", "5m", [wire(at(3), 110)]);
    expect(surface.bars, "nothing before the history: the store is read with it").toEqual([]);
    await answer("AAPL", 3);
    expect(closes(surface.bars)).toEqual([101, 102, 103, 110]);
    const redraws = surface.redraws;

    feed.send("AAPL", "5m", [wire(at(3), 111)]);
    feed.send("AAPL", "5m", [wire(at(4), 112)]);
    expect(closes(surface.bars)).toEqual([101, 102, 103, 111, 112]);
    expect(surface.redraws, "the forming and a new bar are updates").toBe(redraws);
    expect(surface.updates).toBe(2);

    feed.send("AAPL", "5m", [wire(at(1), 90)]);
    expect(closes(surface.bars)).toEqual([101, 90, 103, 111, 112]);
    expect(surface.redraws).toBe(redraws + 1);

    // Another ticker's or interval's bars are not ours.
    feed.send("MSFT", "5m", [wire(at(5), 1)]);
    feed.send("AAPL", "1m", [wire(at(5), 1)]);
    expect(surface.bars).toHaveLength(5);
  });

  it("paused: lets go of the bars and takes none; live again: asks for them again", async () => {
    start();
    await answer("AAPL", 3);
    chart.setLive(false);
    expect(feed.held.size).toBe(0);
    feed.send("AAPL", "5m", [wire(at(3), 120)]);
    expect(surface.bars).toHaveLength(3);
    chart.setLive(true);
    expect(feed.held.get("AAPL 5m")).toBe(1);
    feed.send("AAPL", "5m", [wire(at(3), 121)]);
    expect(closes(surface.bars)).toEqual([101, 102, 103, 121]);
  });

  it("a history that fails: live bars only, said so; one that fails over cached bars: not refreshed", async () => {
    start();
    feed.hold("AAPL", "5m", [wire(at(0), 101)]);
    histories.last("AAPL").fail(new Error("503 busy"));
    await settle();
    expect(state()).toMatchObject({ loading: false, error: "History not refreshed: 503 busy." });
    expect(surface.bars).toHaveLength(1);

    chart.show(source("MSFT"));
    histories.last("MSFT").fail(new Error("404 unknown"));
    await settle();
    expect(state()).toMatchObject({ loading: false, error: "No history: 404 unknown. Live bars only." });
  });

  it("a newer source wins: the older history request is aborted and its answer not drawn", async () => {
    start();
    const first = histories.last("AAPL");
    chart.show(source("MSFT"));
    expect(first.signal.aborted).toBe(true);
    expect(feed.held.has("AAPL 5m")).toBe(false);
    expect(feed.held.get("MSFT 5m")).toBe(1);
    first.answer([wire(at(0), 500)]);
    await answer("MSFT", 2);
    expect(closes(surface.bars)).toEqual([101, 102]);
    // The same source again changes nothing (no request, no redraw).
    const asked = histories.asked.length;
    chart.show(source("MSFT"));
    expect(histories.asked).toHaveLength(asked);
  });
});

describe("the cache", () => {
  it("switching back shows the bars and the zoom at once, then lays fresh history over them", async () => {
    start();
    await answer("AAPL", 200);
    surface.setVisibleRange({ from: 150, to: 204 }); // the user zooms: 50 back to 4 past the end
    chart.show(source("MSFT"));
    expect(cache.get(ChartCache.key("AAPL", "5m"))).toMatchObject({ view: { fromEnd: 50, toEnd: -4 }, preset: "5D", savedAt: 1000 });
    await answer("MSFT", 3);

    chart.show(source("AAPL"));
    expect(surface.bars).toHaveLength(200);
    expect(surface.range).toEqual({ from: 150, to: 204 });
    expect(state()).toMatchObject({ loading: false });
    expect(state().summary).toMatch(/^AAPL 5m candlestick chart: 200 bars/);
    // Cached bars are live at once (no wait for the history).
    feed.send("AAPL", "5m", [wire(at(200), 1)]);
    expect(surface.bars).toHaveLength(201);
    // The fresh history has two more bars: the view moves with the newest bar.
    await answer("AAPL", 202);
    expect(surface.bars).toHaveLength(202);
    expect(surface.range).toEqual(rangeFor(202, { fromEnd: 51, toEnd: -3 }));
  });

  it("another preset on the way back shows its own span, not the saved zoom", async () => {
    start();
    await answer("AAPL", 400);
    surface.setVisibleRange({ from: 10, to: 20 });
    chart.show(source("AAPL", "5m", "1D"));
    const times = surface.bars.map((b) => b.time);
    expect(surface.range).toEqual(presetView(times, "1D", VIEW));
    await answer("AAPL", 400);
    expect(surface.range).toEqual(presetView(times, "1D", VIEW));
  });
});

describe("the legend", () => {
  it("reads the newest bar, or the one under the mouse: OHLC, volume, change from the bar before", async () => {
    start(source(), look({ decimals: 3 }));
    await answer("AAPL", 3);
    expect(legend()).toMatchObject({ hovered: "", trend: "up" });
    expect(legend().text).toMatchObject({ name: "AAPL · 5m", time: "24 Nov, 09:40 ET", c: "103.000", v: "10", chg: "+1.000 (+0.98%)", sess: "", cmp: "" });
    surface.hover(0);
    expect(legend()).toMatchObject({ hovered: String(at(0)), text: { o: "100.000", c: "101.000", chg: "+1.000 (+1.00%)" } });
    surface.hover(7); // past the bars
    expect(legend().hovered).toBe("");
    // A live bar under a crosshair far back leaves the legend alone.
    surface.hover(0);
    const n = legends.length;
    feed.send("AAPL", "5m", [wire(at(3), 90)]);
    expect(legends).toHaveLength(n);
    // ... and is shown at once when the legend follows the newest bar.
    surface.hover(null);
    feed.send("AAPL", "5m", [wire(at(3), 80)]);
    expect(legend()).toMatchObject({ trend: "down", text: { c: "80.000" } });
  });

  it("follows the look: decimals, zone, daily dates", async () => {
    start();
    await answer("AAPL", 2);
    chart.setLook(look({ decimals: 4, zone: UTC }));
    expect(surface.decimals).toBe(4);
    expect(legend().text).toMatchObject({ time: "24 Nov, 14:35 UTC", c: "102.0000" });
    chart.show(source("AAPL", "1d", "1Y"));
    await answer("AAPL", 1);
    expect(legend().text).toMatchObject({ name: "AAPL · 1D", time: "24 Nov 25" });
  });
});

describe("the keyboard", () => {
  beforeEach(async () => {
    start();
    await answer("AAPL", 30);
    surface.setVisibleRange({ from: 10, to: 34 });
  });

  it("arrows walk the crosshair (Shift: 10 bars), Home and End go to the ends, Escape leaves", () => {
    expect(chart.key("ArrowLeft", false)).toBe(true); // first press: the newest bar
    expect(surface.crosshair?.time).toBe(at(29));
    expect(legend().hovered).toBe(String(at(29)));
    chart.key("ArrowLeft", false);
    chart.key("ArrowLeft", true);
    expect(surface.crosshair?.time).toBe(at(18));
    expect(legend().hovered, "the crosshair's own move did not reset the legend").toBe(String(at(18)));
    chart.key("ArrowRight", true);
    chart.key("ArrowRight", true);
    expect(surface.crosshair?.time).toBe(at(29));
    expect(chart.key("Home", false)).toBe(true);
    expect(surface.crosshair?.time).toBe(at(0));
    expect(surface.range, "the bar is brought into view").toEqual({ from: -2, to: 22 });
    chart.key("End", false);
    expect(surface.range).toEqual({ from: 7, to: 31 });
    expect(chart.key("Escape", false)).toBe(false);
    expect(surface.crosshair).toBeNull();
    expect(legend().hovered).toBe("");
    expect(chart.key("a", false)).toBe(false);
  });

  it("leaving the chart takes away a crosshair the keyboard put there, not the mouse's", () => {
    chart.key("Home", false);
    chart.blur();
    expect(surface.crosshair).toBeNull();
    expect(legend().hovered).toBe("");
    surface.hover(3);
    const n = legends.length;
    chart.blur();
    expect(legends).toHaveLength(n);
  });

  it("without bars the keys do nothing", () => {
    chart.show(source("MSFT"));
    expect(chart.key("ArrowLeft", false)).toBe(false);
  });
});

describe("session shading", () => {
  it("shades pre- and post-market bars of US equities, and names them in the legend", async () => {
    start(source(), look({ market: "XNYS" }));
    histories.last("AAPL").answer([wire(PRE, 101), wire(T0, 102), wire(POST, 103)]);
    await settle();
    expect(surface.sessions).toEqual(["pre", "regular", "post"]);
    expect(chart.probe.shaded()).toBe(2);
    expect(legend().text.sess).toBe("After hours");
    // A new live bar gets its band.
    feed.send("AAPL", "5m", [wire(POST + 300, 104)]);
    expect(surface.sessions).toEqual(["pre", "regular", "post", "post"]);
  });

  it("none for another market or daily bars; a market known later shades what is there", async () => {
    start();
    histories.last("AAPL").answer([wire(PRE, 101), wire(T0, 102)]);
    await settle();
    expect(surface.sessions).toEqual([]);
    chart.setLook(look({ market: "XNYS" }));
    expect(surface.sessions).toEqual(["pre", "regular"]);
    chart.show(source("AAPL", "1d", "1Y"));
    expect(surface.sessions).toEqual([]);
  });
});

describe("the comparison", () => {
  it("draws the other ticker's closes on a % scale, takes its live bars, and goes away whole", async () => {
    start();
    await answer("AAPL", 3);
    chart.setCompare("MSFT");
    expect(surface.isPercent).toBe(true);
    expect(feed.held.get("MSFT 5m")).toBe(1);
    expect(chart.probe.compared()).toEqual({ ticker: "MSFT", bars: 0 });
    histories.last("MSFT").answer([wire(at(1), 50), wire(at(2), 51)]);
    await settle();
    const line = surface.liveLines[0]!;
    expect(line.title).toBe("MSFT");
    expect(line.points).toEqual([
      { time: at(1), value: 50 },
      { time: at(2), value: 51 },
    ]);
    // The scale is in %: the legend too, from each series' first bar in view (AAPL 101, MSFT 50).
    expect(legend().text.cmp).toBe("MSFT +2.00%");
    expect(legend().text.chg).toBe("+1.98% since 24 Nov, 09:30 ET");
    surface.hover(0);
    expect(legend().text.cmp).toBe("MSFT —");
    // Panned: measured from the new first bar in view (AAPL 103 at bar 2, MSFT 51).
    surface.setVisibleRange({ from: 1.5, to: 8 });
    expect(legend().text).toMatchObject({ chg: "−1.94% since 24 Nov, 09:40 ET", cmp: "MSFT —" });
    surface.hover(2);
    expect(legend().text).toMatchObject({ chg: "0.00% since 24 Nov, 09:40 ET", cmp: "MSFT 0.00%" });
    surface.setVisibleRange({ from: -0.5, to: 8 });
    feed.send("MSFT", "5m", [wire(at(3), 52)]);
    expect(line.points.map((p) => p.value)).toEqual([50, 51, 52]);
    expect(chart.probe.compared()).toEqual({ ticker: "MSFT", bars: 3 });

    chart.setLive(false);
    expect(feed.held.has("MSFT 5m")).toBe(false);
    feed.send("MSFT", "5m", [wire(at(3), 60)]);
    expect(line.points.map((p) => p.value)).toEqual([50, 51, 52]);
    chart.setLive(true);

    chart.setCompare(null);
    expect(line.removed).toBe(true);
    expect(surface.isPercent).toBe(false);
    expect(feed.held.has("MSFT 5m")).toBe(false);
    expect(legend().text.cmp).toBe("");
    expect(chart.probe.compared()).toBeNull();
  });

  it("follows the chart to another ticker or interval, and is none against itself", async () => {
    start();
    chart.setCompare("MSFT");
    chart.show(source("AAPL", "1h", "1M"));
    expect(surface.liveLines).toHaveLength(1);
    expect(surface.lines[0]!.removed).toBe(true);
    expect(histories.last("MSFT")).toMatchObject({ interval: "1h", preset: "1M" });
    expect(feed.held.get("MSFT 1h")).toBe(1);
    expect(feed.held.has("MSFT 5m")).toBe(false);
    chart.show(source("MSFT", "1h", "1M"));
    expect(surface.liveLines).toHaveLength(0);
    expect(surface.isPercent).toBe(false);
  });
});

describe("the rest", () => {
  it("the previous close is a line, moved when it changes, gone when unknown", () => {
    start();
    chart.setPrevClose(99.5);
    chart.setPrevClose(99.5);
    expect(surface.prevCloses).toEqual([99.5]);
    chart.setPrevClose(100);
    expect(surface.prevCloses).toEqual([100]);
    chart.setPrevClose(null);
    chart.setPrevClose(Number.NaN);
    expect(surface.prevCloses).toEqual([]);
  });

  it("dispose keeps the bars in the cache, lets go of everything and removes the chart", async () => {
    start();
    chart.setCompare("MSFT");
    await answer("AAPL", 4);
    chart.dispose();
    expect(cache.get(ChartCache.key("AAPL", "5m"))?.bars).toHaveLength(4);
    expect(feed.held.size).toBe(0);
    expect(feed.listeners).toBe(0);
    expect(surface.listeners).toBe(0);
    expect(surface.removed).toBe(true);
    expect(histories.last("MSFT").signal.aborted).toBe(true);
  });

  it("the time axis: times of day in the zone, dates for daily bars", () => {
    const intraday = timeAxis(ET, "5m", sessionCalendar("XNYS", 300));
    expect(intraday.timeVisible).toBe(true);
    expect(intraday.tickLabel(T0, "time")).toBe("09:30");
    expect(intraday.tickLabel(T0, "day")).toBe("24 Nov");
    expect(intraday.tickLabel(T0, "year")).toBe("2025");
    expect(intraday.crosshairLabel(T0)).toBe("24 Nov, 09:30 ET");
    const daily = timeAxis(ET, "1d", sessionCalendar("XNYS", 86400));
    const monday = Date.UTC(2025, 10, 24) / 1000; // a daily bar: 00:00 UTC of its date
    expect(daily.timeVisible).toBe(false);
    expect(daily.tickLabel(monday, "day")).toBe("24 Nov");
    expect(daily.crosshairLabel(monday)).toBe("24 Nov 25");
  });
});

describe("display choices", () => {
  /** A 5m XNYS chart with a pre-market bar, the regular session's and a post-market bar. */
  async function sessions(): Promise<void> {
    start(source(), look({ market: "XNYS" }));
    histories.last("AAPL").answer([wire(PRE, 90), ...Array.from({ length: 30 }, (_, i) => wire(at(i), 101 + i)), wire(POST, 95)]);
    await settle();
  }

  it("extended hours hidden: the regular bars only, no shading; live pre/post bars are not drawn", async () => {
    await sessions();
    expect(surface.bars).toHaveLength(32);
    expect(surface.shaded()).toBe(2);
    chart.setDisplay({ ...DEFAULT_DISPLAY, extended: false });
    expect(surface.bars).toHaveLength(30);
    expect(surface.bars.every((b) => b.time >= T0 && b.time < POST)).toBe(true);
    expect(surface.shaded()).toBe(0);
    expect(chart.probe.bars()).toHaveLength(30);
    // A post-market bar arrives: kept in the series, not drawn; a regular one is.
    feed.send("AAPL", "5m", [wire(POST + 300, 96)]);
    expect(surface.bars).toHaveLength(30);
    feed.send("AAPL", "5m", [wire(at(29), 140)]);
    expect(surface.bars[29]!.close).toBe(140);
    // Shown again: every bar, the post-market ones too.
    chart.setDisplay(DEFAULT_DISPLAY);
    expect(surface.bars).toHaveLength(33);
    expect(surface.shaded()).toBe(3);
  });

  it("extended hours hidden: the compared ticker's pre/post bars are left out too", async () => {
    await sessions();
    chart.setDisplay({ ...DEFAULT_DISPLAY, extended: false });
    chart.setCompare("MSFT");
    histories.last("MSFT").answer([wire(PRE, 50), wire(at(0), 51), wire(at(1), 52), wire(POST, 53)]);
    await settle();
    expect(surface.liveLines.map((l) => l.points.map((p) => p.value))).toEqual([[51, 52]]);
    feed.send("MSFT", "5m", [wire(POST + 300, 54)]);
    expect(surface.liveLines[0]!.points).toHaveLength(2);
    // Shown again: the comparison is drawn afresh with every bar.
    chart.setDisplay(DEFAULT_DISPLAY);
    histories.last("MSFT").answer([wire(PRE, 50), wire(at(0), 51), wire(at(1), 52), wire(POST, 53)]);
    await settle();
    expect(surface.liveLines.map((l) => l.points.length)).toEqual([5]);
  });

  it("1D at the open: the view the preset set moves on to the new session; one the user chose stays", async () => {
    // Friday's regular session (the 21 Nov 2025 bars), then Monday's first bar arrives live.
    const FRI = T0 - 3 * 86400;
    start(source("AAPL", "5m", "1D"), look({ market: "XNYS" }));
    chart.setDisplay({ ...DEFAULT_DISPLAY, extended: false });
    histories.last("AAPL").answer(Array.from({ length: 78 }, (_, i) => wire(FRI + i * 300, 100 + i)));
    await settle();
    expect(surface.range!.from).toBe(0);
    feed.send("AAPL", "5m", [wire(T0, 200)]);
    expect(surface.range!.from).toBe(77.5);
    expect(surface.range!.to - surface.range!.from).toBeGreaterThanOrEqual(78);
    // The user pans back; the next session's bar does not pull the view.
    surface.setVisibleRange({ from: 10, to: 60 });
    feed.send("AAPL", "5m", [wire(T0 + 86400, 201)]);
    expect(surface.range).toEqual({ from: 10, to: 60 });
  });

  it("a market with one session ignores the choice", async () => {
    start();
    await answer("AAPL", 10);
    chart.setDisplay({ ...DEFAULT_DISPLAY, extended: false });
    expect(surface.bars).toHaveLength(10);
  });

  it("studies: a line each, updated with the newest bar; VWAP not on daily bars", async () => {
    start();
    await answer("AAPL", 60);
    chart.setDisplay({ ...DEFAULT_DISPLAY, studies: ["sma", "ema", "vwap"] });
    const byTitle = () => Object.fromEntries(surface.liveLines.map((l) => [l.title, l]));
    expect(Object.keys(byTitle()).sort()).toEqual(["EMA 50", "SMA 20", "VWAP"]);
    // Closes 101..160: SMA 20 from the 20th bar (41 points), EMA 50 from the 50th (11).
    expect(byTitle()["SMA 20"]!.points).toHaveLength(41);
    expect(byTitle()["EMA 50"]!.points).toHaveLength(11);
    expect(byTitle()["SMA 20"]!.points[40]!.value).toBe((141 + 160) / 2);
    expect(chart.probe.studies()).toEqual({ sma: 41, ema: 11, vwap: 60 });
    // The newest bar: each line's last point moves, no redraw.
    const redraws = byTitle()["SMA 20"]!.redraws;
    feed.send("AAPL", "5m", [wire(at(60), 181)]);
    expect(byTitle()["SMA 20"]!.points).toHaveLength(42);
    // The last 20 closes: 142..160 (sum (142 + 160) · 19 / 2 = 2869) and 181: 3050 / 20.
    expect(byTitle()["SMA 20"]!.points[41]!.value).toBe(152.5);
    expect(byTitle()["SMA 20"]!.redraws).toBe(redraws);
    chart.setDisplay({ ...DEFAULT_DISPLAY, studies: ["ema"] });
    expect(Object.keys(byTitle())).toEqual(["EMA 50"]);
    chart.show(source("AAPL", "1d", "1Y"));
    chart.setDisplay({ ...DEFAULT_DISPLAY, studies: ["vwap"] });
    expect(surface.liveLines).toHaveLength(0);
  });

  it("the page's colours: from its CSS variables (dark where unset), drawn again only when changed", () => {
    const vars: Record<string, string> = { "--panel": "#ffffff", "--muted": " #56606c", "--line": "#cfd6df" };
    const light = paletteFrom((n) => vars[n] ?? "");
    expect(light).toEqual({ background: "#ffffff", text: "#56606c", grid: "#1a2029", border: "#cfd6df" });
    expect(paletteFrom(() => "")).toEqual(DARK);
    chart.setPalette(light);
    chart.setPalette({ ...light });
    chart.setPalette(DARK);
    expect(surface.palettes).toEqual([light, DARK]);
  });

  it("style and log scale reach the surface", () => {
    start();
    chart.setDisplay({ ...DEFAULT_DISPLAY, style: "area", log: true });
    expect(surface.style).toBe("area");
    expect(surface.log()).toBe(true);
    expect(chart.probe.log()).toBe(true);
  });

  it("alert levels as price lines, replaced when they change", () => {
    start();
    chart.setPrevClose(100);
    chart.setLevels([{ price: 120, title: "Alert ↑", color: "#f0b429", dashed: false }]);
    expect(surface.priceLines.map((l) => l.price)).toEqual([100, 120]);
    chart.setLevels([{ price: 90, title: "Alert ↓", color: "#f0b429", dashed: false }]);
    expect(surface.priceLines.map((l) => l.price)).toEqual([100, 90]);
    chart.setLevels([]);
    expect(surface.prevCloses).toEqual([100]);
    expect(chart.probe.lines().map((l) => l.title)).toEqual(["Prev close"]);
  });

  it("\"go to latest\" is offered while the newest bar is out of view", async () => {
    start();
    await answer("AAPL", 100);
    expect(state().away).toBe(false);
    surface.setVisibleRange({ from: 10, to: 50 });
    expect(state().away).toBe(true);
    // Back to the newest bar, the zoom (40 bars) kept, 4 bars of room on the right.
    chart.goToLatest();
    expect(surface.range).toEqual({ from: 63, to: 103 });
    expect(state().away).toBe(false);
  });
});
