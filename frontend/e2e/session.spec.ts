// Session-true figures in the browser, against a simulator on the real calendar and a fake
// clock (Debian's libfaketime for the server, Playwright's clock for the page), Tuesday
// 2026-12-08: at night (03:30 New York) a reload shows every last price, marked closed (at
// the four sizes); in the pre-market (07:00) the change is the price less the last regular
// close (Monday's 15:55 bar's close), and the row and the quote line say "pre-market".
import type { Browser, Page } from "@playwright/test";
import { chromiumMissing, inCI, skipReason } from "./env";
import { expect, test } from "./fixtures";
import { StockfeedServer, faketimeMissing, freePort } from "./server";
import { VIEWPORTS, type Viewport } from "./ui";

test.skip(chromiumMissing, skipReason);
// Under CI a missing faketime fails (StockfeedServer says so): .ci/run installs it.
test.skip(faketimeMissing && !inCI, "no faketime: apt-get install faketime");

const EQUITIES = ["AAPL", "MSFT", "NVDA", "SPY", "JPM"];
const NIGHT = "2026-12-08T08:30:00Z"; // 03:30 New York
const PRE = "2026-12-08T12:00:00Z"; // 07:00 New York
const MONDAY_CLOSE = Date.parse("2026-12-07T21:00:00Z") / 1000; // 16:00 New York

async function serverAt(moment: string): Promise<StockfeedServer> {
  const server = new StockfeedServer(await freePort(), {
    name: `faketime-${moment.slice(11, 16).replace(":", "")}`,
    marketHours: true,
    faketime: moment.replace("T", " ").replace("Z", ""),
  });
  await server.start();
  return server;
}

const DESKTOP = VIEWPORTS.find((v) => v.layout === "desktop")!;

async function openAt(browser: Browser, server: StockfeedServer, moment: string, vp: Viewport = DESKTOP): Promise<Page> {
  const context = await browser.newContext({
    viewport: { width: vp.width, height: vp.height },
    hasTouch: vp.touch,
    isMobile: vp.layout === "phone",
    timezoneId: "America/New_York",
  });
  await context.addInitScript((list) => {
    if (!localStorage.getItem("stockfeed.watchlist")) localStorage.setItem("stockfeed.watchlist", JSON.stringify(list));
  }, EQUITIES);
  const page = await context.newPage();
  await page.clock.install({ time: new Date(moment) });
  await page.goto(server.url);
  return page;
}

const priceOf = (page: Page, t: string) => page.getByTestId(`price-${t}`);
const num = (text: string | null) => Number((text ?? "").replace(/[,+%\s]/g, "").replace("−", "-"));

test("at night a reload shows every last price, marked closed (four sizes)", async ({ browser }) => {
  test.setTimeout(120_000);
  const server = await serverAt(NIGHT);
  try {
    for (const vp of VIEWPORTS.filter((v) => v.layout !== "desktop")) {
      const page = await openAt(browser, server, NIGHT, vp);
      for (const t of EQUITIES) await expect(priceOf(page, t), vp.name).not.toHaveText("—", { timeout: 20_000 });
      await page.clock.fastForward("02:00");
      await page.reload();
      for (const t of EQUITIES) {
        await expect(priceOf(page, t), `${vp.name}: ${t} after the reload`).not.toHaveText("—", { timeout: 20_000 });
        await expect(page.getByTestId(`mark-${t}`), `${vp.name}: ${t} marked closed`).toHaveText("closed", { timeout: 10_000 });
      }
      await page.context().close();
    }
    const page = await openAt(browser, server, NIGHT);
    for (const t of EQUITIES) await expect(priceOf(page, t)).not.toHaveText("—", { timeout: 20_000 });
    // A quote is called closed once it has stood still a minute in a closed market.
    await page.clock.fastForward("02:00");
    await page.reload();
    for (const t of EQUITIES) {
      await expect(priceOf(page, t), `${t} after the reload`).not.toHaveText("—", { timeout: 20_000 });
      await expect(page.getByTestId(`mark-${t}`), `${t} marked closed`).toHaveText("closed", { timeout: 10_000 });
    }
    await expect(page.getByTestId("market-session")).toHaveText("Market closed");
    // The Day panel has the day's figures, the previous close among them.
    await expect(page.getByTestId("quote-details")).not.toContainText("Prev close—");
    // After the close the quote line says "At close … · After hours …".
    await expect(page.getByTestId("quote-headline")).toContainText("At close");
    await expect(page.getByTestId("quote-headline")).toContainText("After hours");
    await page.context().close();
  } finally {
    await server.stop();
  }
});

test("in the pre-market the change is the price less the last regular close", async ({ browser }) => {
  const server = await serverAt(PRE);
  try {
    // The last regular close, from history: Monday's last 5-minute bar before 16:00.
    const hist = (await (await fetch(`${server.url}api/history/AAPL?interval=5m&range=5d`)).json()) as { bars: { time: number; close: number }[] };
    const monday = hist.bars.filter((b) => b.time < MONDAY_CLOSE).at(-1)!;
    expect(monday.time, "the 15:55 bar").toBe(MONDAY_CLOSE - 300);

    const page = await openAt(browser, server, PRE);
    await page.getByTestId("row-AAPL").click();
    await expect(priceOf(page, "AAPL")).not.toHaveText("—", { timeout: 20_000 });
    await expect(page.getByTestId("session-AAPL")).toContainText("PRE");
    const headline = page.getByTestId("quote-headline");
    await expect(headline).toContainText("Pre-market");
    await expect(headline.locator('[data-part="At close"] .qh-price')).toHaveText(monday.close.toFixed(2));
    // Price and change read together from the row (the change is one tick's worth of the same quote).
    const row = page.getByTestId("row-AAPL");
    const [price, change] = await row.evaluate((r) => [r.querySelector(".price")?.textContent ?? "", r.querySelector(".col-chg")?.textContent ?? ""]);
    expect(num(change)).toBeCloseTo(num(price) - monday.close, 2);
    await expect(page.getByTestId("quote-details")).toContainText(`Prev close${monday.close.toFixed(2)}`);
    await page.context().close();
  } finally {
    await server.stop();
  }
});
