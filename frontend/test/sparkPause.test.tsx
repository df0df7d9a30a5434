// Pausing the dashboard with sparklines on: the page's real client (useMarketData) and
// useSparklines in App's order. The pause lets go of the bars before the client switches,
// so the switch's one REST refresh asks for nothing (no prices move while paused), and the
// bars are asked for again on resume.
import { renderHook } from "@testing-library/react";
import { beforeEach, expect, it, vi } from "vitest";
import WS from "vitest-websocket-mock";
import { useMarketData } from "../src/hooks/useMarketData";
import { useSparklines } from "../src/hooks/useSparklines";
import { advance, stubFetch } from "./helpers";

const URL = "ws://localhost:1236/ws";
const TICKERS = ["AAPL", "MSFT"];
const NONE: string[] = [];

beforeEach(() => {
  vi.useFakeTimers();
});

it("a pause retains nothing and fetches nothing; a resume asks for the bars again", async () => {
  const stub = stubFetch(() => ({}));
  const server = new WS(URL, { jsonProtocol: true });
  const hook = renderHook(({ paused }: { paused: boolean }) => {
    const data = useMarketData({ tickers: paused ? NONE : TICKERS, enableRealTime: !paused, url: URL, jitter: () => 0 });
    useSparklines(data.client, TICKERS, !paused);
    return data;
  }, { initialProps: { paused: false } });
  await advance(10);
  await server.connected;
  await advance(10);
  expect(server.messages).toContainEqual({ action: "subscribe", tickers: TICKERS, bars: ["5m"] });
  const client = hook.result.current.client;

  const before = stub.calls.length;
  hook.rerender({ paused: true });
  await advance(10);
  expect(client.tickers, "nothing wanted while paused").toEqual([]);
  expect(stub.calls.slice(before).filter((u) => u.startsWith("/api/quotes")), "no quotes fetched on the pause").toEqual([]);

  hook.rerender({ paused: false });
  await advance(10);
  await server.connected;
  await advance(700); // the next batch step
  expect(client.tickers.sort()).toEqual(TICKERS);
  hook.unmount();
});
