import { describe, expect, it } from "vitest";
import { fits, historyRange, intervalFor, presetFor, presetView, sessionsStart, type RangePreset } from "../src/lib/ranges";
import { dayDate, isExtended, sessionCalendar, sessionDay, sessionOf, sessionOpen, zoneOffset } from "../src/lib/sessions";

const MIN = 60;
const HOUR = 3600;
/** New York wall-clock time on a date in winter (EST, UTC-5), epoch seconds. */
const ny = (y: number, mo: number, d: number, h: number, m = 0) => Date.UTC(y, mo - 1, d, h + 5, m) / 1000;

/** XNYS 5m bars of one session, 04:00-20:00 New York time (or 09:30-16:00), up to `until`. */
function session(y: number, mo: number, d: number, extended = true, until = Infinity): number[] {
  const out: number[] = [];
  const from = extended ? ny(y, mo, d, 4) : ny(y, mo, d, 9, 30);
  const to = extended ? ny(y, mo, d, 20) : ny(y, mo, d, 16);
  for (let t = from; t < to && t < until; t += 5 * MIN) out.push(t);
  return out;
}

describe("range presets and bar sizes", () => {
  it("each preset goes with a few bar sizes; 1Y is daily bars only", () => {
    expect(fits("1d", "1Y")).toBe(true);
    expect(fits("1h", "1Y")).toBe(false);
    expect(fits("1m", "5D")).toBe(true);
    expect(fits("1d", "1D")).toBe(false);
  });

  it("a preset keeps the bar size when they go together, else takes the nearest that does", () => {
    expect(intervalFor("1Y", "1h")).toBe("1d");
    expect(intervalFor("1Y", "1m")).toBe("1d");
    expect(intervalFor("1M", "1m")).toBe("5m");
    expect(intervalFor("5D", "1m")).toBe("1m");
    expect(intervalFor("1D", "1d")).toBe("15m");
    expect(intervalFor("6M", "5m")).toBe("1h");
  });

  it("a bar size keeps the preset when they go together, else takes the nearest that does", () => {
    expect(presetFor("1m", "1Y")).toBe("5D");
    expect(presetFor("1d", "1D")).toBe("1M");
    expect(presetFor("1h", "1Y")).toBe("6M");
    expect(presetFor("1h", "1D")).toBe("5D");
    expect(presetFor("5m", "1M")).toBe("1M");
  });

  it("asks the server for at least the bar size's usual span", () => {
    expect(historyRange("1m", "1D")).toBe("5d");
    expect(historyRange("1m", "5D")).toBe("5d");
    expect(historyRange("5m", "1D")).toBe("5d");
    expect(historyRange("15m", "1D")).toBe("1mo");
    expect(historyRange("1d", "1Y")).toBe("1y");
    expect(historyRange("1d", "1M")).toBe("1y");
    expect(historyRange("1h", "5D")).toBe("6mo");
  });
});

describe("sessions", () => {
  // 2026-11-30 (a Monday, EST: UTC-5).
  const at = (h: number, m: number) => ny(2026, 11, 30, h, m);
  it("XNYS: pre before 09:30 New York time, post from 16:00, regular between", () => {
    expect(sessionOf(at(4, 0), "XNYS")).toBe("pre");
    expect(sessionOf(at(9, 29), "XNYS")).toBe("pre");
    expect(sessionOf(at(9, 30), "XNYS")).toBe("regular");
    expect(sessionOf(at(15, 59), "XNYS")).toBe("regular");
    expect(sessionOf(at(16, 0), "XNYS")).toBe("post");
    expect(isExtended(at(19, 55), "XNYS")).toBe(true);
    expect(isExtended(at(12, 0), "XNYS")).toBe(false);
  });
  it("summer time moves the UTC hours, not the New York ones", () => {
    const july = Date.UTC(2026, 6, 1, 13, 30) / 1000; // 09:30 EDT
    expect(sessionOf(july, "XNYS")).toBe("regular");
    expect(sessionOf(july - 60, "XNYS")).toBe("pre");
  });
  it("one-session markets are not shaded", () => {
    expect(sessionOf(at(3, 0), "CRYPTO")).toBeNull();
    expect(sessionOf(at(3, 0), "SIM")).toBeNull();
    expect(isExtended(at(3, 0), "SIM")).toBe(false);
  });

  it("a zone's offset, winter and summer (2026's switch: 8 March, 07:00 UTC)", () => {
    expect(zoneOffset("America/New_York", ny(2026, 1, 5, 12))).toBe(-5 * HOUR);
    expect(zoneOffset("America/New_York", Date.UTC(2026, 6, 1, 12) / 1000)).toBe(-4 * HOUR);
    expect(zoneOffset("America/New_York", Date.UTC(2026, 2, 8, 6, 59) / 1000)).toBe(-5 * HOUR);
    expect(zoneOffset("America/New_York", Date.UTC(2026, 2, 8, 7, 0) / 1000)).toBe(-4 * HOUR);
    expect(zoneOffset("Asia/Kolkata", 0)).toBe(5.5 * HOUR);
    expect(zoneOffset("UTC", 12345)).toBe(0);
  });

  it("XNYS sessions are New York dates: 19:55 is the same session as 04:00, not the next UTC day's", () => {
    const cal = sessionCalendar("XNYS", 300);
    const monday = sessionDay(ny(2026, 11, 30, 4), cal);
    expect(dayDate(monday)).toBe("2026-11-30");
    // 19:55 New York is 00:55 UTC on Tuesday.
    expect(sessionDay(ny(2026, 11, 30, 19, 55), cal)).toBe(monday);
    expect(sessionOpen(monday, cal)).toBe(ny(2026, 11, 30, 4));
    expect(sessionOpen(monday, sessionCalendar("XNYS", 300, false))).toBe(ny(2026, 11, 30, 9, 30));
    // In summer (EDT, UTC-4) the open is an hour earlier in UTC.
    const july = sessionDay(Date.UTC(2026, 6, 1, 12) / 1000, cal);
    expect(sessionOpen(july, cal)).toBe(Date.UTC(2026, 6, 1, 8) / 1000);
  });

  it("FX days run 17:00 to 17:00 New York time, dated by the day they end", () => {
    const cal = sessionCalendar("FX", 300);
    expect(dayDate(sessionDay(ny(2026, 11, 30, 16, 55), cal))).toBe("2026-11-30");
    expect(dayDate(sessionDay(ny(2026, 11, 30, 17, 0), cal))).toBe("2026-12-01");
    expect(sessionOpen(sessionDay(ny(2026, 12, 1, 3), cal), cal)).toBe(ny(2026, 11, 30, 17));
  });

  it("crypto, the simulator and daily bars: UTC days", () => {
    const t = Date.UTC(2026, 10, 30, 23, 59) / 1000;
    expect(dayDate(sessionDay(t, sessionCalendar("CRYPTO", 60)))).toBe("2026-11-30");
    expect(dayDate(sessionDay(t + 60, sessionCalendar("SIM", 60)))).toBe("2026-12-01");
    // A daily bar is 00:00 UTC of its session's date, whatever the market.
    expect(dayDate(sessionDay(Date.UTC(2026, 10, 30) / 1000, sessionCalendar("XNYS", 86400)))).toBe("2026-11-30");
  });
});

describe("the view of a preset", () => {
  const cal = sessionCalendar("XNYS", 300);
  // Five sessions: Tue 24 Nov to Mon 30 Nov 2026 (Thanksgiving, 26 Nov, has none in this list).
  const days: [number, number][] = [
    [11, 23],
    [11, 24],
    [11, 25],
    [11, 27],
    [11, 30],
  ];
  const full = days.flatMap(([m, d]) => session(2026, m, d));
  const perSession = 16 * 12; // 04:00-20:00 of 5m bars
  const view = (times: number[], p: RangePreset, now: number) => presetView(times, p, { calendar: cal, intervalSec: 300, now });

  it("counts sessions back from the newest bar", () => {
    expect(sessionsStart(full, 1, cal)).toBe(4 * perSession);
    expect(sessionsStart(full, 5, cal)).toBe(0);
    expect(sessionsStart(full, 9, cal)).toBe(0);
    expect(sessionsStart([], 1, cal)).toBe(0);
  });

  it("1D at night is the last session, 5D the last five, each from its first bar", () => {
    const night = ny(2026, 11, 30, 23);
    expect(view(full, "1D", night)).toEqual({ from: 4 * perSession - 0.5, to: full.length - 1 + 4 });
    expect(view(full, "5D", night)).toEqual({ from: 0, to: full.length - 1 + 4 });
  });

  it("just after the open, 1D keeps room for the whole session: the first bars are not giant", () => {
    // Monday 04:10: two bars of today's session.
    const early = [...days.slice(0, 4).flatMap(([m, d]) => session(2026, m, d)), ...session(2026, 11, 30, true, ny(2026, 11, 30, 4, 10))];
    const v = view(early, "1D", ny(2026, 11, 30, 4, 12))!;
    const first = 4 * perSession;
    expect(early.length - first).toBe(2);
    expect(v.from).toBe(first - 0.5);
    expect(v.to - v.from).toBeGreaterThanOrEqual(perSession);
  });

  it("with the extended hours hidden, 1D in the pre-market is the last regular session", () => {
    const regular = sessionCalendar("XNYS", 300, false);
    const bars = days.flatMap(([m, d]) => session(2026, m, d, false));
    const v = presetView(bars, "1D", { calendar: regular, intervalSec: 300, now: ny(2026, 12, 1, 5) })!;
    expect(v).toEqual({ from: bars.length - 78 - 0.5, to: bars.length - 1 + 4 });
  });

  it("1M and 1Y are calendar time back from the newest bar", () => {
    const dayBars = Array.from({ length: 400 }, (_, i) => Date.UTC(2025, 0, 1) / 1000 + i * 86400);
    const ctx = { calendar: sessionCalendar("XNYS", 86400), intervalSec: 86400, now: dayBars[399]! };
    expect(presetView(dayBars, "1Y", ctx)).toEqual({ from: 399 - 366 + 1 - 0.5, to: 399 + 4 });
    expect(presetView(dayBars, "1M", ctx)).toEqual({ from: 399 - 31 + 1 - 0.5, to: 399 + 4 });
    expect(presetView([], "1M", ctx)).toBeNull();
  });
});
