// The chart in exchange time (issue 25), against a real server with market hours on (the
// simulator trading XNYS's calendar) and no store (so every answer is the simulator's own),
// in Debian's Chromium at the four sizes (phone portrait and landscape, tablet, desktop: one
// page each, one server for all), the browser's zone Berlin's (so New York
// time is not the local one): the axis's date labels fall on the first bar of each New York
// session; 1D is one session, 5D five, 1Y a year of daily bars; hiding the extended hours
// leaves the regular bars only; the studies, line style, log scale and "go to latest" work on
// the real chart. Then the simulator stopped and started again answers the same history.
// Screenshots: test-results/chart-<size>-<what>.png.
import { join } from "node:path";
import type { Page } from "@playwright/test";
import { chromiumMissing, results, skipReason } from "./env";
import { expect, test } from "./fixtures";
import { StockfeedServer, freePort } from "./server";
import { VIEWPORTS, openDashboard, type Viewport } from "./ui";

test.describe.configure({ mode: "serial" });
test.skip(chromiumMissing, skipReason);

interface Bar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

interface Drawn {
  bars: Bar[];
  range: { from: number; to: number } | null;
  marks: { time: number; label: string }[];
  studies: Record<string, number>;
  log: boolean;
  shaded: number;
}

const drawn = (p: Page): Promise<Drawn> =>
  p.evaluate(() => {
    type Probe = {
      bars: () => Bar[];
      range: () => Drawn["range"];
      dateMarks: () => Drawn["marks"];
      studies: () => Record<string, number>;
      log: () => boolean;
      shaded: () => number;
    };
    const c = (document.querySelector('[data-testid="chart-canvas-box"]') as (HTMLElement & { stockfeedChart?: Probe }) | null)?.stockfeedChart;
    return c
      ? { bars: c.bars(), range: c.range(), marks: c.dateMarks(), studies: c.studies(), log: c.log(), shaded: c.shaded() }
      : { bars: [], range: null, marks: [], studies: {}, log: false, shaded: 0 };
  });

const NY_DATE = new Intl.DateTimeFormat("en-CA", { timeZone: "America/New_York", year: "numeric", month: "2-digit", day: "2-digit" });
const NY_LABEL = new Intl.DateTimeFormat("en-GB", { timeZone: "America/New_York", day: "2-digit", month: "short" });
const NY_MIN = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hour: "numeric", minute: "numeric", hourCycle: "h23" });
const nyDate = (sec: number) => NY_DATE.format(sec * 1000);
const nyMinutes = (sec: number) => {
  const [h, m] = NY_MIN.format(sec * 1000).split(":").map(Number);
  return h! * 60 + m!;
};
const regular = (sec: number) => nyMinutes(sec) >= 9 * 60 + 30 && nyMinutes(sec) < 16 * 60;

/** The bars in view (the range's whole bars). */
const inView = (d: Drawn) => d.bars.slice(Math.max(0, Math.ceil(d.range!.from)), Math.floor(d.range!.to) + 1);

/** The chart's own controls on screen (a phone folds them behind one button). */
async function showTools(page: Page): Promise<void> {
  const toggle = page.getByTestId("chart-tools-toggle");
  if ((await toggle.isVisible()) && (await toggle.getAttribute("aria-expanded")) !== "true") await toggle.click();
  await expect(page.getByTestId("chart-tools")).toBeVisible();
}

let hours: StockfeedServer;
const errors: string[] = [];

test.beforeAll(async () => {
  hours = new StockfeedServer(await freePort(), { name: "chart-sessions", marketHours: true, env: { STOCKFEED_STORE: "none" } });
  await hours.start();
});

test.afterAll(async () => {
  await hours?.stop();
});

async function open(browser: import("@playwright/test").Browser, vp: Viewport) {
  const opened = await openDashboard(browser, hours.url, vp, errors, async (page) => {
    await page.addInitScript(() => {
      localStorage.setItem("stockfeed.watchlist", JSON.stringify(["AAPL", "MSFT"]));
      localStorage.setItem("stockfeed.selected", JSON.stringify("AAPL"));
    });
  });
  await expect(opened.page.getByTestId("price-chart")).toHaveAttribute("data-ticker", "AAPL", { timeout: 15_000 });
  return opened;
}

for (const vp of VIEWPORTS) {
  test(`${vp.name}: date labels on New York session starts; 1D, 5D and 1Y count sessions and days`, async ({ browser }) => {
    test.setTimeout(120_000);
    const { context, page } = await open(browser, vp);
    const chart = page.getByTestId("price-chart");
    try {
      await page.getByTestId("range-5D").click();
      await page.getByTestId("interval-5m").click();
      await expect(chart).toHaveAttribute("data-preset", "5D");
      await expect.poll(async () => (await drawn(page)).bars.length, { timeout: 20_000 }).toBeGreaterThan(300);
      // The chart as it opens (on a phone its own controls folded behind one button).
      await page.screenshot({ path: join(results, `chart-${vp.name}-5d-open.png`) });
      // Extended hours shown (the default): pre- and post-market bars are there, shaded.
      await showTools(page);
      if ((await chart.getAttribute("data-extended")) !== "true") await page.getByTestId("extended-hours").click();
      await expect.poll(async () => (await drawn(page)).shaded, { timeout: 10_000 }).toBeGreaterThan(50);

      // 5D: five New York sessions in view, from the first bar of the fifth last.
      await expect.poll(async () => new Set(inView(await drawn(page)).map((b) => nyDate(b.time))).size, { timeout: 10_000 }).toBe(5);
      let d = await drawn(page);
      const dates = d.bars.map((b) => nyDate(b.time));
      const fifth = [...new Set(dates)].slice(-5)[0]!;
      expect(d.range!.from).toBe(Math.max(0, dates.indexOf(fifth) - 0.5));

      // The axis's date labels: each on a session's first bar, saying its New York date; none
      // at 00:00 UTC (19:00 or 20:00 in New York, inside a post-market).
      await expect.poll(async () => (await drawn(page)).marks.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
      d = await drawn(page);
      for (const m of d.marks) {
        const i = d.bars.findIndex((b) => b.time === m.time);
        expect(i, `a date label at ${m.time} is on a bar`).toBeGreaterThanOrEqual(0);
        if (i > 0) expect(nyDate(d.bars[i - 1]!.time), `the bar before the label "${m.label}" is another session's`).not.toBe(nyDate(m.time));
        expect(m.label).toBe(NY_LABEL.format(m.time * 1000));
        // The session's first bar: the pre-market's, from 04:00 New York time.
        expect(nyMinutes(m.time)).toBeGreaterThanOrEqual(4 * 60);
        expect(nyMinutes(m.time)).toBeLessThan(9 * 60 + 30);
      }
      await page.screenshot({ path: join(results, `chart-${vp.name}-5d.png`) });

      // 1D: the current (or last) session only, with room for all of it while under way.
      await page.getByTestId("range-1D").click();
      await expect(chart).toHaveAttribute("data-preset", "1D");
      await expect(chart).toHaveAttribute("data-interval", "5m");
      await expect.poll(async () => new Set(inView(await drawn(page)).map((b) => nyDate(b.time))).size).toBe(1);
      d = await drawn(page);
      const last = nyDate(d.bars[d.bars.length - 1]!.time);
      expect(inView(d).every((b) => nyDate(b.time) === last)).toBe(true);
      expect(d.range!.from).toBe(Math.max(0, d.bars.findIndex((b) => nyDate(b.time) === last) - 0.5));
      // Never a few giant candles: the view is at least a 16-hour session of 5m bars wide while
      // the session is under way (at most 16 · 12 bars after its open, plus the margin).
      expect(d.range!.to - d.range!.from).toBeGreaterThanOrEqual(Math.min(16 * 12, inView(d).length));

      // Extended hours hidden: regular bars only; 1D is the current or last regular session.
      await showTools(page);
      await page.getByTestId("extended-hours").click();
      await expect(chart).toHaveAttribute("data-extended", "false");
      await expect(page.getByTestId("extended-hours")).toHaveAttribute("aria-pressed", "false");
      await expect.poll(async () => (await drawn(page)).bars.every((b) => regular(b.time))).toBe(true);
      // One regular session in view (today's from its first bar at the open, as it arrives).
      await expect.poll(async () => new Set(inView(await drawn(page)).map((b) => nyDate(b.time))).size).toBe(1);
      d = await drawn(page);
      expect(d.shaded).toBe(0);
      await page.screenshot({ path: join(results, `chart-${vp.name}-1d-regular.png`) });
      await page.getByTestId("extended-hours").click();
      await expect(chart).toHaveAttribute("data-extended", "true");

      // 1Y: a year of daily bars (one per session at 00:00 UTC of its date), all in view.
      await page.getByTestId("range-1Y").click();
      await expect(chart).toHaveAttribute("data-interval", "1d");
      await expect.poll(async () => (await drawn(page)).bars.length, { timeout: 20_000 }).toBeGreaterThan(240);
      d = await drawn(page);
      expect(d.bars.length).toBeLessThan(260);
      expect(d.bars.every((b) => b.time % 86400 === 0)).toBe(true);
      expect(d.bars[d.bars.length - 1]!.time - d.bars[0]!.time).toBeGreaterThan(355 * 86400);
      expect(inView(d).length).toBeGreaterThan(d.bars.length * 0.95);
      await expect(page.getByTestId("study-vwap")).toBeDisabled();
      await page.screenshot({ path: join(results, `chart-${vp.name}-1y.png`) });
    } finally {
      await context.close();
    }
  });
}

test("desktop: studies, line style, log scale, alert lines, go to latest and full screen on the real chart", async ({ browser }) => {
  test.setTimeout(90_000);
  const { context, page } = await open(browser, VIEWPORTS.find((v) => v.name === "desktop")!);
  const chart = page.getByTestId("price-chart");
  try {
    await page.getByTestId("range-5D").click();
    await page.getByTestId("interval-5m").click();
    await expect.poll(async () => (await drawn(page)).bars.length, { timeout: 20_000 }).toBeGreaterThan(300);
    await showTools(page);
    for (const id of ["sma", "ema", "vwap"]) {
      const b = page.getByTestId(`study-${id}`);
      await b.click();
      await expect(b).toHaveAttribute("aria-pressed", "true");
    }
    const n = (await drawn(page)).bars.length;
    await expect.poll(async () => (await drawn(page)).studies).toMatchObject({ sma: n - 19, ema: n - 49 });
    // VWAP from each session's first bar that traded: at most one point per bar.
    expect((await drawn(page)).studies.vwap).toBeGreaterThan(n * 0.9);
    // The controls work from the keyboard: Enter and Space on a focused button.
    await page.getByTestId("style-area").focus();
    await page.keyboard.press("Enter");
    await expect(chart).toHaveAttribute("data-style", "area");
    await expect(page.getByTestId("style-area")).toHaveAttribute("aria-pressed", "true");
    await page.keyboard.press("Shift+Tab"); // to "Line"
    await page.keyboard.press("Space");
    await expect(chart).toHaveAttribute("data-style", "line");
    await page.getByTestId("scale-log").click();
    await expect.poll(async () => (await drawn(page)).log).toBe(true);
    // An alert on AAPL half a per cent above the last close: a line at its level.
    const bars = (await drawn(page)).bars;
    const level = Math.round(bars[bars.length - 1]!.close * 100.5) / 100;
    await page.evaluate((lv) => {
      const alerts = [{ id: "x", ticker: "AAPL", kind: "above", level: lv, ref: 1, createdAt: 0, triggered: null }];
      localStorage.setItem("stockfeed.alerts", JSON.stringify(alerts));
    }, level);
    await page.reload();
    await expect.poll(async () => (await drawn(page)).bars.length, { timeout: 20_000 }).toBeGreaterThan(300);
    const lines = () =>
      page.evaluate(() => {
        type Probe = { lines: () => { price: number; title: string }[] };
        return (document.querySelector('[data-testid="chart-canvas-box"]') as HTMLElement & { stockfeedChart?: Probe }).stockfeedChart?.lines() ?? [];
      });
    await expect.poll(lines).toContainEqual(expect.objectContaining({ price: level, title: "Alert ↑" }));
    // Kept across the reload: line style, log scale, the studies.
    await expect(chart).toHaveAttribute("data-style", "line");
    await expect(page.getByTestId("study-sma")).toHaveAttribute("aria-pressed", "true");
    await page.screenshot({ path: join(results, "chart-desktop-studies.png") });
    // Zoom in and drag the chart back: "go to latest" appears, and brings the newest bar back.
    const area = (await page.getByTestId("chart-canvas-box").boundingBox())!;
    const cx = area.x + area.width / 2;
    const cy = area.y + area.height / 2;
    await page.mouse.move(cx, cy);
    for (let i = 0; i < 5; i += 1) await page.mouse.wheel(0, -300);
    await page.mouse.down();
    await page.mouse.move(cx + 500, cy, { steps: 10 });
    await page.mouse.up();
    await expect(page.getByTestId("chart-latest")).toBeVisible();
    const zoom = (r: { from: number; to: number } | null) => (r ? Math.round(r.to - r.from) : 0);
    const width = zoom((await drawn(page)).range);
    await page.getByTestId("chart-latest").click();
    await expect(page.getByTestId("chart-latest")).toHaveCount(0);
    const d = await drawn(page);
    expect(d.range!.to).toBeGreaterThanOrEqual(d.bars.length - 1);
    expect(zoom(d.range), "the zoom kept").toBe(width);
    // Full screen (the API, or the fallback where the browser refuses it) and back.
    const fs = page.getByTestId("chart-fullscreen");
    await fs.click();
    await expect(chart).toHaveAttribute("data-fullscreen", "true");
    await expect(fs).toHaveAttribute("aria-pressed", "true");
    const size = await chart.boundingBox();
    expect(size!.width).toBeGreaterThan(1400);
    expect(size!.height).toBeGreaterThan(850);
    await fs.click();
    await expect(chart).toHaveAttribute("data-fullscreen", "false");
    // Without the Fullscreen API (iOS Safari on a phone): laid over the page; Escape leaves.
    await page.evaluate(() => {
      Object.defineProperty(Element.prototype, "requestFullscreen", { value: undefined, configurable: true });
    });
    await fs.click();
    await expect(chart).toHaveClass(/chart-full/);
    expect((await chart.boundingBox())!.width).toBe(1440);
    await page.keyboard.press("Escape");
    await expect(chart).toHaveAttribute("data-fullscreen", "false");
    await expect(chart).not.toHaveClass(/chart-full/);
    // Back to the defaults for the next tests' screens.
    await page.getByTestId("style-candles").click();
    await page.getByTestId("scale-log").click();
    for (const id of ["sma", "ema", "vwap"]) await page.getByTestId(`study-${id}`).click();
  } finally {
    await context.close();
  }
});

test("a restart of the simulator leaves its history unchanged", async () => {
  test.setTimeout(90_000);
  const get = async (q: string): Promise<Bar[]> => {
    const res = await fetch(`${hours.url}api/history/AAPL?${q}`);
    expect(res.ok, q).toBe(true);
    return ((await res.json()) as { bars: Bar[] }).bars;
  };
  const asks = ["interval=1d&range=1y", "interval=5m&range=5d", "interval=1h&range=1mo"];
  const before = await Promise.all(asks.map(get));
  await hours.stop();
  await hours.start();
  const after = await Promise.all(asks.map(get));
  asks.forEach((q, k) => {
    // Every bar but the newest (it may be forming): the same, to the last digit and share.
    const a = before[k]!.slice(0, -1);
    const b = after[k]!.filter((x) => x.time <= a[a.length - 1]!.time);
    expect(a.length, `${q}: bars`).toBeGreaterThan(20);
    expect(b, `${q}: the same bars after the restart`).toEqual(a);
  });
});

test("no uncaught errors in the pages", () => {
  expect(errors).toEqual([]);
});
