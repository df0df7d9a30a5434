// Pausing the dashboard with sparklines on: the page's real client (FeedProvider), and
// useMarketData and useSparklines in App's order. The pause lets go of the bars before the client switches,
// so the switch's one REST refresh asks for nothing (no prices move while paused), and the
// bars are asked for again on resume.
import { renderHook } from "@testing-library/react";
import { useStockfeed } from "@stockfeed/client/react";
import type { ReactNode } from "react";
import { beforeEach, expect, it, vi } from "vitest";
import WS from "vitest-websocket-mock";
import { FeedProvider } from "../src/components/FeedProvider";
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
  const hook = renderHook(
    ({ paused }: { paused: boolean }) => {
      useMarketData({ tickers: paused ? NONE : TICKERS, enableRealTime: !paused });
      useSparklines(TICKERS, !paused);
      return useStockfeed();
    },
    {
      initialProps: { paused: false },
      wrapper: ({ children }: { children: ReactNode }) => <FeedProvider options={{ url: URL, jitter: () => 0 }}>{children}</FeedProvider>,
    },
  );
  await advance(10);
  await server.connected;
  await advance(10);
  expect(server.messages).toContainEqual({ action: "subscribe", tickers: TICKERS, bars: ["5m"] });
  const client = hook.result.current;

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
