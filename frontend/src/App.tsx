// The dashboard: one StockfeedClient for the page (components/FeedProvider.tsx; the hooks
// below read it through @stockfeed/client/react), header (always visible), the chart first,
// then the watchlist and panels —
// beside the chart on a desktop, under it on a tablet, in tabs under it on a phone
// (hooks/useLayout.ts). One feed status (lib/feedStatus.ts) speaks for the connection
// everywhere; one time-zone choice (lib/timezone.ts) dates everything. The watchlist's
// sparklines and the price alerts go through the same one client (useSparklines, useAlerts);
// notices sit in the sticky top bar on a tablet or a phone, over the chart on a desktop.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { AlertsPanel } from "./components/AlertsPanel";
import { Announcer } from "./components/Announcer";
import { ChartToolbar } from "./components/ChartToolbar";
import { DashboardHeader } from "./components/DashboardHeader";
import { FeedProvider } from "./components/FeedProvider";
import { PriceChart } from "./components/PriceChart";
import { QuoteDetails } from "./components/QuoteDetails";
import { Tabs } from "./components/Tabs";
import { Toasts, type ToastItem } from "./components/Toasts";
import { Watchlist } from "./components/Watchlist";
import { WebSocketMetrics } from "./components/WebSocketMetrics";
import { useAlerts } from "./hooks/useAlerts";
import { useLayout } from "./hooks/useLayout";
import { useMarketData } from "./hooks/useMarketData";
import { useNow } from "./hooks/useNow";
import { usePersistentState } from "./hooks/usePersistentState";
import { useReachability } from "./hooks/useReachability";
import { useReconnectStats } from "./hooks/useReconnectStats";
import { useServerInfo } from "./hooks/useServerInfo";
import { useSparklines } from "./hooks/useSparklines";
import { statusFor, useTickerStatus } from "./hooks/useTickerStatus";
import { describeTrigger } from "./lib/alerts";
import { getJson, readToken } from "./lib/api";
import { INTERVALS, type Interval } from "./lib/candles";
import { feedStatus, type FeedKind } from "./lib/feedStatus";
import { defaultDecimals, formatAge, formatPrice } from "./lib/format";
import { marketOf } from "./lib/market";
import { PrecisionBook } from "./lib/precision";
import { quoteStanding, type QuoteStanding } from "./lib/quoteStanding";
import { intervalFor, isRangePreset, presetFor, type RangePreset } from "./lib/ranges";
import { isBool, isString, isStringArray } from "./lib/storage";
import { exchangeZone, formatTime, isZoneChoice, localZone, zoneFor, type ZoneChoice } from "./lib/timezone";
import type { Quote } from "./lib/types";
import { isSort, MY_ORDER, type Sort } from "./lib/watchlistOrder";

const FALLBACK_WATCHLIST = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"];
const MAX_TICKERS = 50;
const NO_TICKERS: string[] = [];
const isInterval = (v: unknown): v is Interval => typeof v === "string" && (INTERVALS as string[]).includes(v);
const isMaybeList = (v: unknown): v is string[] | null => v === null || isStringArray(v);

/** `?poll=5&probe=2` (seconds) shorten the polling and retry periods, for trials and tests. */
function secondsParam(name: string, fallback: number): number {
  const v = Number(new URLSearchParams(window.location.search).get(name));
  return Number.isFinite(v) && v >= 0.5 && v <= 3600 ? v * 1000 : fallback;
}

const SPOKEN: Record<FeedKind, string> = {
  live: "Live",
  connecting: "Connecting",
  reconnecting: "Reconnecting: the live feed dropped",
  "polling-auto": "Polling automatically: WebSocket is down",
  "polling-manual": "Polling: real-time is off",
  unreachable: "Server unreachable: no data",
  paused: "Paused by you",
};

/** The page's settings from its URL and storage (read once), and its one client. */
export function App() {
  const [page] = useState(() => ({ token: readToken(), pollMs: secondsParam("poll", 60_000), probeMs: secondsParam("probe", 10_000) }));
  return (
    <FeedProvider options={{ token: page.token, pollIntervalMs: page.pollMs, probeIntervalMs: page.probeMs }}>
      <Dashboard {...page} />
    </FeedProvider>
  );
}

function Dashboard({ token, pollMs, probeMs }: { token: string | null; pollMs: number; probeMs: number }) {
  const [stored, setWatchlist] = usePersistentState<string[] | null>("watchlist", null, isMaybeList);
  const [serverList, setServerList] = useState<string[] | null>(null);
  const [realtime, setRealtime] = usePersistentState("realtime", true, isBool);
  const [interval, setInterval] = usePersistentState<Interval>("interval", "5m", isInterval);
  const [presetPref, setPreset] = usePersistentState<RangePreset>("range", "5D", isRangePreset);
  // A bar size and a range that do not go together are made to (lib/ranges.ts).
  const preset = presetFor(interval, presetPref);
  const choosePreset = useCallback(
    (p: RangePreset) => {
      setPreset(p);
      setInterval(intervalFor(p, interval));
    },
    [interval, setPreset, setInterval],
  );
  const [selectedPref, setSelected] = usePersistentState<string>("selected", "", isString);
  const [zoneChoice, setZoneChoice] = usePersistentState<ZoneChoice>("timezone", "exchange", isZoneChoice);
  const [sort, setSort] = usePersistentState<Sort>("watchlist-sort", MY_ORDER, isSort);
  const [comparePref, setCompare] = usePersistentState<string>("compare", "", isString);
  const [paused, setPaused] = useState(false);
  const [tab, setTab] = useState("watchlist");
  const [book] = useState(() => new PrecisionBook());
  const layout = useLayout();

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
  // The comparison: another ticker of the watchlist, or none.
  const compare = comparePref && comparePref !== selected && tickers.includes(comparePref) ? comparePref : null;
  const compareChoices = useMemo(() => tickers.filter((t) => t !== selected), [tickers, selected]);
  const chooseCompare = useCallback((t: string | null) => setCompare(t ?? ""), [setCompare]);

  // Paused: no socket and no polls (no tickers to poll); the quotes on screen stay as they were.
  const data = useMarketData({
    tickers: paused ? NO_TICKERS : tickers,
    enableRealTime: realtime && !paused,
    pollIntervalMs: pollMs,
  });
  const info = useServerInfo(token);
  const now = useNow(1000);
  const conn = data.connection;
  const socketCarries = conn.state === "connected";
  const reach = useReachability({
    active: !paused && !socketCarries && (data.fallback || !realtime),
    periodMs: Math.min(pollMs, probeMs),
    token,
  });
  const stats = useReconnectStats(conn.state, conn.attempt);

  const status = feedStatus({
    paused,
    realtimeEnabled: realtime,
    wsState: conn.state,
    attempt: conn.attempt,
    maxAttempts: conn.maxAttempts,
    fallback: data.fallback,
    restReachable: reach.reachable,
    pollSeconds: Math.round(pollMs / 1000),
    probeSeconds: Math.round(probeMs / 1000),
  });

  const byTicker = useTickerStatus(data.markets);
  const marketFor = useCallback((t: string) => statusFor(t, byTicker, data.markets, marketOf), [byTicker, data.markets]);
  const market = marketFor(selected);
  // The market the server names for the ticker (its own, e.g. SIM), else the rule's guess.
  const selectedMarket = market?.market ?? marketOf(selected || "AAPL");
  const zone = zoneFor(zoneChoice, selectedMarket);
  const lastDataAt = data.metrics.lastUpdateAt;
  const lastData = lastDataAt === null ? null : `${formatTime(lastDataAt, zone)} (${formatAge(now - lastDataAt)} ago)`;

  // Prices are expected to move when the feed is simulated or the market is in session.
  const sessionOf = useCallback((t: string) => marketFor(t)?.session ?? null, [marketFor]);
  const pricesExpected = useCallback(
    (t: string) => {
      if (info.simulated) return true;
      const s = sessionOf(t);
      return s !== null && s !== "closed";
    },
    [info.simulated, sessionOf],
  );
  const expectedMs = data.mode === "realtime" ? 30_000 : pollMs + 15_000;
  const standingOf = useCallback(
    (q: Quote): QuoteStanding => {
      const own = byTicker[q.ticker];
      // The server's liveness mark on the ticker counts like its mark on the quote, until an
      // update newer than its last good one arrives.
      const marked = own?.stale === true && !(typeof own.last_good === "number" && q.timestamp > own.last_good);
      return quoteStanding(
        { stale: q.stale || marked, timestamp: q.timestamp },
        {
          now,
          expectedMs,
          pricesExpected: pricesExpected(q.ticker),
          session: marketFor(q.ticker)?.market === "CRYPTO" ? null : sessionOf(q.ticker),
        },
      );
    },
    [now, expectedMs, pricesExpected, sessionOf, marketFor, byTicker],
  );
  const staleCount = tickers.filter((t) => data.quotes[t] && standingOf(data.quotes[t]) === "stale").length;

  for (const q of Object.values(data.quotes)) book.note(q);
  const decimalsOf = useCallback((t: string) => book.get(t), [book]);
  const selectedQuote = data.quotes[selected];
  const chartDecimals = book.get(selected) ?? defaultDecimals(selectedQuote?.data.price ?? selectedQuote?.data.prev_close ?? 100);

  const add = useCallback((t: string) => setWatchlist([...tickers, t]), [tickers, setWatchlist]);
  const remove = useCallback((t: string) => setWatchlist(tickers.filter((x) => x !== t)), [tickers, setWatchlist]);
  const reorder = useCallback((next: readonly string[]) => setWatchlist([...next]), [setWatchlist]);

  // Said once by the live region: a row moved, an alert fired. A status change that comes
  // after it speaks over it.
  const [note, setNote] = useState<{ text: string; during: string } | null>(null);
  const spokenNow = useRef("");
  const announce = useCallback((text: string) => setNote({ text, during: spokenNow.current }), []);

  // Sparklines (5m bars retained through the one client; none while paused) and price alerts.
  const sparks = useSparklines(tickers, !paused);
  const alerts = useAlerts(decimalsOf, announce);
  const alertMarks = useMemo(() => {
    const marks: Record<string, string> = {};
    for (const a of alerts.alerts) {
      if (!a.triggered) continue;
      const text = describeTrigger(a, (v) => formatPrice(v, book.get(a.ticker)));
      marks[a.ticker] = marks[a.ticker] ? `${marks[a.ticker]}; ${text}` : text;
    }
    return marks;
  }, [alerts.alerts, book]);
  const watched = useCallback((t: string) => tickers.includes(t), [tickers]);
  const toastItems = useMemo<ToastItem[]>(
    () => [...data.toasts.map((t) => ({ key: `feed-${t.id}`, kind: t.kind, text: t.text })), ...alerts.toasts],
    [data.toasts, alerts.toasts],
  );
  const { dismissToast: dismissFeedToast } = data;
  const { dismissToast: dismissAlertToast } = alerts;
  const dismissToast = useCallback(
    (key: string) => (key.startsWith("feed-") ? dismissFeedToast(Number(key.slice(5))) : dismissAlertToast(key)),
    [dismissFeedToast, dismissAlertToast],
  );

  const openDetails = useCallback(() => {
    if (layout === "phone") {
      setTab("connection");
      requestAnimationFrame(() => document.getElementById("tab-connection")?.scrollIntoView({ block: "nearest" }));
    } else {
      const el = document.getElementById("connection-details");
      el?.scrollIntoView({ block: "nearest" });
      el?.focus();
    }
  }, [layout]);

  const sessionWords = market ? (market.market === "CRYPTO" ? "" : market.session === "closed" ? " Market closed." : "") : "";
  const spoken = `${SPOKEN[status.kind]}.${sessionWords}`;
  useEffect(() => {
    spokenNow.current = spoken;
  });
  const message = note && note.during === spoken ? note.text : spoken;

  const watchlist = (
    <Watchlist
      tickers={tickers}
      quotes={data.quotes}
      selected={selected}
      now={now}
      standingOf={standingOf}
      decimalsOf={decimalsOf}
      errors={data.tickerErrors}
      onSelect={setSelected}
      onAdd={add}
      onRemove={remove}
      maxTickers={MAX_TICKERS}
      token={token}
      sparks={sparks}
      sort={sort}
      onSort={setSort}
      onReorder={reorder}
      alertMarks={alertMarks}
      onAnnounce={announce}
    />
  );
  const alertsPanel = (
    <AlertsPanel
      ticker={selected}
      price={selectedQuote?.data.price ?? null}
      decimalsOf={decimalsOf}
      alerts={alerts.alerts}
      watched={watched}
      permission={alerts.permission}
      zone={zone}
      onAdd={alerts.add}
      onRemove={alerts.remove}
      onRearm={alerts.rearm}
    />
  );
  const toasts = <Toasts toasts={toastItems} onDismiss={dismissToast} />;
  const details = <QuoteDetails ticker={selected} quote={selectedQuote} decimals={book.get(selected)} zone={zone} />;
  const metrics = (
    <WebSocketMetrics
      status={status}
      latencyMs={conn.latencyMs}
      latencyCurrent={stats.latencyCurrent}
      reconnections={stats.reconnections}
      failedAttempts={stats.failedAttempts}
      messagesPerSec={data.metrics.messagesPerSec}
      lastUpdateAt={data.metrics.lastUpdateAt}
      lastMessageAt={data.metrics.lastMessageAt}
      now={now}
      zone={zone}
    />
  );

  const banner =
    status.kind === "unreachable" ? (
      <div className="no-data" data-testid="no-data" data-kind={status.kind}>
        <b>No data</b>: the server is unreachable. {lastData ? `Last good data ${lastData}.` : "Nothing received yet."}
      </div>
    ) : status.kind === "paused" ? (
      <div className="no-data paused" data-testid="no-data" data-kind={status.kind}>
        <b>Paused</b>: prices frozen{lastData ? ` as of ${lastData}` : ""}. Press Resume for live prices.
      </div>
    ) : null;

  return (
    <div className={`app layout-${layout}`} data-layout={layout}>
      <div className="top">
        <DashboardHeader
          info={info}
          market={market}
          marketName={selectedMarket}
          zone={zone}
          status={status}
          latencyMs={stats.latencyCurrent ? conn.latencyMs : null}
          lastData={lastData}
          staleCount={staleCount}
          now={now}
          authError={data.authError}
          onOpenDetails={openDetails}
        />
        {layout !== "desktop" && toasts}
      </div>
      <main className="main">
        <section className="center" aria-label="Chart">
          <ChartToolbar
            ticker={selected || "—"}
            interval={interval}
            onInterval={setInterval}
            preset={preset}
            onPreset={choosePreset}
            compareChoices={compareChoices}
            compare={compare}
            onCompare={chooseCompare}
            realtime={realtime}
            onRealtime={setRealtime}
            status={status}
            paused={paused}
            onPaused={setPaused}
            zoneChoice={zoneChoice}
            onZoneChoice={setZoneChoice}
            exchangeLabel={exchangeZone(selectedMarket).label}
            localLabel={localZone().label}
          />
          {selected ? (
            <PriceChart
              ticker={selected}
              interval={interval}
              preset={preset}
              token={token}
              live={!paused}
              market={selectedMarket}
              compare={compare}
              decimals={chartDecimals}
              prevClose={selectedQuote?.data.prev_close ?? null}
              zone={zone}
              alerts={alerts.alerts}
            >
              {banner}
            </PriceChart>
          ) : (
            <div className="chart-wrap empty" data-testid="price-chart">
              Add a ticker to see its chart.
              {banner}
            </div>
          )}
        </section>
        {layout === "phone" ? (
          <Tabs
            label="Panels"
            active={tab}
            onChange={setTab}
            tabs={[
              { id: "watchlist", label: "Watchlist", panel: watchlist },
              { id: "day", label: "Day", panel: details },
              { id: "alerts", label: "Alerts", panel: alertsPanel },
              { id: "connection", label: "Connection", panel: metrics },
            ]}
          />
        ) : (
          <aside className="side" aria-label="Watchlist and details">
            {watchlist}
            <div className="side-panels">
              {details}
              {alertsPanel}
              {metrics}
            </div>
          </aside>
        )}
      </main>
      {layout === "desktop" && toasts}
      <Announcer message={message} />
    </div>
  );
}
