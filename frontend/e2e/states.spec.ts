// Honest states, against a real server in Debian's Chromium, on a desktop and a phone at once:
// a ticker the server marks stale, marked in its price cell; polling by choice; paused by the user; the socket
// blocked while REST works (reconnecting, then polling automatically); the server killed
// (reconnecting within 1 s, then "server unreachable" with the time of the last good data
// once polling fails too); the server back (live again, one reconnection counted).
// Screenshots: test-results/states-<state>-<size>.png.
import { join } from "node:path";
import type { BrowserContext, Page, WebSocketRoute } from "@playwright/test";
import { chromiumMissing, results, skipReason } from "./env";
import { expect, test } from "./fixtures";
import { VIEWPORTS, openDashboard } from "./ui";

test.describe.configure({ mode: "serial" });
test.skip(chromiumMissing, skipReason);

const desktopVp = VIEWPORTS.find((v) => v.name === "desktop")!;
const phoneVp = VIEWPORTS.find((v) => v.name === "phone-portrait")!;
const errors: string[] = [];
let desk: Page;
let phone: Page;
const contexts: BrowserContext[] = [];

// The desktop page's socket goes through this route: passed through, blocked, or filtered.
const route = {
  block: false,
  dropTicker: null as string | null,
  current: null as WebSocketRoute | null,
  /** The last market_status naming each ticker, and the last quote's publish time. */
  statuses: new Map<string, Record<string, unknown>>(),
  published: new Map<string, number>(),
};

async function routeSocket(page: Page): Promise<void> {
  await page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
    if (route.block) {
      void ws.close({ code: 1011, reason: "blocked by the test" });
      return;
    }
    route.current = ws;
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      if (typeof m === "string" && m.includes('"ticker"')) {
        try {
          const msg = JSON.parse(m) as { type?: string; ticker?: string; timestamp?: number };
          if (msg.ticker && msg.type === "market_status") route.statuses.set(msg.ticker, msg as Record<string, unknown>);
          if (msg.ticker && (msg.type === "price_update" || msg.type === "snapshot")) {
            if (msg.ticker === route.dropTicker) return;
            route.published.set(msg.ticker, Number(msg.timestamp));
          }
        } catch {
          /* pass it on */
        }
      }
      ws.send(m);
    });
  });
}

const dot = (p: Page) => p.getByTestId("connection-status");
const prices = async (p: Page) => (await p.locator('[data-testid^="price-"]:not([data-testid="price-chart"])').allTextContents()).join("|");
const shot = (p: Page, name: string) => p.screenshot({ path: join(results, `states-${name}.png`) });

test.beforeAll(async ({ browser, server }) => {
  const d = await openDashboard(browser, server.url, desktopVp, errors, routeSocket);
  const m = await openDashboard(browser, server.url, phoneVp, errors);
  desk = d.page;
  phone = m.page;
  contexts.push(d.context, m.context);
});

test.afterAll(async () => {
  for (const c of contexts) await c.close();
});

test("a ticker the server marks stale is marked in its own price cell, whole", async () => {
  const status = route.statuses.get("AAPL");
  expect(status, "a market_status naming AAPL seen on the wire").toBeTruthy();
  route.dropTicker = "AAPL";
  // What the server's liveness check sends when a ticker of an open market goes silent
  // (DESIGN.md, per-ticker liveness): its market_status, naming it, with stale and last_good
  // (when the server last saw an update: just after the last one shown was published).
  const lastGood = route.published.get("AAPL")! + 5;
  await route.current!.send(JSON.stringify({ ...status, is_open: true, stale: true, last_good: lastGood }));
  const mark = desk.getByTestId("mark-AAPL");
  await expect(mark).toHaveText("stale", { timeout: 5_000 });
  await expect(desk.getByTestId("row-AAPL")).toHaveAttribute("data-standing", "stale");
  await expect(desk.getByTestId("stale-warning")).toBeVisible();
  // Inside the price cell, nothing cut: the cell's content fits its width.
  const fit = await desk.getByTestId("row-AAPL").locator(".price-cell").evaluate((td) => td.scrollWidth <= td.clientWidth);
  expect(fit, "the price cell's content fits").toBe(true);
  await expect(dot(desk)).toHaveAttribute("data-state", "connected"); // a stale ticker is not a dead feed
  await shot(desk, "stale-desktop");
  // It comes back: the server says so, and its next update shows it.
  await route.current!.send(JSON.stringify({ ...status, is_open: true }));
  route.dropTicker = null;
  await expect(desk.getByTestId("row-AAPL")).toHaveAttribute("data-standing", "ok", { timeout: 10_000 });
});

test("polling by choice: blue, its own words, no current latency", async () => {
  await desk.getByTestId("realtime-toggle").click();
  await expect(dot(desk)).toHaveAttribute("data-kind", "polling-manual");
  await expect(dot(desk)).toHaveAttribute("data-state", "polling");
  await expect(dot(desk)).toHaveAttribute("data-color", "blue");
  await expect(dot(desk)).toContainText("Polling (real-time off)");
  await expect(desk.getByTestId("mode-label")).toHaveText("Polling · every 3 s");
  await expect(desk.locator('[data-metric="latency"]')).not.toHaveText(/^\d+ ms$/);
  const before = await prices(desk);
  await expect.poll(() => prices(desk), { message: "polled prices move", timeout: 15_000 }).not.toBe(before);
  await desk.getByTestId("realtime-toggle").click();
  await expect(dot(desk)).toHaveAttribute("data-kind", "live", { timeout: 15_000 });
});

test("paused by the user: grey, frozen prices, then live again", async () => {
  await desk.getByTestId("pause-toggle").click();
  await expect(dot(desk)).toHaveAttribute("data-kind", "paused");
  await expect(dot(desk)).toHaveAttribute("data-color", "grey");
  await expect(desk.getByTestId("no-data")).toContainText("Paused");
  const frozen = await prices(desk);
  await desk.waitForTimeout(2500);
  expect(await prices(desk), "prices frozen while paused").toBe(frozen);
  await shot(desk, "paused-desktop");
  await desk.getByTestId("pause-toggle").click();
  await expect(dot(desk)).toHaveAttribute("data-kind", "live", { timeout: 15_000 });
  await expect.poll(() => prices(desk), { message: "prices move again", timeout: 15_000 }).not.toBe(frozen);
});

test("socket blocked, REST fine: reconnecting, then polling (automatic) in orange", async () => {
  route.block = true;
  await route.current!.close({ code: 1011, reason: "dropped by the test" });
  await expect(dot(desk)).toHaveAttribute("data-state", "reconnecting", { timeout: 1_000 });
  await expect(desk.getByTestId("mode-label")).toHaveText("Reconnecting…");
  // 3 attempts at 2 s, 4 s, 8 s plus jitter.
  await expect(dot(desk)).toHaveAttribute("data-kind", "polling-auto", { timeout: 30_000 });
  await expect(dot(desk)).toHaveAttribute("data-color", "orange");
  await expect(desk.getByTestId("mode-label")).toContainText("WebSocket down");
  await expect(desk.locator('[data-metric="failed-attempts"]')).toHaveText(/^[3-9]$/);
  await expect(desk.locator('[data-metric="latency"]')).not.toHaveText(/^\d+ ms$/);
  // The toast that says so stays clear of the chart's price axis.
  const toast = desk.getByTestId("toast").first();
  await expect(toast).toBeVisible();
  const t = (await toast.boundingBox())!;
  const canvas = (await desk.getByTestId("chart-canvas-box").boundingBox())!;
  expect(t.x + t.width, "toast's right edge left of the price axis").toBeLessThanOrEqual(canvas.x + canvas.width - 70);
  await shot(desk, "polling-auto-desktop");
  route.block = false;
  await expect(dot(desk)).toHaveAttribute("data-kind", "live", { timeout: 15_000 });
  await expect(desk.locator('[data-metric="reconnections"]')).toHaveText("1");
});

test("server killed: reconnecting within 1 s, then 'server unreachable' with the last good data", async ({ server }) => {
  const t0 = Date.now();
  const stopping = server.stop();
  await Promise.all([
    expect(dot(desk)).toHaveAttribute("data-state", "reconnecting", { timeout: 1_000 }),
    expect(dot(phone)).toHaveAttribute("data-state", "reconnecting", { timeout: 1_000 }),
  ]);
  console.log(`states: reconnecting shown ${Date.now() - t0} ms after the server was told to stop`);
  await stopping;
  await shot(phone, "reconnecting-phone");
  for (const p of [desk, phone]) {
    await expect(dot(p)).toHaveAttribute("data-kind", "unreachable", { timeout: 40_000 });
    await expect(dot(p)).toHaveAttribute("data-state", "disconnected");
    await expect(dot(p)).toHaveAttribute("data-color", "red");
    await expect(dot(p)).toContainText("Server unreachable");
    await expect(p.getByTestId("no-data")).toContainText(/No data.*Last good data \d\d:\d\d:\d\d/);
    await expect(p.getByTestId("mode-label")).toHaveText("No data · server unreachable");
  }
  console.log(`states: server unreachable shown ${Date.now() - t0} ms after the stop`);
  await expect(desk.locator('[data-metric="latency"]')).toHaveText(/^—/);
  await expect(desk.locator('[data-metric="reconnections"]')).toHaveText("1");
  await shot(desk, "unreachable-desktop");
  await shot(phone, "unreachable-phone");
});

test("server back: live again on both, one more reconnection counted", async ({ server }) => {
  await server.start();
  for (const p of [desk, phone]) {
    await expect(dot(p)).toHaveAttribute("data-kind", "live", { timeout: 30_000 });
    await expect(p.getByTestId("no-data")).toHaveCount(0);
  }
  await expect(desk.locator('[data-metric="reconnections"]')).toHaveText("2");
  const before = await prices(phone);
  await expect.poll(() => prices(phone), { message: "prices moving again", timeout: 15_000 }).not.toBe(before);
});

test("no uncaught errors in the pages", () => {
  expect(errors).toEqual([]);
});
