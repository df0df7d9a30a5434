"""The updater: the one task per deployment that reads the source and publishes.

It folds the source's events (trades, quotes, bars, summaries: sources/events.py) into
the last-price view (sources/last_price.py), stamps each update the view yields with its
session figures (sources/session_figures.py), the ticker's next `seq` and the publish
time, caches it as the latest quote and publishes it on `market:{T}`. With several
processes on Redis, a lock with a TTL elects exactly one updater; the others wait and
take over when it lapses. Only the updater runs the source's
stream, so a vendor's socket (one per key: Alpaca refuses a second with 406) is held by
exactly one process of the deployment, and handed over with the lock.

`seq` comes from the store per ticker whatever the source, so a failover between sources
(sources/failover.py) never restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from stockfeed import protocol
from stockfeed.broker import Broker, BrokerUnavailable
from stockfeed.kept.keeper import Keeper
from stockfeed.market_hours import MarketClock
from stockfeed.models import Tick, now_ms
from stockfeed.publish_queue import PublishQueue
from stockfeed.shared import SharedStore, StoreUnavailable
from stockfeed.sources.base import Provenance, Source
from stockfeed.sources.events import Event, Gap, SourceState
from stockfeed.sources.last_price import LastPriceView
from stockfeed.sources.session_figures import SessionFigures

log = logging.getLogger(__name__)

# Longest run of emits without a yield to the event loop (seconds). With the embedded
# broker and store an emit never waits, so a source delivering a round of many tickers
# (the simulator's every second, a Yahoo poll) would publish them all in one loop turn:
# the round's first update is stamped, then waits for the whole round (~30 us an emit,
# hundreds of held tickers: tens of ms) before the fan-out's flush (a `call_soon`
# callback) writes anything. Yielding once this long has passed since the last yield
# bounds that wait whatever an emit costs (one with many subscribers costs more), and
# keeps the flush's batching: ~30 emits a turn, not one. A small round (the default
# 6 tickers) yields once, at its first emit (a sleep(0): ~4 us).
YIELD_AFTER = 0.001
# Gaps the status keeps (the newest), for /api/ws/health.
KEPT_GAPS = 10


class Updater:
    def __init__(
        self,
        *,
        source: Source,
        requested_source: str,
        broker: Broker,
        store: SharedStore,
        watchlist: list[str],
        quote_ttl: float,
        leader_ttl: float,
        owner: str,
        clock: MarketClock | None = None,
    ) -> None:
        self.source = source
        self.requested_source = requested_source
        self.broker = broker
        self.store = store
        self.watchlist = frozenset(watchlist)
        self.quote_ttl = quote_ttl
        self.leader_ttl = leader_ttl
        self.owner = owner
        self.is_leader = False
        self.published = 0
        self.failed_publishes = 0
        self._wanted = self.watchlist
        self._last_seq: dict[str, int] = {}
        self._stream: asyncio.Task[None] | None = None
        self._last_failure_log = 0.0
        self._yielded_at = 0.0  # time.monotonic() of the last yield to the loop
        self._lease_until = 0.0  # time.monotonic() until which the lock we renewed holds
        self.view = LastPriceView()
        # Session, previous and regular close of session-bound instruments, by the hours
        # the source's prices follow (a simulator without market hours: none).
        self.sessions = SessionFigures(clock or source.market_clock or MarketClock())
        # The source's own reports (SourceState per source name, recent Gaps).
        self.states: dict[str, SourceState] = {}
        self.gaps: list[dict[str, object]] = []
        self.gaps_total = 0
        self.disabled: str | None = None  # a fatal configuration error stopped the source
        # The market-data store's writer side (kept/keeper.py): every published update is
        # folded into its bars; None without a store.
        self.keeper: Keeper | None = None
        # Per ticker, the last seq the market-data store kept: never published again.
        self.seq_floors: dict[str, int] = {}
        # Updates on their way to a store that pipelines (Redis), sent in batches;
        # None: each is published before the next is taken (the memory store).
        self._queue = PublishQueue(self._publish_batch) if store.pipelined else None

    def wanted(self) -> frozenset[str]:
        return self._wanted

    async def run(self) -> None:
        try:
            while True:
                await self._step()
                await asyncio.sleep(self.leader_ttl / 3)
        finally:
            await self._stop_stream()
            if self._queue is not None:
                await self._queue.close()
            if self.is_leader:
                with contextlib.suppress(StoreUnavailable):
                    await self.store.release_lead(self.owner)

    async def _step(self) -> None:
        asked = time.monotonic()
        try:
            leader = await self.store.try_lead(self.owner, self.leader_ttl)
        except StoreUnavailable:
            # The lock's store cannot answer (e.g. its cluster shard failing over). The
            # lock last renewed is ours until it lapses, and nobody can take it before:
            # keep producing until then rather than pause every ticker, whose own shards
            # may be fine, for the whole failover.
            leader = self.is_leader and time.monotonic() < self._lease_until
        else:
            if leader:
                self._lease_until = asked + self.leader_ttl
        if leader and not self.is_leader:
            log.info("this process (%s) is now the updater", self.owner)
        elif not leader and self.is_leader:
            log.warning("this process (%s) lost the updater lock: stopping the source", self.owner)
            await self._stop_stream()
            if self._queue is not None:
                self._queue.drop()
        self.is_leader = leader
        if self.keeper is not None:
            self.keeper.lead(leader)
        if not leader:
            return
        try:
            self._wanted = self.watchlist | frozenset(await self.store.interest())
        except StoreUnavailable:
            pass
        if len(self._last_seq) > 2 * len(self._wanted) + 1000:
            # Tickers nobody wants any more: their guard against a lost counter can go
            # (a restart of their seq would show as a new epoch, never as a repeat).
            self._last_seq = {t: s for t, s in self._last_seq.items() if t in self._wanted}
            self.view.forget(self._wanted)
            self.sessions.forget(self._wanted)
        if (self._stream is None or self._stream.done()) and self.disabled is None:
            if self._stream is not None and not self._stream.cancelled():
                exc = self._stream.exception()
                if exc is not None:
                    log.error("source %s stopped (%r): restarting it", self.source.name, exc)
            self._stream = asyncio.create_task(
                self.source.run(self.wanted, self.deliver), name=f"source-{self.source.name}"
            )
        with contextlib.suppress(StoreUnavailable):
            await self.store.put_status(json.dumps(self.status()), self.leader_ttl * 3)

    async def _stop_stream(self) -> None:
        task, self._stream = self._stream, None
        if task is not None:
            task.cancel()
            # Bounded: a task stuck in a client library's cancellation must not hold us.
            await asyncio.wait([task], timeout=3)

    async def emit(self, event: Event) -> None:
        """One event of the source itself (its provenance): folded, maybe published."""
        await self.deliver(self.source.provenance, event)

    async def deliver(self, provenance: Provenance, event: Event) -> None:
        """One event from the source (or a chain's member `provenance`): reports about the
        source go to the status, the rest through the last-price view, and what it yields
        is published."""
        if isinstance(event, SourceState):
            self._on_state(provenance, event)
            return
        if isinstance(event, Gap):
            self._on_gap(provenance, event)
            return
        if not self.is_leader or time.monotonic() >= self._lease_until:
            return  # not the updater (any more): another process owns the view
        tick = self.view.apply(provenance, event)
        if tick is not None:
            await self.publish(tick)

    def _on_state(self, provenance: Provenance, state: SourceState) -> None:
        before = self.states.get(provenance.source)
        self.states[provenance.source] = state
        if state.fatal and (before is None or before.fatal != state.fatal):
            log.error("source %s disabled: %s", provenance.source, state.fatal)
            if provenance.source == self.source.name:
                self.disabled = state.fatal
        if state.limited and (before is None or before.limited != state.limited):
            log.warning(
                "source %s is limited: %d ticker(s) left out (%s): %s",
                provenance.source,
                len(state.limited),
                ", ".join(sorted(state.limited)[:20]),
                state.message or "capacity",
            )
        if state.stale and (before is None or before.stale != state.stale):
            log.warning(
                "source %s: no data for %s while their market is open",
                provenance.source,
                ", ".join(sorted(state.stale)[:20]),
            )

    def _on_gap(self, provenance: Provenance, gap: Gap) -> None:
        self.gaps_total += 1
        seconds = max(0.0, (gap.until_ns - gap.since_ns) / 1e9)
        self.gaps.append(
            {
                "source": provenance.source,
                "since_ms": gap.since_ns // 1_000_000,
                "until_ms": gap.until_ns // 1_000_000,
                "tickers": sorted(gap.tickers)[:50],
                "reason": gap.reason,
            }
        )
        del self.gaps[:-KEPT_GAPS]
        log.warning(
            "source %s: a gap of %.1f s in the data of %d ticker(s) (%s)",
            provenance.source,
            seconds,
            len(gap.tickers),
            gap.reason,
        )

    async def publish(self, tick: Tick) -> None:
        """Stamp, cache and publish one update."""
        if not self.is_leader or time.monotonic() >= self._lease_until:
            return  # not the updater, or its lock may have lapsed: another may lead now
        if time.monotonic() - self._yielded_at >= YIELD_AFTER:
            # Let the loop write out what was published before stamping more (see above).
            await asyncio.sleep(0)
            self._yielded_at = time.monotonic()
        if self._queue is not None:
            await self._queue.put(tick)  # sent in a batch by the queue's task
        else:
            await self._publish_batch([tick])

    async def _publish_batch(self, ticks: list[Tick]) -> None:
        """Stamp, cache and publish these updates, in order (one round trip per step
        where the store and broker pipeline). A batch names each ticker once
        (publish_queue.py). On a cluster each shard's part goes on its own, the parts at
        once: a shard that fails costs its own tickers' updates, not the others' (theirs
        would have taken a `seq` and never been published: a gap for their clients)."""
        if not self.is_leader or time.monotonic() >= self._lease_until:
            return  # the lock may have lapsed while they were queued
        parts: dict[str | None, list[Tick]] = {}
        for tick in ticks:
            parts.setdefault(self.store.shard_of(tick.ticker), []).append(tick)
        if len(parts) == 1:
            await self._publish_part(ticks)
        else:
            await asyncio.gather(*(self._publish_part(part) for part in parts.values()))

    async def _publish_part(self, ticks: list[Tick]) -> None:
        """`_publish_batch` for updates whose keys are on one server."""
        sent: list[tuple[Tick, int, float, str]] = []
        try:
            seqs = await self.store.next_seqs([tick.ticker for tick in ticks])
            for tick, seq in zip(ticks, seqs, strict=True):
                ticker = tick.ticker
                last = self._last_seq.get(ticker) or self.seq_floors.get(ticker, 0)
                if seq <= last:
                    # The store lost its counter (a Redis flush or restart), or this is
                    # the memory store's first count after a restart: never go back.
                    seq = await self.store.raise_seq(ticker, last)
                self.sessions.stamp(tick)
                timestamp = round(now_ms(), 3)
                sent.append((tick, seq, timestamp, protocol.price_update(tick, seq, timestamp)))
            quotes = [(tick.ticker, raw) for tick, _, _, raw in sent]
            await self.store.put_quotes(quotes, self.quote_ttl)
            await self.broker.publish_many(quotes)
        except (StoreUnavailable, BrokerUnavailable) as exc:
            self.failed_publishes += len(ticks)
            if time.monotonic() - self._last_failure_log > 5:
                self._last_failure_log = time.monotonic()
                log.error(
                    "cannot publish %s: %s (dropping until it is back)",
                    ", ".join(sorted({t.ticker for t in ticks})[:10]),
                    exc,
                )
            return
        self._last_seq.update((tick.ticker, seq) for tick, seq, _, _ in sent)
        self.published += len(ticks)
        if self.keeper is not None:
            for tick, seq, timestamp, raw in sent:
                self.keeper.published(tick, seq, timestamp, raw)

    def status(self) -> dict[str, object]:
        health = self.source.health
        last = health.last_tick_ms
        provenance = self.source.provenance
        out: dict[str, object] = {
            "requested": self.requested_source,
            "active": self.source.name,
            "simulated": self.source.simulated,
            "stale": health.stale or self.disabled is not None,
            "last_tick_ms": last,
            "age_ms": None if last is None else round(now_ms() - last),
            "last_error": self.disabled or health.last_error,
            "leader": self.owner,
            "published": self.published,
            "failed_publishes": self.failed_publishes,
            "feed": provenance.feed,
            "delayed": provenance.delayed,
        }
        if self.states:
            out["vendors"] = {
                name: {
                    "connected": s.connected,
                    "authorised": s.authorised,
                    "limited": sorted(s.limited),
                    "stale_tickers": sorted(s.stale),
                    "fatal": s.fatal,
                    "message": s.message,
                }
                for name, s in sorted(self.states.items())
            }
        if self.gaps_total:
            out["gaps"] = {"total": self.gaps_total, "recent": list(self.gaps)}
        out.update(self.source.describe_state())
        return out
