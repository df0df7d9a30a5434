import { describe, expect, it } from "vitest";
import { describeMarket } from "../src/lib/market";
import { exchangeZone, formatDateTime, formatTime, isZoneChoice, sessionDate, zoneFor } from "../src/lib/timezone";
import type { MarketStatus } from "../src/lib/types";

// 2025-11-24 19:45:30 UTC = 14:45:30 in New York (EST), 20:45:30 in Berlin (CET).
const T = Date.UTC(2025, 10, 24, 19, 45, 30);

describe("time zones", () => {
  it("labels every time with its zone", () => {
    expect(formatTime(T, exchangeZone("XNYS"))).toBe("14:45:30 ET");
    expect(formatTime(T, exchangeZone("CRYPTO"), false)).toBe("19:45 UTC");
    expect(formatTime(T, { tz: "Europe/Berlin", label: "CET" })).toBe("20:45:30 CET");
    expect(formatDateTime(T, exchangeZone("FX"))).toBe("Mon 24 Nov, 14:45 ET");
    expect(formatTime(null, exchangeZone("XNYS"))).toBe("—");
  });

  it("chooses between the exchange's zone and the browser's", () => {
    expect(zoneFor("exchange", "XNYS").tz).toBe("America/New_York");
    expect(zoneFor("local", "XNYS").tz).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
    expect(isZoneChoice("local")).toBe(true);
    expect(isZoneChoice("utc")).toBe(false);
  });

  it("shows a daily bar as its session's date, never shifted into a zone", () => {
    // Monday's bar: 00:00 UTC of Mon 24 Nov, which is Sunday evening in New York.
    expect(sessionDate(Date.UTC(2025, 10, 24) / 1000)).toBe("24 Nov 25");
  });

  it("says the market's next open or close in the chosen zone", () => {
    const closed: MarketStatus = {
      type: "market_status",
      market: "XNYS",
      is_open: false,
      session: "closed",
      next_open: "2025-11-25T14:30:00Z",
      next_close: null,
    };
    expect(describeMarket(closed, exchangeZone("XNYS"))).toEqual({ label: "Closed", detail: "opens Tue 09:30 ET" });
    expect(describeMarket(closed, { tz: "Europe/Berlin", label: "CET" }).detail).toBe("opens Tue 15:30 CET");
  });
});
