"""Prometheus metrics, read at scrape time from the counters the parts already keep.

The broadcast path counts with plain integers (fanout/stats.py: `relayed`, `fanned_out`...);
nothing here runs per message. A scrape walks those numbers once and, for queue depths,
the open connections once. Each app gets its own `CollectorRegistry`, so several apps in
one process (tests) never clash over metric names.

With `--workers N` every worker process answers `/metrics` for itself (the `process`
label of `stockfeed_info` says which): scrape each one, or sum by job.

Two views (api/status_view.py): the detailed one adds what names tickers or hosts (the
`process` label, `hostname:pid`, and `stockfeed_ticker_stale{ticker}`); the counts view,
what everyone but the metrics token's holder gets when auth is on, leaves them out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    choose_encoder,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from stockfeed import __version__
from stockfeed.fanout.stats import StatsView
from stockfeed.services import Services

_BROKER_STATES = ("connecting", "connected", "degraded")


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    # `name` without `_total`: the exposition adds it.
    return CounterMetricFamily(name, doc, value=value)


class FeedCollector:
    """Turns one process's services into metric families when Prometheus scrapes."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        # The deployment's source status, read (maybe from Redis) just before a scrape:
        # `collect` itself must not wait on I/O.
        self.source_status: dict[str, object] = {}
        # The view being rendered: with ticker and host names, or counts only.
        self.details = True

    def collect(self) -> Iterator[Metric]:
        hub = self.svc.hub
        view = hub.stats.snapshot(hub.clients)
        yield from self._process()
        yield from self._clients(view)
        yield from self._messages(view)
        yield from self._broker()
        yield from self._source()
        yield from self._rest()
        yield from self._budgets(view)

    def _budgets(self, view: StatsView) -> Iterator[Metric]:
        """What clients made the process hold, against its budgets (docs/protocol.md#limits)."""
        hub = self.svc.hub
        yield _gauge(
            "stockfeed_tickers_lingering",
            "Tickers no client holds, kept for resume until their linger ends.",
            hub.room.lingering(),
        )
        yield _gauge(
            "stockfeed_tickers_max", "Tickers the process may hold at once.", hub.room.max_tickers
        )
        yield _counter(
            "stockfeed_tickers_evicted",
            "Lingering tickers dropped early to make room for a new one.",
            view.evicted,
        )
        yield _gauge(
            "stockfeed_resume_history_bytes",
            "Bytes of resume history held, all tickers together.",
            hub.history.nbytes,
        )
        yield _gauge(
            "stockfeed_resume_history_max_bytes",
            "The resume history's byte budget.",
            hub.history.max_bytes,
        )
        yield _counter(
            "stockfeed_resume_history_shed",
            "Updates dropped from the resume history to stay within its byte budget.",
            hub.history.shed,
        )
        refused = CounterMetricFamily(
            "stockfeed_subscriptions_refused",
            "Subscriptions refused by a limit, by error code.",
            labels=["code"],
        )
        for code in ("new_ticker_rate", "subscription_limit", "ticker_limit"):
            refused.add_metric([code], view.refused.get(code, 0))
        yield refused

    def _process(self) -> Iterator[Metric]:
        svc = self.svc
        info = InfoMetricFamily("stockfeed", "This server process.")
        labels = {
            "version": __version__,
            "broker": svc.broker.kind,
            "source_requested": svc.settings.source,
            "source_active": "none" if svc.source is None else svc.source.name,
        }
        if self.details:
            labels["process"] = svc.owner
        info.add_metric([], labels)
        yield info
        yield _gauge(
            "stockfeed_uptime_seconds",
            "Seconds since this process started.",
            time.time() - svc.started,
        )
        updater = svc.updater
        yield _gauge(
            "stockfeed_updater_leader",
            "1 when this process runs the deployment's updater (holds the leader lock).",
            1.0 if updater is not None and updater.is_leader else 0.0,
        )
        yield _gauge(
            "stockfeed_updater_present",
            "1 when some process of the deployment runs the updater.",
            1.0 if self.source_status.get("leader") else 0.0,
        )

    def _clients(self, view: StatsView) -> Iterator[Metric]:
        hub = self.svc.hub
        clients = list(hub.clients)
        queued = buffered = deepest = backlogged = 0
        for client in clients:
            messages, bytes_ = client.backlog()
            queued += messages
            buffered += bytes_
            deepest = max(deepest, messages)
            backlogged += 1 if messages or bytes_ else 0
        yield _gauge("stockfeed_connections", "Open WebSocket connections.", len(clients))
        yield _gauge(
            "stockfeed_connections_fast_path",
            "Open WebSocket connections on the fast path (pre-framed writes).",
            view.fast_path_connections,
        )
        yield _counter(
            "stockfeed_connections_opened",
            "WebSocket connections accepted.",
            view.connections_opened,
        )
        counts = hub.subscriber_counts()
        yield _gauge(
            "stockfeed_subscriptions",
            "Ticker subscriptions held by open connections (a connection with 3 counts 3).",
            sum(counts.values()),
        )
        yield _gauge(
            "stockfeed_subscribed_tickers",
            "Distinct tickers with at least one subscriber.",
            len(counts),
        )
        yield _gauge(
            "stockfeed_broker_channels",
            "Tickers this process listens to on the broker (including ones kept for resume).",
            len(hub.subscribers),
        )
        yield _gauge(
            "stockfeed_client_queue_messages",
            "Messages waiting to be written to clients, all connections together.",
            queued,
        )
        yield _gauge(
            "stockfeed_client_queue_messages_max",
            "Messages waiting to be written to the most backed-up connection.",
            deepest,
        )
        yield _gauge(
            "stockfeed_client_buffered_bytes",
            "Bytes in the connections' transport write buffers (fast path).",
            buffered,
        )
        yield _gauge(
            "stockfeed_clients_backlogged",
            "Connections with anything waiting to be written right now.",
            backlogged,
        )
        yield _counter(
            "stockfeed_updates_conflated",
            "Updates skipped for slow clients by conflation (a newer one of the ticker went "
            "instead).",
            view.conflated,
        )
        yield _counter(
            "stockfeed_slow_consumer_disconnects",
            "Connections closed with 4408 because they stopped reading.",
            view.slow_closed,
        )

    def _messages(self, view: StatsView) -> Iterator[Metric]:
        updater = self.svc.updater
        yield _counter(
            "stockfeed_messages_published",
            "Updates this process's updater published on the broker.",
            updater.published if updater is not None else 0,
        )
        yield _counter(
            "stockfeed_publish_failures",
            "Updates the updater dropped because the broker or store was unavailable.",
            updater.failed_publishes if updater is not None else 0,
        )
        yield _counter(
            "stockfeed_updates_relayed",
            "Updates received from the broker and relayed.",
            view.relayed,
        )
        yield _counter(
            "stockfeed_updates_rejected",
            "Broker messages dropped as not following the contract.",
            view.rejected,
        )
        yield _counter(
            "stockfeed_updates_duplicate",
            "Broker updates dropped because their seq was already relayed.",
            view.duplicates,
        )
        sent = CounterMetricFamily(
            "stockfeed_messages_sent",
            "Messages handed to client connections, by kind (price_update: one per "
            "subscriber of each relayed update, before per-client conflation).",
            labels=["kind"],
        )
        sent.add_metric(["price_update"], view.fanned_out)
        sent.add_metric(["replay"], view.replayed)
        sent.add_metric(["snapshot"], view.snapshots_sent)
        sent.add_metric(["market_status"], view.statuses_sent)
        sent.add_metric(["heartbeat"], view.heartbeats_sent)
        yield sent
        yield _counter(
            "stockfeed_resume_gaps",
            "Resumes that could not replay and got a gap snapshot instead.",
            view.gaps,
        )

    def _broker(self) -> Iterator[Metric]:
        broker = self.svc.broker
        state = GaugeMetricFamily(
            "stockfeed_broker_state", "1 for the broker's current state.", labels=["state"]
        )
        for name in _BROKER_STATES:
            state.add_metric([name], 1.0 if broker.state == name else 0.0)
        yield state
        yield _gauge(
            "stockfeed_broker_up",
            "1 when the broker is connected both ways.",
            1.0 if broker.state == "connected" else 0.0,
        )
        yield _counter(
            "stockfeed_broker_reconnects",
            "Times the broker connection was re-established after a loss.",
            broker.reconnects,
        )

    def _source(self) -> Iterator[Metric]:
        status = self.source_status
        source = self.svc.source
        yield _counter(
            "stockfeed_source_errors",
            "Failures of this process's source (polls, streams, rate limits); it only runs "
            "where the updater runs.",
            source.health.errors if source is not None else 0,
        )
        yield _gauge(
            "stockfeed_source_stale",
            "1 when the deployment's source is failing or no updater runs.",
            1.0 if status.get("stale") else 0.0,
        )
        yield _gauge(
            "stockfeed_source_simulated",
            "1 when the prices are simulated.",
            1.0 if status.get("simulated") else 0.0,
        )
        last = status.get("last_tick_ms")
        if isinstance(last, int | float):
            yield _gauge(
                "stockfeed_source_last_tick_timestamp_seconds",
                "When the source last produced a good tick (epoch seconds).",
                last / 1000.0,
            )
            yield _gauge(
                "stockfeed_source_last_tick_age_seconds",
                "Seconds since the source last produced a good tick: its freshness.",
                max(0.0, time.time() - last / 1000.0),
            )
        # Per-ticker liveness (fanout/liveness.py): silent while its market is open.
        liveness = self.svc.hub.liveness
        stale = liveness.stale_tickers()
        yield _gauge(
            "stockfeed_tickers_stale",
            "Tickers whose market is open but that have had no update for longer than usual.",
            len(stale),
        )
        if self.details:
            named = GaugeMetricFamily(
                "stockfeed_ticker_stale",
                "1 for each stale ticker (silent while its market is open), by ticker.",
                labels=["ticker"],
            )
            for ticker in stale:
                named.add_metric([ticker], 1.0)
            yield named
        yield _counter(
            "stockfeed_ticker_stale_events",
            "Times a ticker went stale.",
            liveness.went_stale,
        )

    def _rest(self) -> Iterator[Metric]:
        svc = self.svc
        cache = svc.answers
        yield _gauge(
            "stockfeed_rest_cache_bytes",
            "Bytes held by the REST answer cache (history bodies, lookups), entry overhead "
            "included.",
            cache.bytes,
        )
        yield _gauge(
            "stockfeed_rest_cache_max_bytes",
            "The REST answer cache's byte budget (STOCKFEED_REST_CACHE_BYTES).",
            cache.max_bytes,
        )
        yield _gauge("stockfeed_rest_cache_entries", "Answers in the REST cache.", len(cache))
        yield _counter(
            "stockfeed_rest_cache_hits", "REST answers served from the cache.", cache.hits
        )
        yield _counter(
            "stockfeed_rest_cache_misses",
            "REST answers that needed a source call (one per single flight).",
            cache.misses,
        )
        yield _counter(
            "stockfeed_rest_cache_single_flight_joins",
            "REST requests that shared a source call already in flight for the same answer.",
            cache.joins,
        )
        yield _counter(
            "stockfeed_rest_cache_evictions",
            "REST answers dropped to stay within the byte budget (least recently used first).",
            cache.evictions,
        )
        by_kind = GaugeMetricFamily(
            "stockfeed_rest_cache_kind_bytes",
            "Bytes held by each kind of REST answer (each has its own share of the budget).",
            labels=["kind"],
        )
        budget = GaugeMetricFamily(
            "stockfeed_rest_cache_kind_max_bytes",
            "Each kind's share of the REST answer cache's byte budget.",
            labels=["kind"],
        )
        for kind, part in cache.kinds.items():
            by_kind.add_metric([kind], part.bytes)
            budget.add_metric([kind], part.max_bytes)
        yield by_kind
        yield budget
        yield _counter(
            "stockfeed_rest_rate_limited",
            "REST requests refused with 429 for the per-IP request rate.",
            svc.rest_limits.refused,
        )
        renders = svc.renders
        yield _counter(
            "stockfeed_status_renders",
            "/api/ws/health and /metrics bodies rendered for callers that share them (kept "
            "for a second; exempt callers get their own and are not counted).",
            renders.renders,
        )
        yield _counter(
            "stockfeed_status_render_reuses",
            "/api/ws/health and /metrics requests answered with a body already rendered.",
            renders.hits,
        )
        yield _counter(
            "stockfeed_status_rate_limited",
            "/api/ws/health and /metrics requests refused with 429 for the per-IP rate.",
            svc.rest_limits.status_refused,
        )
        yield _gauge(
            "stockfeed_rest_rate_tracked_ips",
            "Client IPs whose REST request rate is being tracked.",
            svc.rest_limits.tracked,
        )
        upstream = svc.upstream
        yield _counter(
            "stockfeed_upstream_client_calls",
            "Calls to the upstream provider (Yahoo) made for clients: history, lookups.",
            upstream.calls,
        )
        yield _counter(
            "stockfeed_upstream_refusals",
            "Client requests refused with upstream_busy: the budget of upstream calls was "
            "spent, or the provider had rate-limited us.",
            upstream.refused,
        )
        yield _gauge(
            "stockfeed_upstream_client_calls_in_flight",
            "Upstream calls for clients running now.",
            upstream.in_flight,
        )


class Exporter:
    """One app's registry: our collector plus the standard process/platform/GC ones."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.registry = CollectorRegistry()
        self.collector = FeedCollector(svc)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def encoder(self, accept: str) -> tuple[Callable[[CollectorRegistry], bytes], str]:
        """The exposition format asked for (text, or OpenMetrics) and its content type."""
        try:
            encode, content_type = choose_encoder(accept)
        except (TypeError, ValueError):
            # e.g. `version=abc` in Accept breaks prometheus_client's parsing: a client
            # error, answered with the plain format rather than a 500.
            encode, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
        return encode, content_type

    async def render(self, encode: Callable[[CollectorRegistry], bytes], details: bool) -> bytes:
        """One exposition of the view asked for."""
        self.collector.source_status = await self.svc.source_status()
        self.collector.details = details
        return encode(self.registry)
