// Price alerts against a real server in Debian's Chromium. `window.Notification` is a stand-in
// (an init script) that records permission requests and notifications; each page's socket
// goes through Playwright's routeWebSocket, which passes the server's frames on and can hold
// back a ticker's real quotes and inject one of its own, next in seq: a price that crosses
// the alert's level, when the test says so (the simulated price never gets there by itself).
// Desktop (notifications allowed when asked): the permission asked with the first alert, one
// notification, a toast, the row marked in words, the alert triggered; a second crossing
// says nothing; after a reload the alerts are still there; re-arm and delete. Phone (no
// Notification API) and tablet (notifications denied): a % move alert still fires, in the
// page; on the phone the Alerts tab holds the panel and the toast covers neither the status,
// the chart's price axis nor the first watchlist row.
// Screenshots: test-results/alerts-<size>.png (and -panel.png: the panel after the alert fired).
import { join } from "node:path";
import type { Locator, Page, WebSocketRoute } from "@playwright/test";
import { chromiumMissing, results, skipReason } from "./env";
import { expect, test } from "./fixtures";
import { VIEWPORTS, axeViolations, chartCanvasBox, openDashboard, serious } from "./ui";

test.describe.configure({ mode: "serial" });
test.skip(chromiumMissing, skipReason);

type Mode = "ask-grants" | "denied" | "unsupported";
type Wire = { type: string; ticker: string; seq: number; timestamp: number; data: Record<string, number | null> };

/** A page's socket, tapped: the last quote per ticker; tickers whose real quotes are held back. */
class Tap {
  ws: WebSocketRoute | null = null;
  last = new Map<string, Wire>();
  hold = new Set<string>();

  async attach(page: Page): Promise<void> {
    await page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
      this.ws = ws;
      const server = ws.connectToServer();
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => {
        if (typeof m === "string" && (m.startsWith('{"type":"price_update"') || m.startsWith('{"type":"snapshot"'))) {
          const msg = JSON.parse(m) as Wire;
          if (this.hold.has(msg.ticker)) return;
          this.last.set(msg.ticker, msg);
        }
        ws.send(m);
      });
    });
  }

  /** A price_update of `ticker` at `price` (next seq), its real quotes held back from now on. */
  inject(ticker: string, price: number, changePercent?: number): void {
    const last = this.last.get(ticker);
    if (!last || !this.ws) throw new Error(`no quote of ${ticker} seen on the socket yet`);
    this.hold.add(ticker);
    const prev = Number(last.data.prev_close);
    const now = Date.now();
    const msg: Wire = {
      type: "price_update",
      ticker,
      seq: last.seq + 1,
      timestamp: now,
      data: {
        ...last.data,
        price,
        change: Number((price - prev).toFixed(4)),
        change_percent: changePercent ?? Number((((price - prev) / prev) * 100).toFixed(4)),
        market_time: now,
      },
    };
    this.last.set(ticker, msg);
    void this.ws.send(JSON.stringify(msg));
  }
}

/** Before the page's scripts: a Notification stand-in recording what the page does with it. */
async function stubNotifications(page: Page, mode: Mode): Promise<void> {
  await page.addInitScript((m: Mode) => {
    const rec = { requests: 0, shown: [] as { title: string; body: string }[] };
    (window as unknown as { __notes: typeof rec }).__notes = rec;
    if (m === "unsupported") {
      Object.defineProperty(window, "Notification", { value: undefined, configurable: true, writable: true });
      return;
    }
    class FakeNotification {
      static permission: NotificationPermission = m === "denied" ? "denied" : "default";
      static async requestPermission(): Promise<NotificationPermission> {
        rec.requests += 1;
        if (FakeNotification.permission === "default") FakeNotification.permission = "granted";
        return FakeNotification.permission;
      }
      constructor(title: string, opts?: { body?: string }) {
        rec.shown.push({ title, body: opts?.body ?? "" });
      }
      close(): void {}
    }
    Object.defineProperty(window, "Notification", { value: FakeNotification, configurable: true, writable: true });
  }, mode);
}

const notes = (page: Page) => page.evaluate(() => (window as unknown as { __notes: { requests: number; shown: { title: string; body: string }[] } }).__notes);

async function addAlert(page: Page, kind: "above" | "below" | "move", level: string): Promise<void> {
  await page.getByTestId("alert-kind").selectOption(kind);
  await page.getByTestId("alert-level").fill(level);
  await page.getByTestId("alert-add").click();
  await expect(page.getByTestId("alert-problem")).toHaveCount(0);
}

const box = async (l: Locator) => (await l.boundingBox())!;
const overlap = (a: { x: number; y: number; width: number; height: number }, b: { x: number; y: number; width: number; height: number }) =>
  a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

test("desktop: asked once, fires once on a crossing (notification, toast, row mark), survives a reload", async ({ browser, server }) => {
  const errors: string[] = [];
  const tap = new Tap();
  const vp = VIEWPORTS.find((v) => v.name === "desktop")!;
  const { context, page } = await openDashboard(browser, server.url, vp, errors, async (p) => {
    await stubNotifications(p, "ask-grants");
    await tap.attach(p);
  });
  try {
    await expect.poll(() => tap.last.get("AAPL")?.data.price ?? null, { message: "an AAPL quote on the wire" }).not.toBeNull();
    await expect(page.getByTestId("price-chart")).toHaveAttribute("data-ticker", "AAPL");
    await expect(page.getByTestId("alert-permission")).toHaveAttribute("data-permission", "default");
    const price = Number(tap.last.get("AAPL")!.data.price);
    const level = Number((price * 1.05).toFixed(2));
    await addAlert(page, "above", level.toFixed(2));
    await expect.poll(async () => (await notes(page)).requests, { message: "permission asked with the first alert" }).toBe(1);
    await expect(page.getByTestId("alert-permission")).toHaveCount(0); // granted: nothing to warn about
    await addAlert(page, "below", (price * 0.95).toFixed(2));
    const items = page.getByTestId("alert-item");
    await expect(items).toHaveCount(2);
    await expect(items.nth(0)).toHaveAttribute("data-state", "armed");
    await expect(items.nth(0)).toContainText(`Above ${level.toLocaleString("en-US", { minimumFractionDigits: 2 })}`);
    await page.waitForTimeout(1000); // live ticks, nowhere near the level
    expect((await notes(page)).shown, "nothing fired before the crossing").toEqual([]);
    await expect(page.getByTestId("row-AAPL")).not.toHaveAttribute("data-alert", /./);

    // The price crosses the level.
    tap.inject("AAPL", level + 0.25);
    await expect.poll(async () => (await notes(page)).shown.length, { message: "one notification" }).toBe(1);
    const [shown] = (await notes(page)).shown;
    expect(shown!.title).toBe("Price alert: AAPL");
    expect(shown!.body).toMatch(/^AAPL rose above [\d,]+\.\d\d \(last [\d,]+\.\d\d\)$/);
    const toast = page.getByTestId("toast").filter({ hasText: /Alert: AAPL rose above/ });
    await expect(toast).toBeVisible();
    await expect(toast).toHaveAttribute("data-kind", "alert");
    await expect(page.getByTestId("row-AAPL")).toHaveAttribute("data-alert", "triggered");
    await expect(page.getByTestId("alert-mark-AAPL")).toContainText(/alert: AAPL rose above/i);
    await expect(items.nth(0)).toHaveAttribute("data-state", "triggered");
    await expect(items.nth(0)).toContainText(/Triggered \d\d:\d\d:\d\d \S+ at [\d,]+\.\d\d/);
    await expect(items.nth(1)).toHaveAttribute("data-state", "armed");
    await expect(page.getByTestId("announcer")).toHaveText(/^Alert: AAPL rose above/);
    // The toast stays over the chart, clear of its price axis and of the watchlist.
    const t = await box(toast);
    const canvas = await chartCanvasBox(page);
    expect(t.x + t.width, "toast left of the price axis").toBeLessThanOrEqual(canvas.x + canvas.width - 70);
    expect(overlap(t, await box(page.getByTestId("watchlist"))), "toast over the watchlist").toBe(false);
    await page.screenshot({ path: join(results, "alerts-desktop.png") });

    // Once: a second quote beyond the level says nothing more.
    tap.inject("AAPL", level + 1);
    await page.waitForTimeout(800);
    expect((await notes(page)).shown).toHaveLength(1);
    expect(await page.getByTestId("toast").filter({ hasText: /Alert: AAPL/ }).count()).toBe(1);

    // Kept in localStorage: a reload shows both, the fired one still marked.
    tap.hold.clear();
    await page.reload({ waitUntil: "load" });
    await expect(page.getByTestId("connection-status")).toHaveAttribute("data-state", "connected", { timeout: 15_000 });
    await expect(items).toHaveCount(2);
    await expect(items.nth(0)).toHaveAttribute("data-state", "triggered");
    await expect(items.nth(1)).toHaveAttribute("data-state", "armed");
    await expect(page.getByTestId("row-AAPL")).toHaveAttribute("data-alert", "triggered");

    // Re-arm, delete.
    await items.nth(0).getByTestId("alert-rearm").click();
    await expect(items.nth(0)).toHaveAttribute("data-state", "armed");
    await expect(page.getByTestId("row-AAPL")).not.toHaveAttribute("data-alert", /./);
    await items.nth(1).getByTestId("alert-delete").click();
    await items.nth(0).getByTestId("alert-delete").click();
    await expect(items).toHaveCount(0);
    await expect(page.getByTestId("alerts")).toContainText("No alerts on AAPL.");
    expect(await page.evaluate(() => localStorage.getItem("stockfeed.alerts"))).toBe("[]");
    expect(errors).toEqual([]);
  } finally {
    await context.close();
  }
});

for (const [name, mode] of [
  ["phone-portrait", "unsupported"],
  ["tablet", "denied"],
] as const) {
  test(`${name}: notifications ${mode}, a % move alert still fires in the page; the toast covers nothing`, async ({ browser, server }) => {
    const errors: string[] = [];
    const tap = new Tap();
    const vp = VIEWPORTS.find((v) => v.name === name)!;
    const { context, page } = await openDashboard(browser, server.url, vp, errors, async (p) => {
      await stubNotifications(p, mode);
      await tap.attach(p);
    });
    try {
      await expect.poll(() => tap.last.get("AAPL")?.data.price ?? null).not.toBeNull();
      if (vp.layout === "phone") await page.getByTestId("tab-alerts").click();
      const panel = page.getByTestId("alerts");
      await panel.scrollIntoViewIfNeeded();
      await expect(page.getByTestId("alert-permission")).toHaveAttribute("data-permission", mode);
      await expect(page.getByTestId("alert-permission")).toContainText(mode === "denied" ? "blocked" : "no notifications");
      await addAlert(page, "move", "3");
      await expect(page.getByTestId("alert-item")).toHaveAttribute("data-state", "armed");
      if (vp.touch) expect((await box(page.getByTestId("alert-delete"))).height, "44 px delete").toBeGreaterThanOrEqual(44);
      expect(serious(await axeViolations(page)), "axe with the alerts panel open").toEqual([]);

      // AAPL jumps 3.5 % over its previous close.
      const prev = Number(tap.last.get("AAPL")!.data.prev_close);
      tap.inject("AAPL", Number((prev * 1.035).toFixed(2)), 3.5);
      const toast = page.getByTestId("toast").filter({ hasText: /Alert: AAPL moved \+3\.5 % from the previous close/ });
      await expect(toast).toBeVisible();
      await expect(page.getByTestId("alert-item")).toHaveAttribute("data-state", "triggered");
      await page.screenshot({ path: join(results, `alerts-${name}-panel.png`) });
      const rec = await notes(page);
      expect(rec.requests, "never asked").toBe(0);
      if (mode !== "unsupported") expect(rec.shown).toEqual([]);

      // The toast takes its own room under the header: not over the status, the chart's price
      // axis or the first row, at the top of the page and with the watchlist scrolled to.
      if (vp.layout === "phone") await page.getByTestId("tab-watchlist").click();
      await expect(page.getByTestId("row-AAPL")).toHaveAttribute("data-alert", "triggered");
      await expect(page.getByTestId("alert-mark-AAPL")).toBeVisible();
      const firstRow = page.locator('[data-testid="watchlist"] tbody tr').first();
      for (const where of ["top", "watchlist"] as const) {
        if (where === "top") await page.evaluate(() => window.scrollTo(0, 0));
        else await firstRow.evaluate((el) => el.scrollIntoView({ block: "center" }));
        await page.waitForTimeout(200);
        const t = await box(toast);
        const status = await box(page.getByTestId("connection-status"));
        const row = await box(firstRow);
        const canvas = await chartCanvasBox(page);
        const axis = { x: canvas.x + canvas.width - 70, y: canvas.y, width: 70, height: canvas.height };
        expect(overlap(t, status), `toast over the status (${where})`).toBe(false);
        // (Scrolled down, the chart has gone up under the sticky bar: nothing of it to cover.)
        if (where === "top") expect(overlap(t, axis), "toast over the price axis").toBe(false);
        expect(overlap(t, row), `toast over the first row (${where})`).toBe(false);
        await expect(page.getByTestId("connection-status")).toBeInViewport();
        await expect(toast).toBeInViewport();
        if (where === "watchlist") await page.screenshot({ path: join(results, `alerts-${name}.png`) });
      }
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
}
