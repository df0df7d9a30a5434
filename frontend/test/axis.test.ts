// The time axis's marks: dates on each session's first bar in the exchange's time (not at
// 00:00 UTC), hours by the display zone's clock inside a session.
import { describe, expect, it } from "vitest";
import { fillWeights, markWeight, timeAxis, WEIGHT } from "../src/lib/chart/axis";
import { sessionCalendar } from "../src/lib/sessions";
import { exchangeZone } from "../src/lib/timezone";

const NY = "America/New_York";
/** New York wall-clock time in winter (EST, UTC-5), epoch seconds. */
const ny = (mo: number, d: number, h: number, m = 0) => Date.UTC(2026, mo - 1, d, h + 5, m) / 1000;
const xnys = sessionCalendar("XNYS", 300);

describe("mark weights", () => {
  it("a session's first bar is a day; 00:00 UTC inside a post-market is not", () => {
    // Mon 30 Nov 19:55 New York is Tue 00:55 UTC; the next bar is Tue 04:00 New York.
    expect(markWeight(ny(12, 1, 4), ny(11, 30, 19, 55) + 0, xnys, NY)).toBe(WEIGHT.month);
    expect(markWeight(ny(12, 2, 4), ny(12, 1, 19, 55), xnys, NY)).toBe(WEIGHT.day);
    // 19:00 New York is 00:00 UTC: the UTC date changes, the session does not (an hour mark).
    expect(markWeight(ny(12, 1, 19), ny(12, 1, 18, 55), xnys, NY)).toBe(WEIGHT.hour1);
    expect(markWeight(ny(12, 1, 12), ny(12, 1, 11, 55), xnys, NY)).toBe(WEIGHT.hour12);
    expect(markWeight(ny(12, 1, 9, 35), ny(12, 1, 9, 30), xnys, NY)).toBe(WEIGHT.min5);
    // A new year.
    expect(markWeight(Date.UTC(2027, 0, 4, 9) / 1000, ny(12, 31, 19, 55), xnys, NY)).toBe(WEIGHT.year);
  });

  it("hours by the display zone's clock: 12:00 in Berlin inside a New York session", () => {
    // 06:00 New York = 12:00 Berlin (CET, UTC+1).
    expect(markWeight(ny(12, 1, 6), ny(12, 1, 5, 55), xnys, "Europe/Berlin")).toBe(WEIGHT.hour12);
    expect(markWeight(ny(12, 1, 6), ny(12, 1, 5, 55), xnys, NY)).toBe(WEIGHT.hour6);
  });

  it("fills a run of bars, the first guessed from the average spacing", () => {
    const times = [ny(11, 30, 19, 50), ny(11, 30, 19, 55), ny(12, 1, 4), ny(12, 1, 4, 5)];
    const out: number[] = [];
    fillWeights(times, 0, (s, p) => markWeight(s, p, xnys, NY), out);
    // The average spacing is (04:05 − 19:50) / 3 = 2 h 45: the first bar's guessed previous is
    // 17:05, same session: the heaviest clock line between 17:05 and 19:50 is 18:00, a 6 h one.
    expect(out).toEqual([WEIGHT.hour6, WEIGHT.min5, WEIGHT.month, WEIGHT.min5]);
    // From index 2 on only: the rest untouched.
    const part = [1, 1, 1, 1];
    fillWeights(times, 2, (s, p) => markWeight(s, p, xnys, NY), part);
    expect(part).toEqual([1, 1, WEIGHT.month, WEIGHT.min5]);
  });
});

describe("labels", () => {
  it("a session's date label is its New York date, even where UTC has moved on", () => {
    const axis = timeAxis(exchangeZone("XNYS"), "5m", xnys);
    // 19:30 New York on Mon 30 Nov is Tue 00:30 UTC: still the 30th's session.
    expect(axis.tickLabel(ny(11, 30, 19, 30), "day")).toBe("30 Nov");
    expect(axis.tickLabel(ny(11, 30, 19, 30), "time")).toBe("19:30");
    expect(axis.tickLabel(ny(12, 1, 4), "month")).toBe("01 Dec");
    expect(axis.crosshairLabel(ny(12, 1, 4))).toBe("01 Dec, 04:00 ET");
  });
  it("daily bars: months by name, years by number", () => {
    const axis = timeAxis(exchangeZone("XNYS"), "1d", sessionCalendar("XNYS", 86400));
    const dec1 = Date.UTC(2026, 11, 1) / 1000;
    expect(axis.tickLabel(dec1, "month")).toBe("Dec");
    expect(axis.tickLabel(dec1, "day")).toBe("01 Dec");
    expect(axis.tickLabel(Date.UTC(2027, 0, 4) / 1000, "year")).toBe("2027");
  });
});
