// The chart's candles are the server's bars (issue 13), against a real server in Debian's
// Chromium: a 1m chart, the server stopped mid-minute and started again on the same port.
// Afterwards the chart's last bars equal the server's (`/api/history`), with no hole and
// no flat candle; then the same while polling by choice (bars over REST). Then the chart's
// other readouts: range presets apart from the bar size, a comparison on a % scale, and
// (on a second server with market hours on) pre/post-market shading.
// Screenshots: test-results/bars-after-restart.png, bars-compare.png, bars-sessions.png.
import { join } from "node:path";
import type { BrowserContext, Page } from "@playwright/test";
import { chromiumMissing, results, skipReason } from "./env";
import { expect, test } from "./fixtures";
import { StockfeedServer, freePort } from "./server";
import { VIEWPORTS, openDashboard } from "./ui";

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

const desktopVp = VIEWPORTS.find((v) => v.name === "desktop")!;
const errors: string[] = [];
let page: Page;
let context: BrowserContext;
let ticker = "";

const chartBars = (p: Page): Promise<Bar[]> =>
  p.evaluate(() => {
    const box = document.querySelector('[data-testid="chart-canvas-box"]') as (HTMLElement & { stockfeedChart?: { bars: () => Bar[] } }) | null;
    return box?.stockfeedChart?.bars() ?? [];
  });

async function serverBars(url: string): Promise<Bar[]> {
  // 5 days: right after midnight UTC the simulator's day (range=1d) holds a bar or two.
  const res = await fetch(`${url}api/history/${ticker}?interval=1m&range=5d`);
  expect(res.ok).toBe(true);
  const body = (await res.json()) as { bars: (Omit<Bar, "volume"> & { volume: number | null })[] };
  return body.bars.map((b) => ({ time: b.time, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume ?? 0 }));
}

/** The last `n` bars: one a minute (the simulator trades every minute here), none flat. */
function checkShape(bars: Bar[], n: number): void {
  const tail = bars.slice(-n);
  expect(tail).toHaveLength(n);
  for (let i = 1; i < tail.length; i += 1) expect(tail[i]!.time - tail[i - 1]!.time, `no hole before bar ${i}`).toBe(60);
  // The forming bar may have seen one tick only; the finished ones have a range.
  for (const b of tail.slice(0, -1)) expect(b.high > b.low || b.open !== b.close, `bar ${b.time} is not flat`).toBe(true);
}

/** Chart and server agree on the last `n` bars (the forming one too: retried as it moves). */
async function agree(url: string, n: number, finalOnly = false): Promise<Bar[]> {
  let last: { chart: Bar[]; server: Bar[] } = { chart: [], server: [] };
  await expect
    .poll(
      async () => {
        const server = await serverBars(url);
        const chart = await chartBars(page);
        const cut = (list: Bar[]) => (finalOnly ? list.filter((b) => b.time < server[server.length - 1]!.time) : list).slice(-n);
        last = { chart: cut(chart), server: cut(server) };
        return JSON.stringify(last.chart) === JSON.stringify(last.server);
      },
      { timeout: 20_000, intervals: [250] },
    )
    .toBe(true)
    .catch(() => {
      expect(last.chart, "the chart's last bars").toEqual(last.server);
    });
  return last.chart;
}

test.beforeAll(async ({ browser, server }) => {
  ({ context, page } = await openDashboard(browser, server.url, desktopVp, errors));
  await page.getByTestId("range-5D").click();
  await page.getByTestId("interval-1m").click();
  await expect(page.getByTestId("price-chart")).toHaveAttribute("data-preset", "5D");
  await expect(page.getByTestId("price-chart")).toHaveAttribute("data-interval", "1m");
  ticker = (await page.getByTestId("price-chart").getAttribute("data-ticker")) ?? "";
  expect(ticker).not.toBe("");
  await expect.poll(async () => (await chartBars(page)).length, { timeout: 15_000 }).toBeGreaterThan(10);
});

test.afterAll(async () => {
  await context?.close();
});

test("live: the chart's last bars are the server's", async ({ server }) => {
  const bars = await agree(server.url, 6);
  checkShape(bars, 6);
});

test("server stopped mid-minute and started again: the chart's last bars equal the server's, no hole, no flat candle", async ({ server }) => {
  // Mid-minute: between 5 s and 35 s past the minute.
  const second = () => Math.floor(Date.now() / 1000) % 60;
  if (second() < 5 || second() > 35) await page.waitForTimeout((((65 - second()) % 60) + 1) * 1000);
  const stoppedAt = Date.now();
  await server.stop();
  await expect(page.getByTestId("connection-status")).not.toHaveAttribute("data-state", "connected", { timeout: 5_000 });
  await page.waitForTimeout(4_000);
  await server.start();
  await expect(page.getByTestId("connection-status")).toHaveAttribute("data-state", "connected", { timeout: 30_000 });
  const bars = await agree(server.url, 6);
  checkShape(bars, 6);
  // The minute of the outage is among them, whole.
  expect(bars.some((b) => b.time <= stoppedAt / 1000 && stoppedAt / 1000 < b.time + 60)).toBe(true);
  await page.screenshot({ path: join(results, "bars-after-restart.png") });
});

test("polling by choice: bars over REST, the same as the server's, no flat candles", async ({ server }) => {
  await page.getByTestId("realtime-toggle").click();
  await expect(page.getByTestId("connection-status")).toHaveAttribute("data-kind", "polling-manual");
  // Two polls (3 s apart here), so the bars on screen came over REST.
  await page.waitForTimeout(6_500);
  const bars = await agree(server.url, 6, true);
  checkShape(bars, 6);
  await page.getByTestId("realtime-toggle").click();
  await expect(page.getByTestId("connection-status")).toHaveAttribute("data-state", "connected", { timeout: 15_000 });
});

interface Drawn {
  bars: Bar[];
  shaded: number;
  compared: { ticker: string; bars: number } | null;
  percent: boolean;
}

/** What the chart has drawn (its controller's probe, `stockfeedChart` on the chart's box). */
const drawn = (p: Page): Promise<Drawn> =>
  p.evaluate(() => {
    type Chart = { bars: () => Bar[]; shaded: () => number; compared: () => Drawn["compared"]; percent: () => boolean };
    const c = (document.querySelector('[data-testid="chart-canvas-box"]') as (HTMLElement & { stockfeedChart?: Chart }) | null)?.stockfeedChart;
    return c ? { bars: c.bars(), shaded: c.shaded(), compared: c.compared(), percent: c.percent() } : { bars: [], shaded: 0, compared: null, percent: false };
  });

test("range presets: each goes with its bar sizes; 1Y is a year of daily bars; 1D is the current session", async () => {
  const chart = page.getByTestId("price-chart");
  await page.getByTestId("range-1Y").click();
  await expect(chart).toHaveAttribute("data-preset", "1Y");
  await expect(chart).toHaveAttribute("data-interval", "1d"); // a year is drawn in daily bars
  // The simulator without market hours trades every UTC day: ~366 daily bars.
  await expect.poll(async () => (await chartBars(page)).length, { timeout: 15_000 }).toBeGreaterThan(360);
  const all = await chartBars(page);
  expect(all[all.length - 1]!.time - all[0]!.time).toBeGreaterThan(360 * 86400);
  await expect.poll(async () => Number(await chart.getAttribute("data-bars-in-view"))).toBeGreaterThan(all.length * 0.95);
  await page.getByTestId("range-1D").click();
  await expect(chart).toHaveAttribute("data-interval", "15m"); // the nearest bar size 1D goes with
  // One UTC day of 15m bars (96) in view, whatever the hour now.
  await expect
    .poll(async () => {
      const n = Number(await chart.getAttribute("data-bars-in-view"));
      return n >= 96 && n < 96 + 8 ? "one day" : n;
    })
    .toBe("one day");
  // A finer bar size shortens a preset it does not go with.
  await page.getByTestId("range-1M").click();
  await page.getByTestId("interval-1m").click();
  await expect(chart).toHaveAttribute("data-preset", "5D");
});

test("compare: a second ticker as a line, both on a % scale; the legend reads both", async () => {
  const select = page.getByTestId("compare-select");
  const other = await select.locator("option").nth(1).getAttribute("value");
  expect(other).toBeTruthy();
  await select.selectOption(other!);
  await expect.poll(() => drawn(page).then((d) => d.compared), { timeout: 15_000 }).toMatchObject({ ticker: other });
  await expect.poll(() => drawn(page).then((d) => d.compared?.bars ?? 0), { timeout: 15_000 }).toBeGreaterThan(100);
  expect(await drawn(page).then((d) => d.percent)).toBe(true);
  const box = page.getByTestId("chart-canvas-box");
  await box.focus();
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.press("ArrowLeft");
  // The axis is in %: the legend says both series' change in % from their first bar in view.
  await expect(page.getByTestId("legend-compare")).toHaveText(new RegExp(`^${other!.replace(/[.^=-]/g, "\\$&")} [+−]?\\d+\\.\\d\\d%$`));
  await expect(page.locator('[data-testid="chart-legend"] [data-f="chg"]')).toHaveText(/^[+−]?\d+\.\d\d% since /);
  await page.screenshot({ path: join(results, "bars-compare.png") });
  await select.selectOption("");
  await expect.poll(() => drawn(page).then((d) => d.percent)).toBe(false);
  await expect(page.getByTestId("legend-compare")).toHaveText("");
});

test("sessions: with market hours on, pre- and post-market bars of US equities are shaded, and named in the legend", async ({ browser }) => {
  const hours = new StockfeedServer(await freePort(), { name: "market-hours", marketHours: true });
  await hours.start();
  const own: string[] = [];
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, timezoneId: "America/New_York" });
  try {
    const p = await ctx.newPage();
    p.on("pageerror", (e) => own.push(e.message));
    await p.addInitScript(() => {
      localStorage.setItem("stockfeed.watchlist", JSON.stringify(["AAPL"]));
    });
    await p.goto(`${hours.url}?poll=3&probe=2`);
    const chart = p.getByTestId("price-chart");
    await expect(chart).toHaveAttribute("data-ticker", "AAPL", { timeout: 15_000 });
    await p.getByTestId("range-5D").click();
    await p.getByTestId("interval-5m").click();
    // Five days of 5m bars hold several pre- and post-markets, whatever the hour now.
    await expect.poll(() => drawn(p).then((d) => d.shaded), { timeout: 20_000 }).toBeGreaterThan(50);
    const { shaded, bars } = await drawn(p);
    expect(shaded).toBeLessThan(bars.length); // the regular sessions are not
    // Walk back to a bar well inside a pre-market (04:30-09:00 New York time): the legend
    // names its session.
    const ny = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hour: "numeric", minute: "numeric", hourCycle: "h23" });
    const preMarket = (b: Bar) => {
      const [h, m] = ny.format(b.time * 1000).split(":").map(Number);
      return h! * 60 + m! >= 4 * 60 + 30 && h! * 60 + m! <= 9 * 60;
    };
    let idx = bars.length - 1;
    while (idx >= 0 && !preMarket(bars[idx]!)) idx -= 1;
    expect(idx).toBeGreaterThanOrEqual(0);
    await p.getByTestId("chart-canvas-box").focus();
    await p.keyboard.press("End");
    for (let left = bars.length - 1 - idx; left > 0; left -= left >= 10 ? 10 : 1) await p.keyboard.press(left >= 10 ? "Shift+ArrowLeft" : "ArrowLeft");
    await expect(p.getByTestId("chart-legend").locator('[data-f="sess"]')).toHaveText(/Pre-market|After hours/);
    await p.screenshot({ path: join(results, "bars-sessions.png") });
  } finally {
    await ctx.close();
    await hours.stop();
  }
  expect(own).toEqual([]);
});

test("no uncaught errors in the page", () => {
  expect(errors).toEqual([]);
});
