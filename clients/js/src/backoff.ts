// Reconnect delays: 2 s, 4 s, 8 s, 8 s, … (base * 2^(attempt-1), at most 4 * base) plus a random
// jitter of up to 20 %, so that a server restart is not met by every client in the same
// millisecond. The jitter is injectable so that tests can make it zero and assert the
// exact schedule.

/** Extra wait for `attempt` (1, 2, …) whose delay before jitter is `delayMs`. */
export type Jitter = (attempt: number, delayMs: number) => number;

/** Up to 20 % of the attempt's delay, at random. */
export const randomJitter: Jitter = (_attempt, delayMs) => Math.random() * 0.2 * delayMs;

export const BACKOFF = { baseMs: 2000 } as const;

export function backoffDelay(
  attempt: number,
  baseMs: number = BACKOFF.baseMs,
  jitter: Jitter = randomJitter,
  maxMs: number = 4 * baseMs,
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp + Math.max(0, jitter(attempt, exp)));
}
