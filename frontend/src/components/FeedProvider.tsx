// The page's one client (hooks/useFeedClient.ts) for everything under it: the hooks of
// @stockfeed/client/react (useConnection, useMarkets, useStockfeedEvent, useStockfeed) read it.

import type { ReactNode } from "react";
import { StockfeedProvider } from "@stockfeed/client/react";
import { useFeedClient, type FeedOptions } from "../hooks/useFeedClient";

export function FeedProvider({ options, children }: { options: FeedOptions; children?: ReactNode }) {
  const client = useFeedClient(options);
  return <StockfeedProvider client={client}>{children}</StockfeedProvider>;
}
