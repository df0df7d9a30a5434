// @stockfeed/client/react: React bindings over one StockfeedClient.
//
//   <StockfeedProvider client={client}> ... </StockfeedProvider>
//   const quote = useQuote("AAPL");                        // re-renders on AAPL's quotes only
//   const price = useQuote("AAPL", (q) => q?.data.price);  // ... only when the price changes
//   const bars = useBars("AAPL", "1m");
//   const { state, latencyMs, reconnects } = useConnection();
//   const xnys = useMarkets((m) => m.XNYS);                // the session of a market
//
// Each hook reads the client through useSyncExternalStore with a selector, and listens
// only to its own ticker (and interval): a component re-renders when what it selected
// changed, never for another ticker's tick, and a connection hook never per tick. A hook
// holds its ticker subscribed while mounted (StockfeedClient.retain).

import { createContext, useCallback, useContext, useEffect, useRef, useSyncExternalStore, type ReactNode } from "react";
import type { ClientEvents, ConnectionInfo, StockfeedClient } from "../client.js";
import type { Quote } from "../feedState.js";
import type { Bar, BarInterval, MarketStatus } from "../messages.js";

const ClientContext = createContext<StockfeedClient | null>(null);

export function StockfeedProvider({ client, children }: { client: StockfeedClient; children?: ReactNode }) {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

/** The client of the nearest StockfeedProvider. */
export function useStockfeed(): StockfeedClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error("@stockfeed/client/react: wrap the components in <StockfeedProvider client={client}>");
  return client;
}

type Equal<S> = (a: S, b: S) => boolean;
const identity = <T,>(v: T): T => v;

/**
 * useSyncExternalStore with a selector: the component re-renders when the selection
 * changes (by `isEqual`, `Object.is` by default). Keep selectors returning primitives or
 * stable objects, or pass an `isEqual`.
 */
export function useStoreSelector<T, S>(
  subscribe: (onChange: () => void) => () => void,
  getSnapshot: () => T,
  selector: (snapshot: T) => S,
  isEqual: Equal<S> = Object.is,
): S {
  // The selector and isEqual of the latest render, read when the store changes; the last
  // snapshot and its selection, so an unchanged selection keeps its identity.
  const latest = useRef({ selector, isEqual });
  useEffect(() => {
    latest.current = { selector, isEqual };
  });
  const cache = useRef<{ snap: T; sel: S } | null>(null);
  const getSelection = useCallback(() => {
    const next = getSnapshot();
    const c = cache.current;
    if (c && Object.is(c.snap, next)) return c.sel;
    const { selector: select, isEqual: same } = latest.current;
    const sel = select(next);
    cache.current = { snap: next, sel: c && same(c.sel, sel) ? c.sel : sel };
    return cache.current.sel;
  }, [getSnapshot]);
  const selected = useSyncExternalStore(subscribe, getSelection, getSelection);
  // A selector new in this render applies at once (the cache above sees store changes).
  const fresh = selector(getSnapshot());
  return isEqual(fresh, selected) ? selected : fresh;
}

const upper = (t: string) => t.trim().toUpperCase();

/** The latest quote of `ticker` (held subscribed while mounted). */
export function useQuote(ticker: string): Quote | undefined;
/** What `selector` picks from the latest quote of `ticker`: re-renders only when it changes. */
export function useQuote<S>(ticker: string, selector: (quote: Quote | undefined) => S, isEqual?: Equal<S>): S;
export function useQuote<S>(ticker: string, selector?: (quote: Quote | undefined) => S, isEqual?: Equal<S>): S | Quote | undefined {
  const client = useStockfeed();
  const t = upper(ticker);
  useEffect(() => (t ? client.retain(t) : undefined), [client, t]);
  const subscribe = useCallback((onChange: () => void) => client.on("quote", (q) => q.ticker === t && onChange()), [client, t]);
  const get = useCallback(() => client.quote(t), [client, t]);
  return useStoreSelector<Quote | undefined, S | Quote | undefined>(subscribe, get, selector ?? identity, isEqual as Equal<S | Quote | undefined>);
}

/** The bars of `ticker` at `interval`, oldest first (held subscribed with bars while mounted). */
export function useBars(ticker: string, interval: BarInterval): readonly Bar[];
export function useBars<S>(ticker: string, interval: BarInterval, selector: (bars: readonly Bar[]) => S, isEqual?: Equal<S>): S;
export function useBars<S>(ticker: string, interval: BarInterval, selector?: (bars: readonly Bar[]) => S, isEqual?: Equal<S>): S | readonly Bar[] {
  const client = useStockfeed();
  const t = upper(ticker);
  useEffect(() => (t ? client.retain(t, interval) : undefined), [client, t, interval]);
  const subscribe = useCallback(
    (onChange: () => void) => client.on("bars", (ev) => ev.ticker === t && ev.interval === interval && onChange()),
    [client, t, interval],
  );
  const get = useCallback(() => client.bars(t, interval), [client, t, interval]);
  return useStoreSelector<readonly Bar[], S | readonly Bar[]>(subscribe, get, selector ?? identity, isEqual as Equal<S | readonly Bar[]>);
}

/** The connection: state, attempt, latency, reconnects, fallback, auth error. */
export function useConnection(): ConnectionInfo;
export function useConnection<S>(selector: (info: ConnectionInfo) => S, isEqual?: Equal<S>): S;
export function useConnection<S>(selector?: (info: ConnectionInfo) => S, isEqual?: Equal<S>): S | ConnectionInfo {
  const client = useStockfeed();
  const subscribe = useCallback((onChange: () => void) => client.on("state", () => onChange()), [client]);
  const get = useCallback(() => client.connection, [client]);
  return useStoreSelector<ConnectionInfo, S | ConnectionInfo>(subscribe, get, selector ?? identity, isEqual as Equal<S | ConnectionInfo>);
}

type Markets = Readonly<Record<string, MarketStatus>>;

/** Every market's latest status by market (`XNYS`, `CRYPTO`, `FX`: socket, or REST while
 * polling). The same object until one changes. */
export function useMarkets(): Markets;
export function useMarkets<S>(selector: (markets: Markets) => S, isEqual?: Equal<S>): S;
export function useMarkets<S>(selector?: (markets: Markets) => S, isEqual?: Equal<S>): S | Markets {
  const client = useStockfeed();
  const subscribe = useCallback((onChange: () => void) => client.on("market", () => onChange()), [client]);
  const get = useCallback(() => client.markets, [client]);
  return useStoreSelector<Markets, S | Markets>(subscribe, get, selector ?? identity, isEqual as Equal<S | Markets>);
}

/** Call `handler` on every `event` of the client, with no render: for charts that draw
 * each tick themselves (`series.update()`), counters, logs. The latest handler is used. */
export function useStockfeedEvent<K extends keyof ClientEvents>(event: K, handler: ClientEvents[K]): void {
  const client = useStockfeed();
  const ref = useRef(handler);
  useEffect(() => {
    ref.current = handler;
  });
  useEffect(
    () => client.on(event, ((...args: Parameters<ClientEvents[K]>) => (ref.current as (...a: Parameters<ClientEvents[K]>) => void)(...args)) as ClientEvents[K]),
    [client, event],
  );
}
