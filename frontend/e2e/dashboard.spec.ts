// What a user sees, against a real server (simulator) in Debian's Chromium: the page loads,
// the status dot goes green, prices move; the server stops: yellow, then red (server
// unreachable: the polls fail too) with a toast; it starts again on the same port: green; the
// real-time toggle (blue: polling by choice) survives a reload.
// One page through all the tests, in order (each step starts where the last one left off);
// after a failure the rest do not run. Screenshots land in test-results/.
import { join } from "node:path";
import type { Page } from "@playwright/test";
import { chromiumMissing, results, skipReason } from "./env";
import { expect, test } from "./fixtures";

test.describe.configure({ mode: "serial" });
test.skip(chromiumMissing, skipReason);

let page: Page;
const pageErrors: string[] = [];
// poll=3 / probe=2: shorter polling and retry periods than the defaults (60 s / 10 s).
const QUERY = "?poll=3&probe=2";

test.beforeAll(async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 1440, height: 860 }, deviceScaleFactor: 1 });
  page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
});

test.afterAll(async () => {
  await page?.context().close();
});

const dot = () => page.getByTestId("connection-status");

async function expectDot(color: string, state: string, timeout: number): Promise<void> {
  await expect(dot()).toHaveAttribute("data-color", color, { timeout });
  await expect(dot()).toHaveAttribute("data-state", state, { timeout });
}

/** Every watchlist price, joined: changes whenever one of them does. */
const prices = async () => (await page.locator('[data-testid^="price-"]').allTextContents()).join("|");

const toasts = (text: RegExp) => page.getByTestId("toast").filter({ hasText: text });

test("the dashboard loads (watchlist, chart, metrics, simulated badge)", async ({ server }) => {
  await page.goto(server.url + QUERY, { waitUntil: "load" });
  for (const id of ["watchlist", "price-chart", "ws-metrics", "realtime-toggle", "connection-status"]) {
    await expect(page.getByTestId(id)).toBeVisible({ timeout: 15_000 });
  }
  await expect(page.locator('[data-testid="price-chart"] canvas').first()).toBeVisible({ timeout: 15_000 });
  await expect(page.getByTestId("simulated-badge")).toBeVisible({ timeout: 15_000 });
  await expect(page.locator('[data-testid="watchlist"] tbody tr')).not.toHaveCount(0);
});

test("the status dot turns green (WebSocket live) with a spoken label", async () => {
  await expectDot("green", "connected", 15_000);
  await expect(dot()).toHaveAccessibleName(/^Live.*prices stream over WebSocket/);
  await expect(page.locator('[data-metric="latency"]')).toHaveText(/\d+ ms/, { timeout: 10_000 });
});

test("a price changes", async () => {
  await expect.poll(prices, { message: "every price shown", timeout: 15_000 }).not.toMatch(/^$|—/);
  const first = await prices();
  await expect.poll(prices, { message: "a different price", timeout: 15_000 }).not.toBe(first);
  await expect
    .poll(async () => Number(await page.locator('[data-metric="rate"]').textContent()), { message: "messages per second", timeout: 5_000 })
    .toBeGreaterThan(0);
});

test("screenshot of the live dashboard", async () => {
  await page.waitForTimeout(2500); // a few live ticks on the forming candle
  await page.screenshot({ path: join(results, "dashboard.png") });
});

test("server stopped: the dot turns yellow (reconnecting)", async ({ server }) => {
  await server.stop();
  await expectDot("yellow", "reconnecting", 10_000);
  await expect(dot()).toHaveAccessibleName(/attempt \d of 3/);
});

test("then red, server unreachable (the polls fail too), with a toast", async () => {
  // 3 attempts at 2 s, 4 s, 8 s (plus jitter, and the server's retry_after_ms).
  await expectDot("red", "disconnected", 40_000);
  await expect(dot()).toHaveAttribute("data-kind", "unreachable");
  await expect(toasts(/polling/i)).not.toHaveCount(0);
  await expect(page.getByTestId("mode-label")).toHaveText(/server unreachable/);
  await page.screenshot({ path: join(results, "dashboard-polling.png") });
});

test("server started again on the same port: green again, with a toast", async ({ server }) => {
  await server.start();
  await expectDot("green", "connected", 30_000);
  await expect(toasts(/restored/i)).not.toHaveCount(0);
  const before = await prices();
  await expect.poll(prices, { message: "prices moving again", timeout: 15_000 }).not.toBe(before);
});

test("the real-time toggle survives a reload", async () => {
  const toggle = page.getByTestId("realtime-toggle");
  await toggle.click();
  await expect(toggle).toHaveAttribute("aria-checked", "false");
  await expectDot("blue", "polling", 5_000);
  await page.reload({ waitUntil: "load" });
  await expect(toggle).toBeVisible();
  // Read at once, not waited for: the toggle must come back off, not turn off later.
  expect(await toggle.getAttribute("aria-checked"), "the toggle after the reload").toBe("false");
  await expectDot("blue", "polling", 5_000);
  await expect(page.getByTestId("mode-label")).toHaveText(/Polling/);
  await toggle.click();
  await page.reload({ waitUntil: "load" });
  await expect(toggle).toHaveAttribute("aria-checked", "true");
  await expectDot("green", "connected", 15_000);
});

test("no uncaught errors in the page", () => {
  expect(pageErrors).toEqual([]);
});
