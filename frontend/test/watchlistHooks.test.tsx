// useSparklines and useAlerts against a stand-in for the page's StockfeedClient (given by
// StockfeedProvider, as the page's FeedProvider gives the real one): what they
// retain, how often they render, when an alert fires and how it is told.
import { act, renderHook } from "@testing-library/react";
import type { StockfeedClient } from "@stockfeed/client";
import { StockfeedProvider } from "@stockfeed/client/react";
import type { ReactNode } from "react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { useAlerts } from "../src/hooks/useAlerts";
import { useSparklines } from "../src/hooks/useSparklines";
import { advance } from "./helpers";

type Bar = { time: number; open: number; high: number; low: number; close: number; volume: number | null };
type Handler = (...args: never[]) => void;

class FakeClient {
  handlers = new Map<string, Set<Handler>>();
  held = new Map<string, number>();
  store = new Map<string, Bar[]>();
  quotes = new Map<string, { data: { price: number } }>();
  on(event: string, fn: Handler) {
    const set = this.handlers.get(event) ?? new Set();
    set.add(fn);
    this.handlers.set(event, set);
    return () => set.delete(fn);
  }
  emit(event: string, ...args: unknown[]) {
    for (const fn of this.handlers.get(event) ?? []) (fn as (...a: unknown[]) => void)(...args);
  }
  retain(t: string, interval?: string) {
    const key = `${t} ${interval ?? ""}`;
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.held.get(key) ?? 1) - 1;
      if (n > 0) this.held.set(key, n);
      else this.held.delete(key);
    };
  }
  bars(t: string, interval: string) {
    return this.store.get(`${t} ${interval}`) ?? [];
  }
  quote(t: string) {
    return this.quotes.get(t);
  }
  setBars(t: string, closes: number[], whole = false) {
    const bars = closes.map((c, i) => ({ time: 1_000_000 + i * 300, open: c, high: c, low: c, close: c, volume: 1 }));
    this.store.set(`${t} 5m`, bars);
    this.emit("bars", { ticker: t, interval: "5m", bars, changed: whole ? bars : bars.slice(-1), whole });
  }
  tick(t: string, price: number, change_percent: number | null = null, prev_close = 100) {
    const q = { ticker: t, seq: 1, timestamp: Date.now(), stale: false, receivedAt: Date.now(), data: { price, change_percent, prev_close } };
    this.quotes.set(t, q);
    this.emit("quote", q, { source: "ws", tick: null, gap: false });
  }
}

const asClient = (c: FakeClient) => c as unknown as StockfeedClient;
/** renderHook's options for a hook under <StockfeedProvider client={c}>. */
const withClient = (c: FakeClient) => ({
  wrapper: ({ children }: { children: ReactNode }) => <StockfeedProvider client={asClient(c)}>{children}</StockfeedProvider>,
});

beforeEach(() => {
  vi.useFakeTimers();
});

describe("useSparklines", () => {
  it("retains each listed ticker's 5m bars while active, none while paused", async () => {
    const c = new FakeClient();
    const hook = renderHook(({ tickers, active }) => useSparklines(tickers, active), {
      initialProps: { tickers: ["AAPL", "MSFT"], active: true },
      ...withClient(c),
    });
    expect([...c.held.keys()].sort()).toEqual(["AAPL 5m", "MSFT 5m"]);
    hook.rerender({ tickers: ["AAPL"], active: true });
    expect([...c.held.keys()]).toEqual(["AAPL 5m"]);
    hook.rerender({ tickers: ["AAPL"], active: false });
    expect(c.held.size).toBe(0);
    hook.unmount();
    expect(c.held.size).toBe(0);
  });

  it("takes a long list's new tickers a batch at a time (the server's history queue)", async () => {
    const c = new FakeClient();
    const many = Array.from({ length: 25 }, (_, i) => `T${i}`);
    const hook = renderHook(({ tickers }) => useSparklines(tickers, true), { initialProps: { tickers: many }, ...withClient(c) });
    expect(c.held.size).toBe(10);
    await advance(600);
    expect(c.held.size).toBe(20);
    await advance(600);
    expect(c.held.size).toBe(25);
    // One more: only it is new; the others stay held.
    hook.rerender({ tickers: [...many, "NEW"] });
    expect(c.held.size).toBe(26);
    hook.rerender({ tickers: many.slice(5) });
    expect(c.held.size).toBe(20);
  });

  it("takes the session's closes at most once a second, whatever the number of bar messages", async () => {
    const c = new FakeClient();
    let renders = 0;
    const hook = renderHook(() => {
      renders += 1;
      return useSparklines(["AAPL", "MSFT"], true);
    }, withClient(c));
    await advance(0);
    const before = renders;
    for (let i = 1; i <= 40; i += 1) {
      c.setBars("AAPL", [1, 2, i]);
      c.setBars("MSFT", [5, i]);
    }
    expect(renders).toBe(before); // no render per message
    await advance(1000);
    expect(hook.result.current.AAPL).toEqual([1, 2, 40]);
    expect(hook.result.current.MSFT).toEqual([5, 40]);
    expect(renders).toBe(before + 1);
    // A whole series (a `bars` message) is drawn at once, not at the next second.
    c.setBars("NVDA", [1, 2]);
    c.setBars("MSFT", [7, 8, 9], true);
    await advance(60);
    expect(hook.result.current.MSFT).toEqual([7, 8, 9]);
    const same = hook.result.current.AAPL;
    c.setBars("AAPL", [1, 2, 40]); // nothing new
    await advance(1000);
    expect(hook.result.current.AAPL).toBe(same);
  });
});

describe("useAlerts", () => {
  const notes: { title: string; body: string }[] = [];
  let asked = 0;
  beforeEach(() => {
    notes.length = 0;
    asked = 0;
    class FakeNotification {
      static permission: NotificationPermission = "default";
      static requestPermission = async () => {
        asked += 1;
        FakeNotification.permission = "granted";
        return "granted" as NotificationPermission;
      };
      constructor(title: string, opts: { body: string }) {
        notes.push({ title, body: opts.body });
      }
    }
    vi.stubGlobal("Notification", FakeNotification);
  });

  it("asks for notifications with the first alert, fires once on a crossing, tells it everywhere, and keeps it", async () => {
    const c = new FakeClient();
    const fired: string[] = [];
    const hook = renderHook(() => useAlerts(() => 2, (t) => fired.push(t)), withClient(c));
    c.tick("AAPL", 189);
    let err: string | null = "x";
    act(() => {
      err = hook.result.current.add("AAPL", "above", "190");
    });
    expect(err).toBeNull();
    await advance(0);
    expect(asked).toBe(1);
    expect(hook.result.current.permission).toBe("granted");
    expect(JSON.parse(localStorage.getItem("stockfeed.alerts")!)).toHaveLength(1);

    act(() => c.tick("AAPL", 189.5));
    expect(notes).toHaveLength(0);
    act(() => {
      c.tick("AAPL", 190.25);
      c.tick("AAPL", 191); // the same alert does not fire twice
    });
    expect(notes).toEqual([{ title: "Price alert: AAPL", body: "AAPL rose above 190.00 (last 190.25)" }]);
    expect(hook.result.current.toasts.map((t) => t.text)).toEqual(["Alert: AAPL rose above 190.00 (last 190.25)"]);
    expect(fired).toEqual(["Alert: AAPL rose above 190.00 (last 190.25)."]);
    const [a] = hook.result.current.alerts;
    expect(a?.triggered?.price).toBe(190.25);
    expect(JSON.parse(localStorage.getItem("stockfeed.alerts")!)[0].triggered.price).toBe(190.25);

    // Re-armed: it fires on the next crossing up.
    act(() => hook.result.current.rearm(a!.id));
    act(() => c.tick("AAPL", 189));
    act(() => c.tick("AAPL", 190.5));
    expect(notes).toHaveLength(2);
    act(() => hook.result.current.remove(a!.id));
    expect(hook.result.current.alerts).toEqual([]);
    expect(localStorage.getItem("stockfeed.alerts")).toBe("[]");
  });

  it("a move alert fires on the first quote already beyond; denied or missing notifications leave the toast", async () => {
    (Notification as unknown as { permission: string }).permission = "denied";
    const c = new FakeClient();
    const hook = renderHook(() => useAlerts(() => 2), withClient(c));
    act(() => void hook.result.current.add("MSFT", "move", "1.5"));
    await advance(0);
    expect(asked).toBe(0);
    expect(hook.result.current.permission).toBe("denied");
    act(() => c.tick("MSFT", 98, -2));
    expect(notes).toHaveLength(0);
    expect(hook.result.current.toasts[0]?.text).toMatch(/^Alert: MSFT moved −2 % from the previous close/);

    vi.stubGlobal("Notification", undefined);
    const other = renderHook(() => useAlerts(() => 2), withClient(new FakeClient()));
    expect(other.result.current.permission).toBe("unsupported");
  });

  it("alerts come back from storage; bad stored data is ignored", () => {
    localStorage.setItem("stockfeed.alerts", JSON.stringify([{ id: "a", ticker: "AAPL", kind: "below", level: 100, ref: 120, createdAt: 1, triggered: null }]));
    const c = new FakeClient();
    const hook = renderHook(() => useAlerts(() => 2), withClient(c));
    expect(hook.result.current.alerts).toHaveLength(1);
    // The first quote after a reload: the price when set stands in for the previous one.
    act(() => c.tick("AAPL", 99));
    expect(hook.result.current.alerts[0]?.triggered?.price).toBe(99);

    localStorage.setItem("stockfeed.alerts", '[{"id":1}]');
    expect(renderHook(() => useAlerts(() => 2), withClient(c)).result.current.alerts).toEqual([]);
  });
});
