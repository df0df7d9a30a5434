// The add box as a combobox over /api/symbols (jsdom, fake timers, a stubbed fetch):
// debounced and aborted requests, keyboard choice, refusals in words.
import { act, fireEvent, render, screen } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { SymbolSearch } from "../src/components/SymbolSearch";
import { advance } from "./helpers";

const DIRECTORY = [
  { symbol: "AAPL", name: "Apple Inc.", exchange: "NASDAQ", type: "equity", currency: "USD", price_decimals: 2 },
  { symbol: "AMAT", name: "Applied Materials, Inc.", exchange: "NASDAQ", type: "equity", currency: "USD", price_decimals: 2 },
  { symbol: "TSLA", name: "Tesla, Inc.", exchange: "NASDAQ", type: "equity", currency: "USD", price_decimals: 2 },
];

type Answer = { status: number; body: unknown };
let answer: (q: string) => Answer;
const calls: { url: string; signal: AbortSignal | undefined }[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  calls.length = 0;
  answer = (q) => ({ status: 200, body: { symbols: DIRECTORY.filter((s) => s.symbol.includes(q.toUpperCase()) || s.name.toLowerCase().includes(q.toLowerCase())) } });
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init?: { signal?: AbortSignal }) => {
      calls.push({ url: input, signal: init?.signal });
      const q = new URL(input, "http://x").searchParams.get("q") ?? "";
      const { status, body } = answer(q);
      return { ok: status < 400, status, statusText: String(status), json: async () => body };
    }),
  );
});

function setup(listed: string[] = ["MSFT"], max = 50) {
  const onAdd = vi.fn();
  render(<SymbolSearch token={null} listed={listed} maxTickers={max} onAdd={onAdd} />);
  const box = screen.getByRole("combobox");
  return { onAdd, box };
}

const type = (box: HTMLElement, text: string) => fireEvent.change(box, { target: { value: text } });
const key = (box: HTMLElement, k: string) => fireEvent.keyDown(box, { key: k });

describe("SymbolSearch", () => {
  it("is a combobox controlling a listbox, searched after a pause, the previous request aborted", async () => {
    const { box } = setup();
    expect(box.getAttribute("aria-expanded")).toBe("false");
    const list = document.getElementById(box.getAttribute("aria-controls")!);
    expect(list?.getAttribute("role")).toBe("listbox");
    act(() => box.focus());
    type(box, "a");
    await advance(100);
    type(box, "ap");
    await advance(100);
    expect(calls).toHaveLength(0); // still typing
    await advance(60);
    expect(calls.map((c) => c.url)).toEqual(["/api/symbols?q=ap&limit=8"]);
    expect(box.getAttribute("aria-expanded")).toBe("true");
    const options = screen.getAllByRole("option");
    expect(options.map((o) => o.textContent)).toEqual(["AAPLApple Inc.NASDAQ · Stock", "AMATApplied Materials, Inc.NASDAQ · Stock"]);
    // The first match highlighted, named by aria-activedescendant.
    expect(box.getAttribute("aria-activedescendant")).toBe(options[0]!.id);
    expect(options[0]!.getAttribute("aria-selected")).toBe("true");

    // A request still out when the query changes is aborted; spaces around do not count.
    let release = () => {};
    answer = () => ({ status: 200, body: { symbols: [] } });
    const slow = vi.mocked(fetch).getMockImplementation()!;
    vi.mocked(fetch).mockImplementationOnce(async (input, init) => {
      await new Promise<void>((r) => (release = r));
      return slow(input, init);
    });
    type(box, "appl");
    await advance(160);
    expect(vi.mocked(fetch).mock.calls.at(-1)![0]).toBe("/api/symbols?q=appl&limit=8"); // out, unanswered
    const inFlight = vi.mocked(fetch).mock.calls.at(-1)![1] as { signal: AbortSignal };
    type(box, "appl ");
    expect(inFlight.signal.aborted).toBe(false);
    type(box, "apple");
    expect(inFlight.signal.aborted).toBe(true);
    release();
  });

  it("ArrowDown/Up move, Enter adds the highlighted one, Escape closes then clears", async () => {
    const { box, onAdd } = setup();
    act(() => box.focus());
    type(box, "ap");
    await advance(200);
    key(box, "ArrowDown");
    const options = screen.getAllByRole("option");
    expect(box.getAttribute("aria-activedescendant")).toBe(options[1]!.id);
    key(box, "ArrowDown"); // wraps
    expect(box.getAttribute("aria-activedescendant")).toBe(options[0]!.id);
    key(box, "ArrowUp");
    expect(box.getAttribute("aria-activedescendant")).toBe(options[1]!.id);
    key(box, "Escape");
    expect(box.getAttribute("aria-expanded")).toBe("false");
    expect((box as HTMLInputElement).value).toBe("ap");
    key(box, "ArrowDown"); // opens again
    expect(box.getAttribute("aria-expanded")).toBe("true");
    key(box, "Enter");
    expect(onAdd).toHaveBeenCalledWith("AMAT");
    expect((box as HTMLInputElement).value).toBe("");
    type(box, "zz");
    key(box, "Escape");
    key(box, "Escape");
    expect((box as HTMLInputElement).value).toBe("");
  });

  it("Enter before the answer waits for it and takes the exact symbol", async () => {
    const { box, onAdd } = setup();
    act(() => box.focus());
    type(box, "tsla");
    key(box, "Enter");
    await advance(0);
    expect(onAdd).toHaveBeenCalledWith("TSLA");
  });

  it("refuses a duplicate and a full list in words; says No matches", async () => {
    const { box, onAdd } = setup(["AAPL"], 2);
    act(() => box.focus());
    type(box, "aapl");
    await advance(200);
    expect(screen.getByRole("option", { name: /AAPL/ }).getAttribute("aria-disabled")).toBe("true");
    key(box, "Enter");
    expect(onAdd).not.toHaveBeenCalled();
    expect(screen.getByTestId("add-problem").textContent).toBe("AAPL is already in the watchlist");
    expect(box.getAttribute("aria-describedby")).toContain(screen.getByTestId("add-problem").id);

    type(box, "zzzz");
    await advance(200);
    expect(screen.getByTestId("search-note").textContent).toBe("No matches for “zzzz”");
    expect(screen.queryAllByRole("option")).toHaveLength(0);
    key(box, "Enter");
    expect(onAdd).not.toHaveBeenCalled();
  });

  it("a full watchlist", async () => {
    const { box, onAdd } = setup(["MSFT", "GOOG"], 2);
    act(() => box.focus());
    type(box, "tsla");
    await advance(200);
    key(box, "Enter");
    expect(onAdd).not.toHaveBeenCalled();
    expect(screen.getByTestId("add-problem").textContent).toMatch(/at most 2 tickers/);
  });

  it("shows the server's message for a 422, asks to wait on a 429, and adds a typed ticker when the directory cannot answer", async () => {
    const { box, onAdd } = setup();
    act(() => box.focus());
    answer = () => ({ status: 422, body: { error: { code: "bad_request", message: "query.q: String should match pattern" } } });
    type(box, "a<b");
    await advance(200);
    expect(screen.getByTestId("search-note").textContent).toBe("Not a valid search: query.q: String should match pattern");
    expect(box.getAttribute("aria-invalid")).toBe("true");

    answer = () => ({ status: 429, body: { error: { code: "rate_limited", message: "too many requests" } } });
    type(box, "nvda");
    await advance(200);
    expect(screen.getByTestId("search-note").textContent).toMatch(/^Too many searches: wait/);
    key(box, "Enter");
    expect(onAdd).toHaveBeenCalledWith("NVDA");
  });
});
