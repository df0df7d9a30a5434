// Accessibility and readouts against a real server in Debian's Chromium: axe-core finds no
// serious or critical violation at any of the four sizes (live, and on a phone with each
// tab open); one polite live region, for status changes only; the chart has a text
// alternative and a keyboard crosshair whose legend reads the bar under it; a ticker is
// removed and added back with the keyboard alone; the time-zone choice reaches every clock;
// a chart keeps its zoom when the user switches away and back.
import type { Page } from "@playwright/test";
import { chromiumMissing, skipReason } from "./env";
import { expect, test } from "./fixtures";
import { VIEWPORTS, axeViolations, openDashboard, serious } from "./ui";

test.skip(chromiumMissing, skipReason);

for (const vp of VIEWPORTS) {
  test(`axe at ${vp.name} ${vp.width}x${vp.height}: no serious or critical violations`, async ({ browser, server }) => {
    const errors: string[] = [];
    const { context, page } = await openDashboard(browser, server.url, vp, errors);
    try {
      const found = await axeViolations(page);
      if (found.length > 0) console.log(`axe ${vp.name}: ${found.map((f) => `${f.id} (${f.impact})`).join(", ")}`);
      expect(serious(found)).toEqual([]);
      if (vp.layout === "phone") {
        for (const tab of ["day", "connection"]) {
          await page.getByTestId(`tab-${tab}`).click();
          expect(serious(await axeViolations(page)), `with the ${tab} tab open`).toEqual([]);
        }
      }
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
}

test.describe("keyboard, live region, readouts (desktop)", () => {
  test.describe.configure({ mode: "serial" });
  let page: Page;
  const errors: string[] = [];

  test.beforeAll(async ({ browser, server }) => {
    ({ page } = await openDashboard(browser, server.url, VIEWPORTS.find((v) => v.name === "desktop")!, errors));
  });
  test.afterAll(async () => {
    await page?.context().close();
  });

  test("one polite live region, speaking status changes and not the clock", async () => {
    const live = page.locator("[aria-live], [role='status'], [role='log'], [role='alert']");
    await expect(live).toHaveCount(1);
    const announcer = page.getByTestId("announcer");
    await expect(announcer).toHaveAttribute("aria-live", "polite");
    await expect(announcer).toHaveText(/^Live\./);
    const said = await announcer.textContent();
    await page.waitForTimeout(2200); // the clock ticks twice
    expect(await announcer.textContent(), "the clock is not announced").toBe(said);
    await page.getByTestId("realtime-toggle").click();
    await expect(announcer).toHaveText(/^Polling: real-time is off\./);
    await page.getByTestId("realtime-toggle").click();
    await expect(announcer).toHaveText(/^Live\./, { timeout: 15_000 });
    await expect(page.locator("tr[aria-selected]"), "no aria-selected on plain rows").toHaveCount(0);
  });

  test("the add button has a name; a ticker is removed and added back by keyboard", async () => {
    await expect(page.getByRole("button", { name: "Add ticker to watchlist" })).toBeVisible();
    const remove = page.getByRole("button", { name: "Remove TSLA" });
    await expect(remove).toBeVisible(); // not hidden until hover
    await remove.focus();
    await page.keyboard.press("Enter");
    await expect(page.getByTestId("row-TSLA")).toHaveCount(0);
    await page.getByTestId("add-ticker").focus();
    await page.keyboard.type("tsla");
    await page.keyboard.press("Enter");
    await expect(page.getByTestId("row-TSLA")).toHaveCount(1);
    await expect(page.getByTestId("price-TSLA")).not.toHaveText("—", { timeout: 10_000 });
  });

  test("the chart has a text alternative", async () => {
    const box = page.getByTestId("chart-canvas-box");
    await expect(box).toHaveAttribute("aria-label", /AAPL 5m candlestick chart/);
    await expect(page.getByTestId("chart-summary")).toHaveText(/AAPL 5m candlestick chart: \d+ bars from .+ to .+\. Last close [\d,]+\.\d\d/);
  });

  test("arrow keys move the crosshair; the legend reads that bar's OHLC, volume and change", async () => {
    const legend = page.getByTestId("chart-legend");
    const box = page.getByTestId("chart-canvas-box");
    await box.focus();
    await page.keyboard.press("ArrowLeft"); // onto the last bar
    await expect(legend).not.toHaveAttribute("data-hovered", "");
    const last = await legend.getAttribute("data-hovered");
    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("ArrowLeft");
    const earlier = await legend.getAttribute("data-hovered");
    expect(Number(earlier)).toBeLessThan(Number(last));
    await expect(legend).toContainText(/O\s*[\d,]+\.\d\d\s*H\s*[\d,]+\.\d\d\s*L\s*[\d,]+\.\d\d\s*C\s*[\d,]+\.\d\d\s*Vol\s*[\d,]+\s*[+−]?[\d,.]+ \([+−]?[\d.]+%\)/);
    await page.keyboard.press("Shift+ArrowLeft");
    expect(Number(await legend.getAttribute("data-hovered"))).toBeLessThan(Number(earlier));
    await page.keyboard.press("End");
    await expect(legend).toHaveAttribute("data-hovered", last!);
    await page.keyboard.press("Escape");
    await expect(legend).toHaveAttribute("data-hovered", "");
    // The mouse does the same.
    const r = (await box.boundingBox())!;
    await page.mouse.move(r.x + r.width * 0.4, r.y + r.height * 0.5);
    await expect(legend).not.toHaveAttribute("data-hovered", "");
    await page.mouse.move(r.x - 50, r.y + 10);
  });

  test("one time-zone choice, labelled, used by the clock, the legend and the quote time", async () => {
    const clock = page.getByTestId("clock");
    const select = page.getByTestId("tz-select");
    // The exchange's zone label, as the choice names it ("Exchange (ET)"; UTC for the simulator's SIM market).
    const exchange = (await select.locator("option[value='exchange']").textContent())!.match(/\((.+)\)/)![1]!;
    await expect(clock).toHaveText(new RegExp(` ${exchange}$`));
    await expect(page.getByLabel("Times")).toBeVisible();
    await select.selectOption("local");
    await expect(clock).not.toHaveText(new RegExp(` ${exchange}$`));
    const label = (await clock.textContent())!.split(" ").pop()!;
    expect(label, "the local zone's label").toMatch(/^(CET|CEST|GMT\+1|GMT\+2)$/);
    await expect(page.getByTestId("quote-details")).toContainText(label);
    await expect(page.getByTestId("chart-legend")).toContainText(label);
    await expect(page.locator('[data-metric="last-update"]')).toContainText(label);
    await select.selectOption("exchange");
    await expect(clock).toHaveText(new RegExp(` ${exchange}$`));
  });

  test("thousands separators and the day's figures", async () => {
    await expect(page.getByTestId("quote-details")).toContainText(/Volume\s*\d{1,3}(,\d{3})+/);
  });

  test("the chart keeps its bars and zoom per ticker and interval", async () => {
    const chart = page.getByTestId("price-chart");
    const box = page.getByTestId("chart-canvas-box");
    const r = (await box.boundingBox())!;
    await page.mouse.move(r.x + r.width * 0.5, r.y + r.height * 0.5);
    await page.mouse.wheel(0, -600); // zoom in
    await page.waitForTimeout(300);
    const zoomed = Number(await chart.getAttribute("data-bars-in-view"));
    await page.mouse.move(r.x - 50, r.y + 10);
    await page.getByRole("button", { name: "MSFT: show chart" }).click();
    await expect(chart).toHaveAttribute("data-ticker", "MSFT");
    await page.getByRole("button", { name: "AAPL: show chart" }).click();
    await expect(chart).toHaveAttribute("data-ticker", "AAPL");
    // From the cache at once: no "Loading" note, the same zoom.
    await expect(page.locator(".chart-note")).toHaveCount(0);
    await page.waitForTimeout(1000); // the fresh history merged in
    const back = Number(await chart.getAttribute("data-bars-in-view"));
    console.log(`a11y: bars in view zoomed ${zoomed}, after switching away and back ${back}`);
    expect(Math.abs(back - zoomed), "zoom kept").toBeLessThanOrEqual(1);
  });

  test("no uncaught errors in the page", () => {
    expect(errors).toEqual([]);
  });
});
