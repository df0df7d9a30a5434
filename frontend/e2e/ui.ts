// Shared by the layout, accessibility and states browser tests: the viewports, opening the
// dashboard in a fresh context at one of them, and axe-core's verdict on the page.
import { createRequire } from "node:module";
import type { Browser, BrowserContext, Page } from "@playwright/test";
import { expect } from "./fixtures";

export interface Viewport {
  name: string;
  width: number;
  height: number;
  /** A touch screen: 44 px targets expected. */
  touch: boolean;
  layout: "phone" | "tablet" | "desktop";
}

export const VIEWPORTS: Viewport[] = [
  { name: "phone-portrait", width: 390, height: 844, touch: true, layout: "phone" },
  { name: "phone-landscape", width: 844, height: 390, touch: true, layout: "phone" },
  { name: "tablet", width: 820, height: 1180, touch: true, layout: "tablet" },
  { name: "desktop", width: 1440, height: 900, touch: false, layout: "desktop" },
];

/** poll=3 / probe=2: shorter polling and retry periods than the defaults (60 s / 10 s). */
export const QUERY = "?poll=3&probe=2";

export async function openDashboard(
  browser: Browser,
  url: string,
  vp: Viewport,
  errors: string[],
  /** Before the page loads (routes, init scripts). */
  prepare?: (page: Page) => Promise<void>,
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    viewport: { width: vp.width, height: vp.height },
    deviceScaleFactor: 1,
    hasTouch: vp.touch,
    isMobile: vp.layout === "phone",
    // A local zone unlike the exchange's, so "Local" and "Exchange (ET)" differ.
    timezoneId: "Europe/Berlin",
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`${vp.name}: ${e.message}`));
  await prepare?.(page);
  await page.goto(url + QUERY, { waitUntil: "load" });
  await expect(page.locator(".app")).toHaveAttribute("data-layout", vp.layout);
  await expect(page.getByTestId("connection-status")).toHaveAttribute("data-state", "connected", { timeout: 15_000 });
  await expect(page.locator('[data-testid="price-chart"] canvas').first()).toBeVisible({ timeout: 15_000 });
  await expect(page.locator('[data-testid^="price-"]:not([data-testid="price-chart"])').first()).not.toHaveText("—", { timeout: 15_000 });
  return { context, page };
}

/** The largest canvas of the chart: its size on screen. */
export async function chartCanvasBox(page: Page): Promise<{ x: number; y: number; width: number; height: number }> {
  return page.evaluate(() => {
    let best = { x: 0, y: 0, width: 0, height: 0 };
    for (const c of document.querySelectorAll('[data-testid="price-chart"] canvas')) {
      const r = c.getBoundingClientRect();
      if (r.width * r.height > best.width * best.height) best = { x: r.x, y: r.y, width: r.width, height: r.height };
    }
    return best;
  });
}

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

export interface AxeFinding {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/** axe-core's violations on the page as it is now (WCAG 2.x A/AA and best practices). */
export async function axeViolations(page: Page): Promise<AxeFinding[]> {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ path: axePath });
  return page.evaluate(async () => {
    type Axe = {
      run: (
        ctx: Document,
        opts: object,
      ) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] }>;
    };
    const axe = (window as unknown as { axe: Axe }).axe;
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
  });
}

export const serious = (f: AxeFinding[]) => f.filter((v) => v.impact === "serious" || v.impact === "critical");
