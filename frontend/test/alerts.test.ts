// Price alerts, the pure part: when a quote sets one off (crossings, the % move, once),
// what is kept (validated from storage), and what is said.
import { describe, expect, it } from "vitest";
import {
  check,
  describeCondition,
  describeTrigger,
  fires,
  isAlertList,
  isPriceAlert,
  makeAlert,
  movePct,
  pendingNote,
  rearm,
  type AlertKind,
  type PriceAlert,
} from "../src/lib/alerts";

const alert = (kind: AlertKind, level: number, ref: number | null = null): PriceAlert => ({
  id: `${kind}-${level}`,
  ticker: "AAPL",
  kind,
  level,
  ref,
  createdAt: 1,
  triggered: null,
});
const at = (price: number, changePercent: number | null = null, prevClose: number | null = null) => ({ price, changePercent, prevClose });
const fmt = (v: number) => v.toFixed(2);

describe("crossings", () => {
  it("above: fires when the price goes from under the level to at or over it", () => {
    const a = alert("above", 190);
    expect(fires(a, 189.5, at(190.1))).toBe(true);
    expect(fires(a, 189.5, at(190))).toBe(true); // at the level counts
    expect(fires(a, 189, at(189.9))).toBe(false); // still under
    expect(fires(a, 190.5, at(191))).toBe(false); // already over: no crossing
    expect(fires(a, 191, at(189))).toBe(false); // crossing down is not "above"
  });

  it("below: the mirror", () => {
    const a = alert("below", 180);
    expect(fires(a, 180.2, at(179.9))).toBe(true);
    expect(fires(a, 180.2, at(180))).toBe(true);
    expect(fires(a, 179, at(178))).toBe(false);
    expect(fires(a, 179, at(181))).toBe(false);
  });

  it("without a previous quote, the price when set stands in (crossed while the page was closed)", () => {
    expect(fires(alert("above", 190, 185), null, at(192))).toBe(true);
    expect(fires(alert("above", 190, 195), null, at(192))).toBe(false);
    expect(fires(alert("below", 180, 185), null, at(179))).toBe(true);
    expect(fires(alert("above", 190, null), null, at(192)), "nothing known before: no crossing").toBe(false);
  });

  it("move: fires on the first quote whose move from the previous close reaches the size, either way", () => {
    const a = alert("move", 2);
    expect(fires(a, null, at(102.5, 2.5))).toBe(true); // the first quote already beyond
    expect(fires(a, 101, at(97.9, -2.1))).toBe(true); // down counts too
    expect(fires(a, 100, at(101, 1))).toBe(false);
    // Worked out from the previous close when the quote has no change_percent.
    expect(fires(a, null, at(98, null, 100))).toBe(true);
    expect(fires(a, null, at(99, null, 100))).toBe(false);
    expect(fires(a, null, at(99, null, null)), "no previous close: unknown move").toBe(false);
  });

  it("a triggered alert does not fire again until re-armed; re-arming takes the price now", () => {
    const [hit] = check([alert("above", 190)], 189, at(191), 5000);
    expect(hit?.triggered).toEqual({ at: 5000, price: 191, movePct: null });
    expect(fires(hit!, 189, at(192))).toBe(false);
    const again = rearm(hit!, 185);
    expect(again.triggered).toBeNull();
    expect(again.ref).toBe(185);
    expect(fires(again, null, at(190.5))).toBe(true);
  });

  it("check returns only the alerts that fire, with the move at that quote", () => {
    const list = [alert("above", 190), alert("below", 100), alert("move", 1)];
    const hits = check(list, 189, at(191, 1.5), 7);
    expect(hits.map((a) => a.kind)).toEqual(["above", "move"]);
    expect(hits[1]?.triggered?.movePct).toBe(1.5);
  });

  it("a quote without a price sets nothing off", () => {
    expect(fires(alert("move", 1), null, { price: null, changePercent: 5 })).toBe(false);
  });
});

describe("making and keeping alerts", () => {
  it("validates the level", () => {
    expect(makeAlert("AAPL", "above", "190.5", 189, 1, "x")).toMatchObject({ level: 190.5, ref: 189, triggered: null });
    expect(makeAlert("AAPL", "above", "1,234.5", 1, 1, "x")).toMatchObject({ level: 1234.5 });
    expect(makeAlert("AAPL", "above", "", 1, 1, "x")).toHaveProperty("error");
    expect(makeAlert("AAPL", "below", "-3", 1, 1, "x")).toHaveProperty("error");
    expect(makeAlert("AAPL", "below", "abc", 1, 1, "x")).toHaveProperty("error");
    expect(makeAlert("AAPL", "move", "150", 1, 1, "x")).toHaveProperty("error");
    expect(makeAlert("AAPL", "move", "2", 1, 1, "x")).toMatchObject({ kind: "move", level: 2 });
  });

  it("reads back only well-formed alerts", () => {
    const ok = alert("above", 190, 180);
    expect(isPriceAlert(ok)).toBe(true);
    expect(isPriceAlert({ ...ok, triggered: { at: 1, price: 191, movePct: null } })).toBe(true);
    expect(isPriceAlert({ ...ok, kind: "sideways" })).toBe(false);
    expect(isPriceAlert({ ...ok, level: "190" })).toBe(false);
    expect(isPriceAlert({ ...ok, level: 0 })).toBe(false);
    expect(isPriceAlert({ ...ok, triggered: { at: 1 } })).toBe(false);
    expect(isAlertList([ok])).toBe(true);
    expect(isAlertList([ok, null])).toBe(false);
    expect(isAlertList("[]")).toBe(false);
  });

  it("says when a level is already passed", () => {
    expect(pendingNote(alert("above", 190), 195)).toMatch(/already above/);
    expect(pendingNote(alert("above", 190), 185)).toBeNull();
    expect(pendingNote(alert("below", 190), 185)).toMatch(/already below/);
    expect(pendingNote(alert("move", 1), 185)).toBeNull();
  });

  it("words", () => {
    expect(describeCondition(alert("above", 190), fmt)).toBe("Above 190.00");
    expect(describeCondition(alert("move", 2.5), fmt)).toBe("Moves ±2.5 %");
    const [up] = check([alert("above", 190)], 189, at(190.12), 1);
    expect(describeTrigger(up!, fmt)).toBe("AAPL rose above 190.00 (last 190.12)");
    const [down] = check([alert("below", 180)], 181, at(179.5), 1);
    expect(describeTrigger(down!, fmt)).toBe("AAPL fell below 180.00 (last 179.50)");
    const [move] = check([alert("move", 2)], null, at(97, -3), 1);
    expect(describeTrigger(move!, fmt)).toMatch(/^AAPL moved −3 % from the previous close/);
    expect(movePct({ price: 110, prevClose: 100 })).toBeCloseTo(10);
  });
});
