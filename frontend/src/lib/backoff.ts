// Reconnect delays: 2 s, 4 s, 8 s (base * 2^(attempt-1)) plus jitter, so that a server
// restart is not met by every client in the same millisecond. Jitter is injectable so
// tests can make it zero and assert the exact schedule.

export type Jitter = (attempt: number) => number;

/** Up to 20% of the base delay of that attempt, at random. */
export const randomJitter: Jitter = (attempt) => Math.random() * 0.2 * backoffDelay(attempt, 2000, () => 0);

export function backoffDelay(attempt: number, baseMs = 2000, jitter: Jitter = randomJitter): number {
  const exp = baseMs * 2 ** Math.max(0, attempt - 1);
  return Math.round(exp + Math.max(0, jitter(attempt)));
}
