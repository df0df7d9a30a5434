// The watchlist's tools at phone, tablet and desktop sizes, against a real server in
// Debian's Chromium: an intraday sparkline drawn in every row (the 5m bars the page's client
// retains); the symbol search as a keyboard combobox over /api/symbols (a match added with
// ArrowDown + Enter, or a tap on a phone; the server's refusal, "No matches" and a duplicate said in words);
// sorting by the column header buttons (aria-sort) and the Sort menu; "My order" changed with
// the Move buttons (44 px on touch screens) and with Alt+ArrowUp/Down, stored; remove in
// reach. axe-core finds nothing serious with the search open and while reordering.
// Screenshots: test-results/watchlist-<size>.png (search open) and -reorder.png.
import { join } from "node:path";
import type { Page } from "@playwright/test";
import { chromiumMissing, results, skipReason } from "./env";
import { expect, test } from "./fixtures";
import { VIEWPORTS, axeViolations, openDashboard, serious } from "./ui";

test.skip(chromiumMissing, skipReason);

const SIZES = ["phone-portrait", "tablet", "desktop"].map((n) => VIEWPORTS.find((v) => v.name === n)!);
// A search with several matches per size: the second one is taken with ArrowDown.
const QUERY: Record<string, string> = { "phone-portrait": "bank", tablet: "air", desktop: "energy" };

const rows = (page: Page) => page.locator('[data-testid="watchlist"] tbody tr');
const order = (page: Page) => rows(page).evaluateAll((els) => els.map((e) => e.getAttribute("data-ticker") ?? ""));
const stored = (page: Page) => page.evaluate(() => JSON.parse(localStorage.getItem("stockfeed.watchlist") ?? "null") as string[] | null);

/** The change % of each row, top to bottom ("+1.23%", "−0.40%"; null for "—"). */
const changes = (page: Page) =>
  rows(page).evaluateAll((els) =>
    els.map((e) => {
      const t = e.querySelector(".col-pct")?.textContent ?? "";
      const v = Number(t.replace("−", "-").replace(/[%,+]/g, ""));
      return t.includes("—") || !Number.isFinite(v) ? null : v;
    }),
  );

const sortedBy = (list: (number | null)[], dir: "asc" | "desc") =>
  list.every((v, i) => i === 0 || v === null || list[i - 1] === null || (dir === "desc" ? list[i - 1]! >= v : list[i - 1]! <= v));

for (const vp of SIZES) {
  test(`${vp.name} ${vp.width}x${vp.height}: sparklines, search, sort, reorder, remove`, async ({ browser, server }) => {
    const errors: string[] = [];
    const { context, page } = await openDashboard(browser, server.url, vp, errors);
    try {
      const first = await order(page);
      expect(first.length, "the server's default watchlist").toBeGreaterThanOrEqual(4);

      // Sparklines: a line of several points in every row (5m bars over the socket).
      await expect
        .poll(() => page.locator('[data-testid="watchlist"] svg.spark polyline').count(), { message: "a sparkline per row", timeout: 15_000 })
        .toBe(first.length);
      const points = await page.locator("svg.spark").evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-points"))));
      expect(Math.min(...points), "points per sparkline").toBeGreaterThan(1);
      await expect(page.locator("svg.spark").first()).toHaveAttribute("aria-label", /today, \d+ five-minute closes: from [\d,.]+ to [\d,.]+/);

      // Search: a combobox; ArrowDown moves the highlight, Enter adds that match.
      const box = page.getByRole("combobox", { name: /Add a ticker/ });
      await box.click();
      await box.pressSequentially(QUERY[vp.name]!, { delay: 30 });
      await expect(box).toHaveAttribute("aria-expanded", "true");
      const options = page.getByRole("listbox", { name: "Matching symbols" }).getByRole("option");
      await expect.poll(() => options.count()).toBeGreaterThan(1);
      await expect(options.first()).toContainText(/NYSE|NASDAQ|CBOE|Arca|·/);
      await page.keyboard.press("ArrowDown");
      const activeId = (await box.getAttribute("aria-activedescendant"))!;
      const picked = (await page.locator(`[id="${activeId}"]`).getAttribute("data-testid"))!.replace("option-", "");
      await expect(options.nth(1)).toHaveAttribute("aria-selected", "true");
      if (vp.touch) expect((await options.nth(1).boundingBox())!.height, "option height on touch").toBeGreaterThanOrEqual(44);
      await page.screenshot({ path: join(results, `watchlist-${vp.name}.png`) });
      expect(serious(await axeViolations(page)), "axe with the search open").toEqual([]);
      // A phone takes the match with a tap; the others with Enter.
      if (vp.layout === "phone") await options.nth(1).tap();
      else await page.keyboard.press("Enter");
      await expect(page.getByTestId(`row-${picked}`)).toHaveCount(1);
      await expect(box).toHaveValue("");
      await expect(page.getByTestId(`price-${picked}`)).not.toHaveText("—", { timeout: 10_000 });
      expect(await stored(page)).toEqual([...first, picked]);

      // Refusals in words: the server's 422 message, no matches, a duplicate.
      await box.fill("a<b");
      await expect(page.getByTestId("search-note")).toContainText("Not a valid search: query.q:");
      await box.fill("zzqqzz");
      await expect(page.getByTestId("search-note")).toHaveText("No matches for “zzqqzz”");
      await box.fill(first[0]!.toLowerCase());
      await expect(page.getByTestId(`option-${first[0]}`)).toHaveAttribute("aria-disabled", "true");
      await page.keyboard.press("Enter");
      await expect(page.getByTestId("add-problem")).toHaveText(`${first[0]} is already in the watchlist`);
      await page.keyboard.press("Escape");
      await expect(box).toHaveAttribute("aria-expanded", "false");
      await page.keyboard.press("Escape");
      await expect(box).toHaveValue("");

      // Sort: header buttons with aria-sort; the list follows (taken once a second).
      const symHead = page.locator("th", { has: page.getByTestId("sort-symbol") });
      await page.getByTestId("sort-symbol").click();
      await expect(symHead).toHaveAttribute("aria-sort", "ascending");
      await expect.poll(() => order(page)).toEqual([...first, picked].sort());
      await page.getByTestId("sort-symbol").click();
      await expect(symHead).toHaveAttribute("aria-sort", "descending");
      await expect.poll(() => order(page)).toEqual([...first, picked].sort().reverse());
      await page.getByTestId("sort-change").click();
      await expect(symHead).not.toHaveAttribute("aria-sort", /./);
      await expect(page.locator("th", { has: page.getByTestId("sort-change") })).toHaveAttribute("aria-sort", "descending");
      await expect.poll(async () => sortedBy(await changes(page), "desc"), { message: "rows by change %, biggest first", timeout: 10_000 }).toBe(true);
      await page.getByTestId("sort-select").selectOption("volume:desc");
      await expect(page.getByTestId("watchlist").locator("table")).toHaveAttribute("data-sort", "volume:desc");
      await page.getByTestId("sort-select").selectOption("mine:asc");
      await expect.poll(() => order(page)).toEqual([...first, picked]);

      // Reorder: Move buttons (44 px on touch), and Alt+ArrowUp/Down keeping the focus.
      await page.getByTestId("reorder-toggle").click();
      await expect(page.getByTestId("reorder-toggle")).toHaveAttribute("aria-pressed", "true");
      const up = page.getByTestId(`move-up-${first[1]}`);
      await expect(up).toBeVisible();
      if (vp.touch) {
        const b = (await up.boundingBox())!;
        expect(Math.min(b.width, b.height), "move button size on touch").toBeGreaterThanOrEqual(44);
      }
      await up.click();
      const moved = [first[1]!, first[0]!, ...first.slice(2), picked];
      await expect.poll(() => order(page)).toEqual(moved);
      expect(await stored(page)).toEqual(moved);
      await page.screenshot({ path: join(results, `watchlist-${vp.name}-reorder.png`) });
      expect(serious(await axeViolations(page)), "axe while reordering").toEqual([]);
      await page.getByTestId("reorder-toggle").click();
      await page.getByRole("button", { name: `${first[1]}: show chart` }).focus();
      await page.keyboard.press("Alt+ArrowDown");
      await expect.poll(() => order(page)).toEqual(first.concat(picked));
      await expect(page.getByRole("button", { name: `${first[1]}: show chart` }), "the focus stays on the moved row").toBeFocused();
      await page.keyboard.press("ArrowDown"); // to the next row's symbol
      await expect(page.getByRole("button", { name: `${first[2]}: show chart` })).toBeFocused();
      expect(await stored(page)).toEqual([...first, picked]);

      // Remove: visible without hovering, a 44 px target on touch, in reach by keyboard.
      const remove = page.getByTestId(`remove-${picked}`);
      await remove.scrollIntoViewIfNeeded();
      await expect(remove).toBeInViewport();
      if (vp.touch) expect((await remove.boundingBox())!.height).toBeGreaterThanOrEqual(44);
      await remove.focus();
      await page.keyboard.press("Enter");
      await expect(page.getByTestId(`row-${picked}`)).toHaveCount(0);
      expect(await stored(page)).toEqual(first);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
}
