// The dashboard: one StockfeedClient for the page (components/FeedProvider.tsx; the hooks
// below read it through @stockfeed/client/react), header (always visible), the chart first,
// then the watchlist and panels —
// beside the chart on a desktop, under it on a tablet, in tabs under it on a phone
// (hooks/useLayout.ts). One feed status (lib/feedStatus.ts) speaks for the connection
// everywhere; one time-zone choice (lib/timezone.ts) dates everything. The watchlist's
// sparklines and the price alerts go through the same one client (useSparklines, useAlerts);
// notices sit in the sticky top bar on a tablet or a phone, over the chart on a desktop.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useStockfeedEvent } from "@stockfeed/client/react";
import { AlertsPanel } from "./components/AlertsPanel";
import { Announcer } from "./components/Announcer";
import { ChartToolbar } from "./components/ChartToolbar";
import { DashboardHeader } from "./components/DashboardHeader";
import { FeedProvider } from "./components/FeedProvider";
import { PriceChart } from "./components/PriceChart";
import type { Fold } from "./components/PanelTitle";
import { QuoteDetails } from "./components/QuoteDetails";
import { QuoteHeadline } from "./components/QuoteHeadline";
import { ShortcutHelp } from "./components/ShortcutHelp";
import { Tabs } from "./components/Tabs";
import { Toasts, type ToastItem } from "./components/Toasts";
import { Watchlist } from "./components/Watchlist";
import { WebSocketMetrics } from "./components/WebSocketMetrics";
import { useAlerts } from "./hooks/useAlerts";
import { useLastKnown } from "./hooks/useLastKnown";
import { useLayout } from "./hooks/useLayout";
import { useMarketData } from "./hooks/useMarketData";
import { useNow } from "./hooks/useNow";
import { useOnline } from "./hooks/useOnline";
import { usePersistentState } from "./hooks/usePersistentState";
import { useReachability } from "./hooks/useReachability";
import { useReconnectStats } from "./hooks/useReconnectStats";
import { useServerInfo } from "./hooks/useServerInfo";
import { useSparklines } from "./hooks/useSparklines";
import { useTheme } from "./hooks/useTheme";
import { statusFor, useTickerStatus } from "./hooks/useTickerStatus";
import { useUrlState } from "./hooks/useUrlState";
import { describeTrigger } from "./lib/alerts";
import { getJson, readToken } from "./lib/api";
import { INTERVALS, type Interval } from "./lib/candles";
import { feedStatus, type FeedKind } from "./lib/feedStatus";
import { defaultDecimals, formatAge, formatPrice, formatSigned } from "./lib/format";
import { marketOf } from "./lib/market";
import { PrecisionBook } from "./lib/precision";
import { quoteStanding, type QuoteStanding } from "./lib/quoteStanding";
import { intervalFor, isRangePreset, presetFor, type RangePreset } from "./lib/ranges";
import { shortcutFor, step } from "./lib/shortcuts";
import { isBool, isString, isStringArray, save } from "./lib/storage";
import { toggledTheme } from "./lib/theme";
import { exchangeZone, formatTime, isZoneChoice, localZone, zoneFor, type ZoneChoice } from "./lib/timezone";
import type { Quote } from "./lib/types";
import { readUrlState, type UrlState } from "./lib/urlState";
import { isSort, MY_ORDER, type Sort } from "./lib/watchlistOrder";

const FALLBACK_WATCHLIST = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"];
const MAX_TICKERS = 50;
const NO_TICKERS: string[] = [];
const isInterval = (v: unknown): v is Interval => typeof v === "string" && (INTERVALS as string[]).includes(v);
const isMaybeList = (v: unknown): v is string[] | null => v === null || isStringArray(v);
type Folds = { day: boolean; alerts: boolean; connection: boolean };
const OPEN_FOLDS: Folds = { day: true, alerts: true, connection: true };
const isFolds = (v: unknown): v is Folds =>
  typeof v === "object" && v !== null && ["day", "alerts", "connection"].every((k) => typeof (v as Record<string, unknown>)[k] === "boolean");

/** A link's chart state (lib/urlState.ts) wins over the stored one: written to storage before
 * the page's state is read from it. */
function adoptUrlState(u: UrlState): void {
  if (u.interval) save("interval", u.interval);
  if (u.range) save("range", u.range);
  if (u.ticker) save("selected", u.ticker);
}

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
  const [page] = useState(() => {
    const url = readUrlState(window.location.search);
    adoptUrlState(url);
    return { token: readToken(), pollMs: secondsParam("poll", 60_000), probeMs: secondsParam("probe", 10_000), urlTicker: url.ticker };
  });
  return (
    <FeedProvider options={{ token: page.token, pollIntervalMs: page.pollMs, probeIntervalMs: page.probeMs }}>
      <Dashboard {...page} />
    </FeedProvider>
  );
}

function Dashboard({ token, pollMs, probeMs, urlTicker }: { token: string | null; pollMs: number; probeMs: number; urlTicker: string | null }) {
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
  // Paused: the quotes on screen when the user paused, shown as they were until resumed
  // (the feed's own quotes still change for a moment: an update already on its way, and
  // the feed letting go of its tickers).
  const [frozen, setFrozen] = useState<Record<string, Quote> | null>(null);
  const paused = frozen !== null;
  const [tab, setTab] = useState("watchlist");
  const [book] = useState(() => new PrecisionBook());
  const layout = useLayout();
  const { choice: themeChoice, theme, setChoice: setThemeChoice } = useTheme();
  const [folds, setFolds] = usePersistentState<Folds>("panels", OPEN_FOLDS, isFolds);
  const [help, setHelp] = useState(false);
  const online = useOnline();

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
  const listKnown = stored !== null || serverList !== null;
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

  // The feed's quotes, and the last known ones (an earlier visit's) until the feed has its own.
  const kept = useLastKnown(data.quotes, tickers);
  const quotes = frozen ?? kept.quotes;
  const onPaused = (on: boolean) => setFrozen(on ? kept.quotes : null);

  // Polling: when the next poll is due (the client polls every pollMs from the switch).
  const [pollSince, setPollSince] = useState<number | null>(null);
  useStockfeedEvent("state", (next, prev) => {
    if (next.state === "polling" && prev.state !== "polling") setPollSince(Date.now());
    else if (next.state !== "polling" && prev.state === "polling") setPollSince(null);
  });
  const nextPollInMs = pollSince === null || paused ? null : pollMs - ((now - pollSince) % pollMs);

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

  for (const q of Object.values(quotes)) book.note(q);
  const decimalsOf = useCallback((t: string) => book.get(t), [book]);
  const selectedQuote = quotes[selected];
  const chartDecimals = book.get(selected) ?? defaultDecimals(selectedQuote?.data.price ?? selectedQuote?.data.prev_close ?? 100);

  const add = useCallback((t: string) => setWatchlist([...tickers, t]), [tickers, setWatchlist]);

  // URL state: a link's ticker joins the watchlist once it is known; then the address bar
  // follows the chart, and the back button brings an earlier chart back.
  const [pendingTicker, setPendingTicker] = useState(urlTicker);
  if (pendingTicker !== null && listKnown) {
    // Adjusted while rendering (no effect, no extra paint of the wrong chart).
    setPendingTicker(null);
    if (!tickers.includes(pendingTicker) && tickers.length < MAX_TICKERS) add(pendingTicker);
    setSelected(pendingTicker);
  }
  const navigate = useCallback(
    (u: UrlState) => {
      if (u.interval) setInterval(u.interval);
      if (u.range) setPreset(u.range);
      if (u.ticker) setPendingTicker(u.ticker);
    },
    [setInterval, setPreset],
  );
  useUrlState({ ticker: selected || null, interval, range: preset }, pendingTicker === null && selected !== "", navigate);

  // The tab's title: the selected ticker's price and change, so a background tab says it.
  const titlePrice = selectedQuote ? formatPrice(selectedQuote.data.price, book.get(selected)) : null;
  const titlePct = selectedQuote ? formatSigned(selectedQuote.data.change_percent, 2, "%") : null;
  useEffect(() => {
    document.title = selected && titlePrice ? `${selected} ${titlePrice} ${titlePct ?? ""} · stockfeed`.replace("  ", " ") : "stockfeed";
  }, [selected, titlePrice, titlePct]);

  const fold = useCallback(
    (name: keyof Folds): Fold | undefined =>
      layout === "phone" ? undefined : { open: folds[name], onToggle: () => setFolds({ ...folds, [name]: !folds[name] }) },
    [layout, folds, setFolds],
  );
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
      if (!folds.connection) setFolds({ ...folds, connection: true });
      const el = document.getElementById("connection-details");
      el?.scrollIntoView({ block: "nearest" });
      el?.focus();
    }
  }, [layout, folds, setFolds]);

  // Keyboard shortcuts (lib/shortcuts.ts; `?` lists them).
  const keys = useRef<(e: KeyboardEvent) => void>(() => {});
  useEffect(() => {
    keys.current = (e: KeyboardEvent) => {
      const action = shortcutFor(e);
      if (!action || (help && action !== "help")) return;
      e.preventDefault();
      if (action === "help") setHelp(!help);
      else if (action === "theme") setThemeChoice(toggledTheme(theme));
      else if (action === "search") document.querySelector<HTMLElement>(".wl-combo input")?.focus();
      else if (action === "interval-down" || action === "interval-up") {
        const next = step(INTERVALS, interval, action === "interval-up" ? 1 : -1);
        if (next) setInterval(next);
      } else if (action === "panels") {
        const open = !(folds.day || folds.alerts || folds.connection);
        setFolds({ day: open, alerts: open, connection: open });
      } else if (action === "next" || action === "prev") {
        const rows = [...document.querySelectorAll<HTMLElement>(".wl-table tbody tr[data-ticker]")].map((r) => r.dataset.ticker ?? "");
        const next = step(rows, selected, action === "next" ? 1 : -1);
        if (!next) return;
        setSelected(next);
        const btn = document.querySelector<HTMLElement>(`tr[data-ticker="${CSS.escape(next)}"] .sym-btn`);
        btn?.focus();
        btn?.scrollIntoView({ block: "nearest" });
      }
    };
  });
  useEffect(() => {
    const on = (e: KeyboardEvent) => keys.current(e);
    window.addEventListener("keydown", on);
    return () => window.removeEventListener("keydown", on);
  }, []);

  const sessionWords = market ? (market.market === "CRYPTO" ? "" : market.session === "closed" ? " Market closed." : "") : "";
  const spoken = `${SPOKEN[status.kind]}.${sessionWords}`;
  useEffect(() => {
    spokenNow.current = spoken;
  });
  const message = note && note.during === spoken ? note.text : spoken;

  const watchlist = (
    <Watchlist
      tickers={tickers}
      quotes={quotes}
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
      fold={fold("alerts")}
    />
  );
  const toasts = <Toasts toasts={toastItems} onDismiss={dismissToast} />;
  const details = (
    <QuoteDetails ticker={selected} quote={selectedQuote} decimals={book.get(selected)} zone={zone} fold={fold("day")} />
  );
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
      nextPollInMs={nextPollInMs}
      fold={fold("connection")}
    />
  );
  // Offline (the browser says so, or the server cannot be reached) with prices on screen:
  // they are the last known ones, and the page says so.
  const offline = (!online || status.kind === "unreachable") && Object.keys(quotes).length > 0;
  const savedAt = kept.savedAt;
  const offlineNote = offline ? (
    // Not a live region: the page's one polite region (Announcer) says the feed is gone.
    <div className="offline-note" data-testid="offline-note">
      <b>offline · last known prices</b>
      {lastData ? ` as of ${lastData}` : savedAt !== null ? ` as of ${formatTime(savedAt, zone)}` : ""}
    </div>
  ) : null;

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
    <div className={`app layout-${layout}${folds.day || folds.alerts || folds.connection ? "" : " folded"}`} data-layout={layout} data-theme-shown={theme}>
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
          nextPollInMs={nextPollInMs}
          themeChoice={themeChoice}
          onThemeChoice={setThemeChoice}
          onHelp={() => setHelp(true)}
        />
        {offlineNote}
        {layout !== "desktop" && toasts}
      </div>
      <main className="main">
        <section className="center" aria-label="Chart">
          <QuoteHeadline ticker={selected} quote={selectedQuote} decimals={book.get(selected)} lastKnown={selected !== "" && kept.knownOnly(selected)} />
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
            onPaused={onPaused}
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
      {help && <ShortcutHelp onClose={() => setHelp(false)} />}
    </div>
  );
}
