"""Everything one server process runs, wired together and started/stopped as one."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from stockfeed.api.answer_cache import AnswerCaches, Fill
from stockfeed.api.render_cache import RenderCache
from stockfeed.api.rest_limits import RestRateLimiter
from stockfeed.bar_history import BarHistory
from stockfeed.broker import Broker
from stockfeed.config import Settings
from stockfeed.fanout.hub import Hub
from stockfeed.fanout.latest import parse_status
from stockfeed.fanout.stats import HubStats
from stockfeed.kept import KeptStore, KeptUnavailable
from stockfeed.kept import urls as kept_urls
from stockfeed.kept.keeper import Keeper
from stockfeed.kept.retention import Retention
from stockfeed.kept.writer import Writer
from stockfeed.market_hours import MarketClock
from stockfeed.shared import SharedStore, StoreUnavailable
from stockfeed.shutdown import GracefulShutdown
from stockfeed.sources.base import Source, UnknownTicker
from stockfeed.sources.budget import UpstreamBudget, UpstreamBusy
from stockfeed.sources.factory import build_source
from stockfeed.ticker_groups import TickerGroup
from stockfeed.updater import Updater

log = logging.getLogger(__name__)


def build_broker_and_store(settings: Settings) -> tuple[Broker, SharedStore]:
    if settings.uses_redis:
        from stockfeed.broker import urls
        from stockfeed.broker.redis import RedisBroker
        from stockfeed.shared.redis import RedisStore, cluster_store, sentinel_store

        target = urls.parse(settings.broker)
        if target.mode == "cluster":
            from stockfeed.broker.cluster import RedisClusterBroker

            return RedisClusterBroker(target), cluster_store(target)
        if target.mode == "sentinel":
            from stockfeed.broker.sentinel import SentinelBroker

            return SentinelBroker(target), sentinel_store(target)
        return RedisBroker(settings.broker), RedisStore(settings.broker)
    from stockfeed.broker.memory import MemoryBroker
    from stockfeed.shared.memory import MemoryStore

    return MemoryBroker(), MemoryStore(max_tickers=settings.max_tickers * 4)


@dataclass
class Services:
    settings: Settings
    broker: Broker
    store: SharedStore
    clock: MarketClock
    hub: Hub
    source: Source | None
    updater: Updater | None
    owner: str
    watchlist: list[str]
    # REST budgets (api/answer_cache.py, api/rest_limits.py, sources/budget.py).
    answers: AnswerCaches
    rest_limits: RestRateLimiter
    upstream: UpstreamBudget
    # The market-data store (stockfeed/kept/; None: `--store none`), its writer's side
    # (the keeper: active where the updater leads), and history loading from it.
    kept: KeptStore | None
    keeper: Keeper | None
    history: BarHistory
    retention: Retention | None = None
    # This process's ticker group (ticker_groups.py; None: every ticker).
    group: TickerGroup | None = None
    # /api/ws/health and /metrics bodies, reused for a second (api/status_view.py).
    renders: RenderCache = field(default_factory=RenderCache)
    started: float = field(default_factory=time.time)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _graceful: GracefulShutdown | None = None

    @classmethod
    async def create(cls, settings: Settings) -> Services:
        broker, store = build_broker_and_store(settings)
        broker.ingest_rest = settings.ingest_rest_ms / 1000
        clock = MarketClock()
        source = await build_source(settings, clock)
        if source is not None and source.market_clock is not None:
            clock = source.market_clock  # the hours its prices follow (sim: always open)
        owner = f"{socket.gethostname()}:{os.getpid()}"
        updater = None
        watchlist = list(settings.tickers)
        replayed = getattr(source, "tickers", None)
        if source is not None and source.name == "replay" and replayed:
            watchlist = list(replayed)  # a recording plays what it holds
        if source is not None:
            updater = Updater(
                source=source,
                requested_source=settings.source,
                broker=broker,
                store=store,
                watchlist=watchlist,
                quote_ttl=settings.quote_ttl,
                leader_ttl=settings.leader_ttl,
                owner=owner,
                clock=clock,
            )
        services: Services
        hub = Hub(
            broker=broker,
            store=store,
            clock=clock,
            quote_ttl=settings.quote_ttl,
            heartbeat_interval=settings.heartbeat_interval,
            stale_since=lambda: services.stale_since(),
            resume_history=settings.resume_history,
            resume_window=settings.resume_window,
            resume_history_bytes=settings.resume_history_bytes,
            max_tickers=settings.max_tickers,
            linger_min=settings.linger_min,
            stats=HubStats(),
        )
        kept = kept_urls.build(settings)
        keeper = None
        if kept is not None:
            keeper = Keeper(
                kept,
                Writer(kept),
                epoch=lambda: hub.epochs.epoch,
                wanted=updater.wanted if updater is not None else frozenset,
                recent=store.recent,
                keep_ticks=settings.keep_ticks,
                wait_for_first=updater is not None,
            )
            hub.updates.last_known = _last_known(kept)
            hub.bars.kept = keeper.checkpoint
            if updater is not None and not (settings.source == "replay" and settings.replay_from):
                # (A replay of kept updates keeps nothing: they are kept already.)
                updater.keeper = keeper
        answers = AnswerCaches(settings.rest_cache_bytes)
        history = BarHistory(
            source=source, kept=kept, keeper=keeper, answers=answers, clock=clock, bars=hub.bars
        )
        hub.bars.base = history.base_bars()  # a first bar book's history
        if keeper is not None:
            keeper.base = hub.bars.base
        # The source's own budget for calls made on clients' behalf (only a source with an
        # upstream provider has one), configured here; a stand-in otherwise, so metrics
        # read zeros.
        upstream = getattr(source, "client_budget", None)
        if not isinstance(upstream, UpstreamBudget):
            upstream = UpstreamBudget()
        upstream.configure(settings.upstream_calls_per_minute, settings.upstream_burst)
        services = cls(
            settings,
            broker,
            store,
            clock,
            hub,
            source,
            updater,
            owner,
            watchlist,
            answers=answers,
            rest_limits=RestRateLimiter(settings),
            upstream=upstream,
            kept=kept,
            keeper=keeper,
            history=history,
            group=settings.group,
        )
        if keeper is not None and updater is not None:
            services.retention = Retention(
                keeper,
                keep_ticks_days=settings.keep_ticks_days if settings.keep_ticks else None,
                max_bytes=settings.store_max_bytes,
            )
        return services

    async def can_quote(self, ticker: str) -> bool:
        """Whether the source can quote a ticker this process does not hold yet, for a
        client that asks (REST or WebSocket). Raises UpstreamBusy when it cannot tell
        now (its upstream budget is spent, it does not answer in time): callers refuse
        for now, never accept (fail closed). Answers are shared through the answer
        cache: a yes for an hour, a no for ten minutes. Relay (no source): always."""
        source = self.source
        if source is None or ticker in self.watchlist:
            return True  # relay: cannot know; the watchlist: the updater produces it anyway
        key = ("can_quote", source.name, ticker)
        known = await self.answers.get_or_load(key, lambda: _can_quote(source, ticker))
        if known is None:
            raise UpstreamBusy(f"the source cannot tell now whether it quotes {ticker}", 5)
        return known

    def stale_since(self) -> float | None:
        """The source's last good time when it is failing (for `market_status`)."""
        if self.source is None or not self.source.health.stale:
            return None
        return self.source.health.last_tick_ms or 0.0

    async def start(self) -> None:
        self._graceful = GracefulShutdown(
            lambda: self.hub.shutdown(self.settings.shutdown_retry_after_ms)
        )
        self._graceful.install()
        # Build the exchange calendar now, not in the middle of the first connect burst.
        await asyncio.to_thread(self.clock.status, "AAPL")
        await self.broker.start()
        await self._open_store()
        await self.hub.refresh_epoch()
        self.hub.start()
        if self.updater is not None:
            self._tasks.append(asyncio.create_task(self.updater.run(), name="updater"))

    async def _open_store(self) -> None:
        """Open the market-data store (migrations applied), and start its writer where an
        updater may lead. A store that cannot be opened is logged and left off: the feed
        itself does not depend on it."""
        kept, keeper = self.kept, self.keeper
        if kept is None or keeper is None:
            return
        try:
            await kept.open()
            floors = await kept.quote_seqs()
        except KeptUnavailable as exc:
            log.error("store: %s: %s; nothing is kept this run", kept.where, exc)
            self.kept = self.history.kept = self.keeper = self.history.keeper = None
            self.hub.updates.last_known = None
            self.hub.bars.kept = None
            if self.updater is not None:
                self.updater.keeper = None
            self.retention = None
            return
        log.info("store: %s %s (%d tickers kept)", kept.kind, kept.where, len(floors))
        if self.updater is not None:
            # A kept ticker's seq never starts again below what was kept (the memory
            # store's counters start at 1 in each process).
            self.updater.seq_floors = floors
            keeper.writer.start()
            self._tasks.append(asyncio.create_task(keeper.run(), name="kept-flush"))
            if self.retention is not None:
                self._tasks.append(asyncio.create_task(self.retention.run(), name="kept-retention"))

    async def stop(self) -> None:
        if self._graceful is not None:
            self._graceful.uninstall()
        await self.hub.shutdown(self.settings.shutdown_retry_after_ms)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        await self.hub.stop()
        if self.source is not None:
            await self.source.close()
        await self.broker.close()
        await self.store.close()
        if self.keeper is not None:
            await self.keeper.writer.stop()
        if self.kept is not None:
            await self.kept.close()

    async def source_status(self) -> dict[str, object]:
        """The active source as the updater (maybe another process) reports it."""
        status: dict[str, object] | None = None
        if self.updater is not None and self.updater.is_leader:
            status = self.updater.status()
        else:
            try:
                status = parse_status(await self.store.get_status())
            except StoreUnavailable:
                status = None
        if status is None:
            return {
                "requested": self.settings.source,
                "active": "none" if self.source is None else self.source.name,
                "simulated": bool(self.source and self.source.simulated),
                "stale": self.settings.source != "none",
                "last_tick_ms": None,
                "age_ms": None,
                "last_error": "no updater is running" if self.settings.source != "none" else None,
                "leader": None,
            }
        last = status.get("last_tick_ms")
        if isinstance(last, int | float):
            status["age_ms"] = round(time.time() * 1000 - last)
        return status


def _last_known(kept: KeptStore) -> Callable[[str], Awaitable[str | None]]:
    """A ticker's last kept update, for the hub when the shared store has none."""

    async def read(ticker: str) -> str | None:
        try:
            quote = await kept.last_quote(ticker)
        except KeptUnavailable:
            return None
        return None if quote is None else quote.body

    return read


# How long a lookup of "can the source quote X?" may take before the asker is told to
# try again later, and how long its answers are believed: a yes for an hour (symbols
# rarely vanish), a no for ten minutes (nor appear). "Cannot tell now" is not kept.
CAN_QUOTE_TIMEOUT = 3.0
KNOWN_TTL = 3600.0
UNKNOWN_TTL = 600.0


async def _can_quote(source: Source, ticker: str) -> Fill[bool | None]:
    try:
        known = await asyncio.wait_for(source.can_quote(ticker), CAN_QUOTE_TIMEOUT)
    except UnknownTicker:
        known = False
    except TimeoutError:
        known = None
    ttl = 0.0 if known is None else KNOWN_TTL if known else UNKNOWN_TTL
    return Fill(known, 0, ttl)
