// The page a trader keeps open, against a real server (simulator around the clock) in
// Debian's Chromium: the chart's state in the URL (a reload keeps it, the back button steps
// back), the light theme (from the system, or chosen) passing axe, the app working offline
// after one visit with the last prices marked as such, the keyboard shortcuts and their help,
// folding panels, the focus after a remove, and the small things (compact changes, FX volume,
// "usdjpy", marks at least 11 px, the tab's title).
import { join } from "node:path";
import type { Browser, BrowserContextOptions, Page } from "@playwright/test";
import { chromiumMissing, results, skipReason } from "./env";
import { expect, test } from "./fixtures";
import { VIEWPORTS, axeViolations, serious } from "./ui";

test.skip(chromiumMissing, skipReason);

const DESKTOP = { width: 1440, height: 900 };

async function open(browser: Browser, url: string, list: string[] | null, opts: BrowserContextOptions = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: DESKTOP, deviceScaleFactor: 1, ...opts });
  if (list) {
    await context.addInitScript((l) => {
      if (!localStorage.getItem("stockfeed.watchlist")) localStorage.setItem("stockfeed.watchlist", JSON.stringify(l));
    }, list);
  }
  const page = await context.newPage();
  await page.goto(url);
  await expect(page.locator('[data-testid^="price-"]:not([data-testid="price-chart"])').first()).not.toHaveText("—", { timeout: 15_000 });
  return page;
}

const query = (page: Page) => new URL(page.url()).searchParams;

test("the ticker, interval and range live in the URL: a reload keeps them, back steps back", async ({ browser, server }) => {
  const page = await open(browser, `${server.url}?ticker=MSFT&interval=15m&range=1M`, ["AAPL", "MSFT", "NVDA"]);
  const check = async (ticker: string, interval: string, range: string) => {
    await expect(page.getByTestId("chart-ticker")).toHaveText(ticker);
    await expect(page.getByTestId(`interval-${interval}`)).toHaveAttribute("aria-pressed", "true");
    await expect(page.getByTestId(`range-${range}`)).toHaveAttribute("aria-pressed", "true");
    await expect.poll(() => query(page).get("ticker")).toBe(ticker);
    expect(query(page).get("interval")).toBe(interval);
    expect(query(page).get("range")).toBe(range);
  };
  await check("MSFT", "15m", "1M");
  await page.reload();
  await check("MSFT", "15m", "1M");

  await page.getByRole("button", { name: "NVDA: show chart" }).click();
  await check("NVDA", "15m", "1M");
  await page.getByTestId("interval-1h").click();
  await expect.poll(() => query(page).get("interval")).toBe("1h");
  await expect(page).toHaveTitle(/^NVDA [\d,.]+ [+−]?[\d.]+% · stockfeed$/);

  await page.goBack();
  await check("NVDA", "15m", "1M");
  await page.goBack();
  await check("MSFT", "15m", "1M");
  await page.goForward();
  await check("NVDA", "15m", "1M");

  // A link to a ticker not in the watchlist adds it.
  await page.goto(`${server.url}?ticker=AMZN&interval=5m&range=5D`);
  await check("AMZN", "5m", "5D");
  await expect(page.getByTestId("row-AMZN")).toBeVisible();
  await page.context().close();
});

test("the light theme follows the system, can be overridden, and passes axe", async ({ browser, server }) => {
  const page = await open(browser, server.url, null, { colorScheme: "light" });
  await expect(page.locator("html")).toHaveAttribute("data-theme", "light");
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(bg, "a light background").toBe("rgb(243, 245, 248)");
  const found = await axeViolations(page);
  if (found.length > 0) console.log(`axe light: ${found.map((f) => `${f.id} (${f.impact}) ${f.targets.join(" ")}`).join(", ")}`);
  expect(serious(found)).toEqual([]);

  // t switches to dark, and the choice is kept over the system's.
  await page.locator("body").press("t");
  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");
  await page.reload();
  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");
  await page.getByTestId("theme-select").selectOption("system");
  await expect(page.locator("html")).toHaveAttribute("data-theme", "light");
  await page.emulateMedia({ colorScheme: "dark" });
  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");
  await page.context().close();
});

for (const vp of VIEWPORTS.filter((v) => v.layout !== "desktop")) {
  test(`light theme at ${vp.name} ${vp.width}x${vp.height}: no serious or critical axe violations`, async ({ browser, server }) => {
    const page = await open(browser, server.url, null, {
      colorScheme: "light",
      viewport: { width: vp.width, height: vp.height },
      hasTouch: vp.touch,
      isMobile: vp.layout === "phone",
    });
    await expect(page.locator("html")).toHaveAttribute("data-theme", "light");
    const found = await axeViolations(page);
    if (found.length > 0) console.log(`axe light ${vp.name}: ${found.map((f) => `${f.id} (${f.impact}) ${f.targets.join(" ")}`).join(", ")}`);
    expect(serious(found)).toEqual([]);
    await page.context().close();
  });
}

test("offline after one visit: the app opens with the last prices, marked as such", async ({ browser, server }) => {
  const list = ["AAPL", "MSFT", "BTC-USD"];
  const page = await open(browser, server.url, list);
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null), { message: "the worker controls the page" }).toBe(true);
  // The last quotes are written every 2 s: wait for them.
  await expect
    .poll(() => page.evaluate(() => Object.keys(JSON.parse(localStorage.getItem("stockfeed.last-quotes") ?? "{}").quotes ?? {}).length))
    .toBe(3);
  await page.context().setOffline(true);
  await page.reload();
  await expect(page.getByTestId("offline-note")).toContainText("offline · last known prices");
  // What the page shows is what the last visit kept (nothing new can have come since).
  const kept = await page.evaluate(() => JSON.parse(localStorage.getItem("stockfeed.last-quotes")!) as { quotes: Record<string, { data: { price: number } }> });
  for (const t of list) {
    const text = await page.getByTestId(`price-${t}`).textContent();
    expect(Number(text!.replace(/,/g, "")), `${t}: the kept price`).toBeCloseTo(kept.quotes[t]!.data.price, 1);
  }
  await expect(page.getByTestId("quote-headline")).toContainText("last known");

  await page.context().setOffline(false);
  await expect(page.getByTestId("offline-note")).toHaveCount(0, { timeout: 30_000 });
  await expect(page.getByTestId("last-known-mark")).toHaveCount(0, { timeout: 30_000 });
  await page.context().close();
});

test("keyboard: help on ?, j/k rows, [ ] intervals, / search, folding panels, focus after a remove", async ({ browser, server }) => {
  const page = await open(browser, server.url, ["AAPL", "MSFT", "NVDA", "AMZN"]);
  await page.getByTestId("interval-5m").click();
  await page.locator("body").press("?");
  const help = page.getByTestId("shortcut-help");
  await expect(help).toBeVisible();
  await expect(help).toContainText("Next watchlist row");
  await page.keyboard.press("Escape");
  await expect(help).toHaveCount(0);

  await page.getByRole("button", { name: "AAPL: show chart" }).click();
  await page.keyboard.press("j");
  await expect(page.getByTestId("chart-ticker")).toHaveText("MSFT");
  await expect(page.getByRole("button", { name: "MSFT: show chart" })).toBeFocused();
  await page.keyboard.press("j");
  await page.keyboard.press("k");
  await expect(page.getByTestId("chart-ticker")).toHaveText("MSFT");
  await page.keyboard.press("]");
  await expect(page.getByTestId("interval-15m")).toHaveAttribute("aria-pressed", "true");
  await page.keyboard.press("[");
  await page.keyboard.press("[");
  await expect(page.getByTestId("interval-1m")).toHaveAttribute("aria-pressed", "true");
  await page.keyboard.press("/");
  await expect(page.getByTestId("add-ticker")).toBeFocused();
  await page.keyboard.type("j"); // typed into the box, not a shortcut
  await expect(page.getByTestId("add-ticker")).toHaveValue("j");
  await page.keyboard.press("Escape");
  await page.keyboard.press("Escape");

  // Folding: each panel, then all (p); remembered over a reload.
  await page.getByTestId("fold-day").click();
  await expect(page.getByTestId("fold-day")).toHaveAttribute("aria-expanded", "false");
  await expect(page.locator("#qd-title-body")).toBeHidden();
  await page.locator("body").click({ position: { x: 900, y: 5 } });
  await page.keyboard.press("p");
  for (const name of ["day", "alerts", "connection"]) await expect(page.getByTestId(`fold-${name}`)).toHaveAttribute("aria-expanded", "false");
  await page.reload();
  await expect(page.getByTestId("fold-alerts")).toHaveAttribute("aria-expanded", "false");
  await page.keyboard.press("p");
  await expect(page.getByTestId("fold-alerts")).toHaveAttribute("aria-expanded", "true");

  // A remove by keyboard leaves the focus on the next row's remove button.
  await page.getByTestId("remove-MSFT").focus();
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("row-MSFT")).toHaveCount(0);
  await expect(page.getByTestId("remove-NVDA")).toBeFocused();
  await page.context().close();
});

test("compact changes, FX volume, usdjpy, marks of 11 px", async ({ browser, server }) => {
  const page = await open(browser, server.url, ["BTC-USD", "EURUSD=X", "USDT-USD", "AAPL"]);
  await expect(page.getByTestId("price-EURUSD=X")).not.toHaveText("—");
  // BTC moves by thousands: "+2.29K", never a cut "+2,294…".
  await expect
    .poll(async () => (await page.getByTestId("row-BTC-USD").locator(".col-chg").textContent()) ?? "", { timeout: 15_000 })
    .toMatch(/^([+−]?\d{1,3}(\.\d+)?[KM]?|0\.00)$/);
  await expect(page.getByTestId("row-EURUSD=X").locator(".col-chg")).toHaveText(/^[+−]?\d\.\d{4}$/);
  await expect(page.getByTestId("row-EURUSD=X").locator(".col-vol")).toHaveText("—");
  await expect(page.getByTestId("price-USDT-USD")).not.toHaveText("—"); // its first quote
  const usdt = Number((await page.getByTestId("price-USDT-USD").textContent())!.replace(/,/g, ""));
  expect(usdt, "a stablecoin trades at its peg").toBeGreaterThan(0.99);
  expect(usdt).toBeLessThan(1.01);
  for (const cell of await page.locator(".wl-row .col-chg").all()) {
    const fits = await cell.evaluate((el) => el.scrollWidth <= el.clientWidth);
    expect(fits, `${await cell.textContent()} fits its column`).toBe(true);
  }

  const box = page.getByTestId("add-ticker");
  await box.fill("usdjpy");
  await expect(page.getByTestId("option-JPY=X")).toBeVisible();
  await box.fill("");

  // The CLOSED / STALE / ALERT marks and the row tags, as the page's CSS sizes them in a row.
  const sizes = await page.evaluate(() => {
    const cell = document.querySelector(".wl-row .price-cell")!;
    const out: Record<string, number> = {};
    for (const cls of ["mark mark-closed", "mark mark-stale", "mark mark-alert", "mark mark-sess", "tag tag-err"]) {
      const probe = document.createElement("span");
      probe.className = cls;
      probe.textContent = "x";
      cell.append(probe);
      out[cls] = parseFloat(getComputedStyle(probe).fontSize);
      probe.remove();
    }
    return out;
  });
  for (const [cls, px] of Object.entries(sizes)) expect(px, cls).toBeGreaterThanOrEqual(11);
  await page.context().close();
});

test("polling says when the next poll is due", async ({ browser, server }) => {
  const page = await open(browser, `${server.url}?poll=5`, ["AAPL", "MSFT"]);
  await page.getByTestId("realtime-toggle").click();
  await expect(page.getByTestId("next-poll")).toHaveText(/^next poll in [1-5] s$/);
  await expect(page.locator('[data-metric="next-poll"]')).toHaveText(/^in [1-5] s$/);
  await page.getByTestId("realtime-toggle").click();
  await expect(page.getByTestId("next-poll")).toHaveCount(0);
  await page.context().close();
});

test("with the panels folded, all 50 watchlist rows fit a 1440x900 screen, 12 px text, axe clean", async ({ browser, server }) => {
  const symbols = ((await (await fetch(`${server.url}api/symbols?q=a&limit=50`)).json()) as { symbols: { symbol: string }[] }).symbols.map((s) => s.symbol);
  expect(symbols).toHaveLength(50);
  const page = await open(browser, server.url, symbols);
  const rows = page.locator('[data-testid="watchlist"] tbody tr');
  await expect(rows).toHaveCount(50);
  const visibleRows = () =>
    page.evaluate(() => {
      const box = document.querySelector(".wl-scroll")!.getBoundingClientRect();
      return [...document.querySelectorAll(".wl-row")].filter((r) => {
        const b = r.getBoundingClientRect();
        return b.top >= box.top - 1 && b.bottom <= Math.min(box.bottom, window.innerHeight) + 1;
      }).length;
    });
  const open3 = await visibleRows();
  await page.locator("body").press("p");
  for (const name of ["day", "alerts", "connection"]) await expect(page.getByTestId(`fold-${name}`)).toHaveAttribute("aria-expanded", "false");
  const folded = await visibleRows();
  console.log(`page: watchlist rows fully visible at 1440x900: ${open3} with the panels open, ${folded} folded (of ${symbols.length})`);
  await page.screenshot({ path: join(results, "page-desktop-folded-50.png") });
  // Every row on screen as it is: inside the viewport and the list's box, nothing scrolled.
  const scroller = page.locator(".wl-scroll");
  const list = (await scroller.boundingBox())!;
  for (const row of await rows.all()) {
    const b = (await row.boundingBox())!;
    const name = await row.getAttribute("data-ticker");
    expect(b.y, `${name} below the list's top`).toBeGreaterThanOrEqual(list.y - 0.5);
    expect(b.y + b.height, `${name} inside the viewport`).toBeLessThanOrEqual(DESKTOP.height);
    expect(b.y + b.height, `${name} inside the list`).toBeLessThanOrEqual(list.y + list.height + 0.5);
  }
  expect(await scroller.evaluate((el) => [el.scrollTop, el.scrollHeight - el.clientHeight]), "the list needs no scroll").toEqual([0, 0]);
  expect(await page.evaluate(() => [window.scrollY, document.documentElement.scrollHeight]), "nor the page").toEqual([0, DESKTOP.height]);
  // Readable: the rows' text at 12 px or more (symbol, figures; the marks are 11 px, as anywhere).
  const sizes = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>(".wl-row .sym-btn, .wl-row .price, .wl-row td.num")].map((e) => parseFloat(getComputedStyle(e).fontSize)),
  );
  expect(Math.min(...sizes)).toBeGreaterThanOrEqual(12);
  // The chart keeps most of the width; the folded panels' titles still there to unfold them.
  expect((await page.getByTestId("chart-canvas-box").boundingBox())!.width).toBeGreaterThan(750);
  await expect(page.getByTestId("fold-alerts")).toBeInViewport({ ratio: 1 });
  expect(serious(await axeViolations(page))).toEqual([]);
  await page.getByTestId("fold-day").click();
  await expect(page.locator("#qd-title-body")).toBeVisible();
  await page.context().close();
});

test("price flashes: a CSS animation on a class, none under prefers-reduced-motion", async ({ browser, server }) => {
  const animation = (page: Page) =>
    page.evaluate(() => {
      const flashed = document.querySelector<HTMLElement>(".price[data-flash]");
      return flashed ? getComputedStyle(flashed, "::after").animationName : null;
    });
  const page = await open(browser, server.url, ["AAPL", "MSFT", "BTC-USD"]);
  await expect.poll(() => animation(page), { timeout: 10_000 }).toMatch(/^flash-[ab]$/);
  await page.emulateMedia({ reducedMotion: "reduce" });
  await expect.poll(() => animation(page)).toBe("none");
  await page.context().close();
});
