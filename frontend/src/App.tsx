// The dashboard: header, watchlist + connection metrics, chart toolbar + chart, toasts.

import { useCallback, useEffect, useMemo, useState } from "react";
import { ChartToolbar } from "./components/ChartToolbar";
import { DashboardHeader } from "./components/DashboardHeader";
import { PriceChart } from "./components/PriceChart";
import { QuoteDetails } from "./components/QuoteDetails";
import { Toasts } from "./components/Toasts";
import { Watchlist } from "./components/Watchlist";
import { WebSocketMetrics } from "./components/WebSocketMetrics";
import { useMarketData } from "./hooks/useMarketData";
import { useNow } from "./hooks/useNow";
import { usePersistentState } from "./hooks/usePersistentState";
import { useServerInfo } from "./hooks/useServerInfo";
import { getJson, readToken } from "./lib/api";
import { INTERVALS, type Interval } from "./lib/candles";
import { marketOf } from "./lib/market";
import { connectionView, isStale } from "./lib/status";
import { isBool, isString, isStringArray } from "./lib/storage";
import type { Quote } from "./lib/types";

const FALLBACK_WATCHLIST = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"];
const MAX_TICKERS = 50;
const isInterval = (v: unknown): v is Interval => typeof v === "string" && (INTERVALS as string[]).includes(v);
const isMaybeList = (v: unknown): v is string[] | null => v === null || isStringArray(v);

/** `?poll=5&probe=2` (seconds) shorten the polling and retry periods, for trials and tests. */
function secondsParam(name: string, fallback: number): number {
  const v = Number(new URLSearchParams(window.location.search).get(name));
  return Number.isFinite(v) && v >= 0.5 && v <= 3600 ? v * 1000 : fallback;
}

export function App() {
  const [token] = useState(() => readToken());
  const [pollMs] = useState(() => secondsParam("poll", 60_000));
  const [probeMs] = useState(() => secondsParam("probe", 10_000));
  const [stored, setWatchlist] = usePersistentState<string[] | null>("watchlist", null, isMaybeList);
  const [serverList, setServerList] = useState<string[] | null>(null);
  const [realtime, setRealtime] = usePersistentState("realtime", true, isBool);
  const [interval, setInterval] = usePersistentState<Interval>("interval", "5m", isInterval);
  const [selectedPref, setSelected] = usePersistentState<string>("selected", "", isString);

  // Nothing stored yet: start from the server's configured watchlist.
  useEffect(() => {
    if (stored !== null) return;
    const ctl = new AbortController();
    getJson<{ watchlist: string[] }>("/api/tickers", token, ctl.signal)
      .then((b) => setServerList(b.watchlist.slice(0, MAX_TICKERS)))
      .catch(() => setServerList(FALLBACK_WATCHLIST));
    return () => ctl.abort();
  }, [stored, token]);

  const tickers = useMemo(() => stored ?? serverList ?? [], [stored, serverList]);
  const selected = tickers.includes(selectedPref) ? selectedPref : (tickers[0] ?? "");

  const data = useMarketData({ tickers, enableRealTime: realtime, token, pollIntervalMs: pollMs, probeIntervalMs: probeMs });
  const info = useServerInfo(token);
  const now = useNow(1000);

  const market = data.markets[marketOf(selected || "AAPL")] ?? null;
  // Prices are expected to move when the feed is simulated or the market is in session.
  const pricesExpected = useCallback(
    (t: string) => {
      if (info.simulated) return true;
      const m = data.markets[marketOf(t)];
      return m ? m.session !== "closed" : false;
    },
    [info.simulated, data.markets],
  );
  const expectedMs = data.mode === "realtime" ? 30_000 : pollMs + 30_000;
  const staleOf = useCallback(
    (q: Quote) => isStale(q, now, expectedMs, pricesExpected(q.ticker)),
    [now, expectedMs, pricesExpected],
  );
  const staleCount = tickers.filter((t) => data.quotes[t] && staleOf(data.quotes[t])).length;

  const view = connectionView({
    ...data.connection,
    realtimeEnabled: realtime,
    fallback: data.fallback,
    lastMessageAgeMs: data.metrics.lastMessageAt === null ? null : now - data.metrics.lastMessageAt,
  });

  const add = useCallback((t: string) => setWatchlist([...tickers, t]), [tickers, setWatchlist]);
  const remove = useCallback((t: string) => setWatchlist(tickers.filter((x) => x !== t)), [tickers, setWatchlist]);

  return (
    <div className="app">
      <DashboardHeader
        info={info}
        market={market}
        marketName={marketOf(selected || "AAPL")}
        connection={view}
        latencyMs={data.connection.latencyMs}
        staleCount={staleCount}
        now={now}
        authError={data.authError}
      />
      <main className="main">
        <aside className="side">
          <Watchlist
            tickers={tickers}
            quotes={data.quotes}
            selected={selected}
            now={now}
            staleOf={staleOf}
            errors={data.tickerErrors}
            onSelect={setSelected}
            onAdd={add}
            onRemove={remove}
            maxTickers={MAX_TICKERS}
          />
          <QuoteDetails ticker={selected} quote={data.quotes[selected]} />
          <WebSocketMetrics
            latencyMs={data.connection.latencyMs}
            reconnectCount={data.connection.reconnectCount}
            messagesPerSec={data.metrics.messagesPerSec}
            mode={data.mode}
            state={data.connection.state}
            lastUpdateAt={data.metrics.lastUpdateAt}
            lastMessageAt={data.metrics.lastMessageAt}
            now={now}
          />
        </aside>
        <section className="center">
          <ChartToolbar
            ticker={selected || "—"}
            interval={interval}
            onInterval={setInterval}
            realtime={realtime}
            onRealtime={setRealtime}
            mode={data.mode}
            pollSeconds={Math.round(pollMs / 1000)}
          />
          {selected ? (
            <PriceChart ticker={selected} interval={interval} token={token} subscribeTicks={data.subscribeTicks} />
          ) : (
            <div className="chart-wrap empty" data-testid="price-chart">
              Add a ticker to see its chart.
            </div>
          )}
        </section>
      </main>
      <Toasts toasts={data.toasts} onDismiss={data.dismissToast} />
    </div>
  );
}
