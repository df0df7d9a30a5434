// Fake-timer helpers: advance time inside act() so React sees the state changes.
import { act } from "@testing-library/react";
import { vi } from "vitest";

export async function advance(ms: number): Promise<void> {
  await act(async () => {
    await vi.advanceTimersByTimeAsync(ms);
  });
}

/** A WebSocket constructor (the mock-socket one installed by `new WS(...)`) that counts. */
export function countingWebSocket(): { Impl: typeof WebSocket; opened: string[]; times: number[] } {
  const Base = globalThis.WebSocket;
  const opened: string[] = [];
  const times: number[] = [];
  const Impl = new Proxy(Base, {
    construct(target, args: [string]) {
      opened.push(args[0]);
      times.push(Date.now());
      return new target(...args);
    },
  });
  return { Impl, opened, times };
}

/** A fetch stub answering the REST endpoints the dashboard uses. */
export function stubFetch(routes: (url: string) => unknown) {
  const calls: string[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL) => {
    const url = String(input);
    calls.push(url);
    const body = routes(url);
    if (body === undefined) {
      return { ok: false, status: 404, statusText: "Not Found", json: async () => ({ error: { code: "not_found", message: "no" } }) };
    }
    return { ok: true, status: 200, statusText: "OK", json: async () => body };
  });
  vi.stubGlobal("fetch", fn);
  return { calls, fn };
}
