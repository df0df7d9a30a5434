// @vitest-environment jsdom
// The React bindings: a hook re-renders for what it selected, never for another ticker's
// tick, and holds its ticker (and bars) subscribed while mounted.
import { act, cleanup, render } from "@testing-library/react";
import type { ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StockfeedClient } from "../src/client.js";
import { StockfeedProvider, useBars, useConnection, useMarkets, useQuote, useStockfeedEvent } from "../src/react/index.js";
import { FakeSocket } from "./fakeSocket.js";

const data = (price: number) => ({
  price,
  change: null,
  change_percent: null,
  volume: 1,
  open: null,
  high: null,
  low: null,
  prev_close: null,
  market_time: 1,
});
const update = (ticker: string, seq: number, price: number) => ({ type: "price_update", ticker, seq, timestamp: seq, data: data(price) });

let client: StockfeedClient;
let ws: FakeSocket;

async function start(ui: ReactNode) {
  client = new StockfeedClient("ws://feed.test/ws", { WebSocket: FakeSocket, settlePingMs: 0 });
  const view = render(<StockfeedProvider client={client}>{ui}</StockfeedProvider>);
  await act(async () => {
    void client.connect();
    while (client.connection.state !== "connected") await new Promise((r) => setTimeout(r, 2));
  });
  ws = FakeSocket.last;
  return view;
}

const send = (msg: object) => act(() => ws.receive(msg));

beforeEach(() => FakeSocket.reset("open"));
afterEach(() => {
  cleanup();
  client.close();
});

describe("React hooks", () => {
  it("useQuote: renders its ticker's quotes only; a selector renders only when its value changes", async () => {
    const renders = { quote: 0, rounded: 0, conn: 0 };
    function Quote() {
      renders.quote += 1;
      const q = useQuote("aapl");
      return <span data-testid="q">{q ? q.data.price : "…"}</span>;
    }
    function Rounded() {
      renders.rounded += 1;
      const p = useQuote("AAPL", (q) => (q ? Math.round(q.data.price) : null));
      return <span data-testid="r">{p}</span>;
    }
    function Conn() {
      renders.conn += 1;
      const { state } = useConnection();
      return <span data-testid="c">{state}</span>;
    }
    const view = await start(
      <>
        <Quote />
        <Rounded />
        <Conn />
      </>,
    );
    // The hooks asked for their ticker: one frame for both.
    expect(ws.frames).toEqual([{ action: "subscribe", tickers: ["AAPL"] }]);
    expect(view.getByTestId("c").textContent).toBe("connected");
    const base = { ...renders };
    send(update("AAPL", 1, 100.1));
    send(update("AAPL", 2, 100.2));
    send(update("MSFT", 1, 5)); // not ours
    send(update("AAPL", 3, 100.9));
    expect(view.getByTestId("q").textContent).toBe("100.9");
    expect(view.getByTestId("r").textContent).toBe("101");
    expect(renders.quote - base.quote).toBe(3);
    expect(renders.rounded - base.rounded).toBe(2); // null -> 100 -> 101
    expect(renders.conn - base.conn).toBe(0); // ticks are not the connection's business
  });

  it("useBars: asks for the ticker with bars, renders them; unmounting lets the ticker go", async () => {
    function Candles() {
      const bars = useBars("TSLA", "5m");
      return <span data-testid="n">{bars.map((b) => b.close).join(",")}</span>;
    }
    const view = await start(<Candles />);
    expect(ws.frames).toEqual([{ action: "subscribe", tickers: ["TSLA"], bars: ["5m"] }]);
    const bar = (time: number, close: number) => ({ time, open: 1, high: 2, low: 0, close, volume: null, final: false });
    send({ type: "bars", ticker: "TSLA", interval: "5m", seq: 1, bars: [bar(0, 1), bar(300, 2)] });
    send({ type: "bar", ticker: "TSLA", interval: "5m", seq: 2, bar: bar(300, 3) });
    expect(view.getByTestId("n").textContent).toBe("1,3");
    view.unmount();
    await act(async () => {});
    expect(ws.frames.at(-1)).toEqual({ action: "unsubscribe", tickers: ["TSLA"] });
  });

  it("useMarkets: every market's status; a selector renders only when its market's changes", async () => {
    const renders = { all: 0, xnys: 0 };
    function All() {
      renders.all += 1;
      const markets = useMarkets();
      return <span data-testid="all">{Object.keys(markets).sort().join(",")}</span>;
    }
    function Xnys() {
      renders.xnys += 1;
      const session = useMarkets((m) => m.XNYS?.session ?? "—");
      return <span data-testid="x">{session}</span>;
    }
    const view = await start(
      <>
        <All />
        <Xnys />
      </>,
    );
    const status = (market: string, session: string) => ({ type: "market_status", market, is_open: session !== "closed", session, next_open: null, next_close: null });
    const base = { ...renders };
    send(status("XNYS", "pre"));
    send(status("XNYS", "pre")); // the same again: nothing changed
    expect(view.getByTestId("x").textContent).toBe("pre");
    expect(renders.xnys - base.xnys).toBe(1);
    send(status("CRYPTO", "regular"));
    expect(view.getByTestId("all").textContent).toBe("CRYPTO,XNYS");
    expect(renders.all - base.all).toBe(2);
    expect(renders.xnys - base.xnys).toBe(1); // another market's news
    send(status("XNYS", "regular"));
    expect(view.getByTestId("x").textContent).toBe("regular");
    expect(renders.xnys - base.xnys).toBe(2);
    // Markets are news for everyone: no subscription of their own.
    expect(ws.frames).toEqual([]);
  });

  it("useStockfeedEvent: every tick to a callback, with no render", async () => {
    let renders = 0;
    const prices: number[] = [];
    function Chart() {
      renders += 1;
      useStockfeedEvent("quote", (q) => prices.push(q.data.price));
      return null;
    }
    await start(<Chart />);
    client.subscribe("AAPL");
    await act(async () => {});
    const before = renders;
    for (let i = 1; i <= 50; i++) send(update("AAPL", i, i));
    expect(prices).toHaveLength(50);
    expect(renders).toBe(before);
  });
});
