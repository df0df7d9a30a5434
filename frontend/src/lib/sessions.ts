// Which part of the trading day a bar belongs to, for the chart's session shading: US
// equities (XNYS) trade a pre-market from 04:00 and a post-market to 20:00 around the
// 09:30-16:00 regular session, New York time. Closed hours have no bars at all (the time
// axis skips them), so they need no shade. Other markets (crypto, FX, the simulator
// without market hours) have one session: no shading.
//
// By the clock, not the calendar: on a half day (13:00 close) the afternoon bars read as
// regular. Only the current day's session comes from the server (market_status).

export type Session = "pre" | "regular" | "post";

const NY = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hour: "numeric", minute: "numeric", hourCycle: "h23" });

/** Minutes after midnight, New York time. */
function nyMinutes(timeSec: number): number {
  let h = 0;
  let m = 0;
  for (const part of NY.formatToParts(timeSec * 1000)) {
    if (part.type === "hour") h = Number(part.value);
    else if (part.type === "minute") m = Number(part.value);
  }
  return h * 60 + m;
}

/** The session of a bar starting at `timeSec`, on `market`; null where there is one session. */
export function sessionOf(timeSec: number, market: string): Session | null {
  if (market !== "XNYS") return null;
  const min = nyMinutes(timeSec);
  if (min < 9 * 60 + 30) return "pre";
  if (min >= 16 * 60) return "post";
  return "regular";
}

/** Whether bars of `intervalSec` can be shaded by session (a daily bar holds them all). */
export const shadable = (intervalSec: number): boolean => intervalSec <= 3600;
