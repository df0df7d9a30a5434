// The dashboard at phone (portrait and landscape), tablet and desktop sizes, against a real
// server in Debian's Chromium: the connection state on screen at all times, the chart first
// with a real canvas, every interval and range button and the comparison visible and usable,
// the panels reachable, touch
// targets of 44 px, nothing clipped and no horizontal scroll. Screenshots per size land in
// test-results/responsive-<size>.png (and -bottom.png: scrolled to the end).
import { join } from "node:path";
import type { Page } from "@playwright/test";
import { chromiumMissing, results, skipReason } from "./env";
import { expect, test } from "./fixtures";
import { VIEWPORTS, chartCanvasBox, openDashboard } from "./ui";

test.skip(chromiumMissing, skipReason);

const INTERVALS = ["1m", "5m", "15m", "1h", "1d"];
const RANGES = ["1D", "5D", "1M", "6M", "1Y"];

/** Whether the element is what a tap at its centre hits (nothing covers it). */
const uncovered = (el: Element) => {
  const r = el.getBoundingClientRect();
  const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
  return top === el || el.contains(top);
};

/** Interactive elements smaller than 44 px either way (visible ones only). */
async function smallTargets(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    for (const el of document.querySelectorAll<HTMLElement>("button, select, input, [role='tab'], a[href]")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || el.closest(".sr-only")) continue;
      if (r.width < 44 || r.height < 44) {
        out.push(`${el.tagName.toLowerCase()}[${el.getAttribute("data-testid") ?? el.getAttribute("aria-label") ?? el.textContent?.trim()}] ${Math.round(r.width)}x${Math.round(r.height)}`);
      }
    }
    return out;
  });
}

/** Elements whose content is cut off (text wider than its box, with overflow hidden). */
async function clipped(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const sel = ".toolbar *, .hdr *, .wl-table td, .wl-table th, .m-row dd, .m-row dt, .conn *";
    for (const el of document.querySelectorAll<HTMLElement>(sel)) {
      // Hidden on purpose (a visually hidden label) or not rendered: not clipping.
      if (el.closest(".sr-only") || el.getClientRects().length === 0 || el.clientWidth <= 1) continue;
      if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflow !== "visible") {
        out.push(`${el.className || el.tagName}: "${el.textContent?.trim().slice(0, 30)}" ${el.scrollWidth}>${el.clientWidth}`);
      }
    }
    return out;
  });
}

for (const vp of VIEWPORTS) {
  test(`${vp.name} ${vp.width}x${vp.height}: status, chart and intervals visible and usable`, async ({ browser, server }) => {
    const errors: string[] = [];
    const { context, page } = await openDashboard(browser, server.url, vp, errors);
    try {
      const status = page.getByTestId("connection-status");
      await expect(status).toBeInViewport();

      // The chart: a canvas of real size, first on a phone (its top inside the first screen).
      const box = await chartCanvasBox(page);
      expect(box.width, "chart canvas width").toBeGreaterThan(vp.width * 0.5);
      expect(box.height, "chart canvas height").toBeGreaterThan(150);
      expect(box.y, "the chart starts on the first screen").toBeLessThan(vp.height * 0.5);
      expect(box.x + box.width, "the chart fits the width").toBeLessThanOrEqual(vp.width + 0.5);

      // Every interval button on screen, not covered by anything, and working.
      for (const i of INTERVALS) {
        const b = page.getByTestId(`interval-${i}`);
        await expect(b).toBeInViewport({ ratio: 1 });
        expect(await b.evaluate(uncovered), `interval ${i} is not covered`).toBe(true);
        await b.click();
        await expect(b).toHaveAttribute("aria-pressed", "true");
        await expect(page.getByTestId("price-chart")).toHaveAttribute("data-interval", i);
      }
      // The range presets likewise (a long one moves to a bar size that reaches it).
      for (const r of RANGES) {
        const b = page.getByTestId(`range-${r}`);
        await expect(b).toBeInViewport({ ratio: 1 });
        expect(await b.evaluate(uncovered), `range ${r} is not covered`).toBe(true);
        await b.click();
        await expect(b).toHaveAttribute("aria-pressed", "true");
        await expect(page.getByTestId("price-chart")).toHaveAttribute("data-preset", r);
      }
      await page.getByTestId("range-5D").click();
      await page.getByTestId("interval-5m").click();
      // The comparison's choice is there too.
      const cmp = page.getByTestId("compare-select");
      await expect(cmp).toBeInViewport({ ratio: 1 });
      expect(await cmp.evaluate(uncovered), "compare is not covered").toBe(true);
      // ...and works at this size: the other ticker's line on a % scale, then off again.
      const percent = () =>
        page.evaluate(() => {
          type Chart = { percent: () => boolean; compared: () => { bars: number } | null };
          const c = (document.querySelector('[data-testid="chart-canvas-box"]') as (HTMLElement & { stockfeedChart?: Chart }) | null)?.stockfeedChart;
          return c ? { percent: c.percent(), bars: c.compared()?.bars ?? 0 } : null;
        });
      const other = await cmp.locator("option").nth(1).getAttribute("value");
      await cmp.selectOption(other!);
      await expect.poll(percent, { timeout: 15_000 }).toMatchObject({ percent: true });
      await expect.poll(async () => (await percent())?.bars ?? 0, { timeout: 15_000 }).toBeGreaterThan(10);
      await cmp.selectOption("");
      await expect.poll(percent).toMatchObject({ percent: false });

      // No horizontal scroll, nothing clipped, 44 px targets on touch screens.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, "horizontal overflow in px").toBeLessThanOrEqual(0);
      expect(await clipped(page), "clipped text").toEqual([]);
      if (vp.touch) expect(await smallTargets(page), "touch targets under 44 px").toEqual([]);

      // The remove control is there without hovering (keyboard and touch users).
      const firstRow = page.locator('[data-testid^="row-"]').first();
      await expect(firstRow.locator(".rm")).toBeVisible();

      await page.waitForTimeout(1500); // a few live ticks on the forming candle
      await page.screenshot({ path: join(results, `responsive-${vp.name}.png`) });

      // On a phone the ticker is said once on screen (the quote line), not again in the
      // toolbar or the chart's legend.
      const ticker = (await page.getByTestId("price-chart").getAttribute("data-ticker"))!;
      const shown = await page.evaluate((t) => {
        const seen: string[] = [];
        for (const el of document.querySelectorAll<HTMLElement>(".qh-sym, .tb-ticker, .lg-name")) {
          const r = el.getBoundingClientRect();
          if (r.width > 1 && r.height > 1 && el.textContent?.includes(t)) seen.push(el.className);
        }
        return seen;
      }, ticker);
      if (vp.layout === "phone") expect(shown, `${ticker} on screen`).toEqual(["qh-sym"]);
      else expect(shown.length, `${ticker} on screen`).toBeGreaterThanOrEqual(1);

      // Panels reachable: tabs on a phone, beside or under the chart elsewhere.
      if (vp.layout === "phone") {
        for (const [tab, panel] of [["day", "quote-details"], ["connection", "ws-metrics"], ["watchlist", "watchlist"]] as const) {
          await page.getByTestId(`tab-${tab}`).click();
          await page.getByTestId(panel).scrollIntoViewIfNeeded();
          await expect(page.getByTestId(panel)).toBeInViewport();
          await expect(status, `status visible with the ${tab} tab scrolled into view`).toBeInViewport();
        }
      } else {
        for (const panel of ["watchlist", "quote-details", "ws-metrics"]) {
          await page.getByTestId(panel).scrollIntoViewIfNeeded();
          await expect(page.getByTestId(panel)).toBeInViewport();
          await expect(status).toBeInViewport();
        }
      }
      // Scrolled to the very end, the connection state is still on screen.
      await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
      await expect(status).toBeInViewport();
      await page.screenshot({ path: join(results, `responsive-${vp.name}-bottom.png`) });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
}
