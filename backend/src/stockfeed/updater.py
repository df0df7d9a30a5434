"""The updater: the one task per deployment that reads the source and publishes.

It stamps each tick with the ticker's next `seq` and the publish time, caches it as the
latest quote and publishes it on `market:{T}`. With several processes on Redis, a lock
with a TTL elects exactly one updater; the others wait and take over when it lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from stockfeed import protocol
from stockfeed.broker import Broker, BrokerUnavailable
from stockfeed.models import Tick, now_ms
from stockfeed.sources.base import Source
from stockfeed.store import SharedStore, StoreUnavailable

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

    def wanted(self) -> frozenset[str]:
        return self._wanted

    async def run(self) -> None:
        try:
            while True:
                await self._step()
                await asyncio.sleep(self.leader_ttl / 3)
        finally:
            await self._stop_stream()
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
        self.is_leader = leader
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
        if self._stream is None or self._stream.done():
            if self._stream is not None and not self._stream.cancelled():
                exc = self._stream.exception()
                if exc is not None:
                    log.error("source %s stopped (%r): restarting it", self.source.name, exc)
            self._stream = asyncio.create_task(
                self.source.stream(self.wanted, self.emit), name=f"source-{self.source.name}"
            )
        with contextlib.suppress(StoreUnavailable):
            await self.store.put_status(json.dumps(self.status()), self.leader_ttl * 3)

    async def _stop_stream(self) -> None:
        task, self._stream = self._stream, None
        if task is not None:
            task.cancel()
            # Bounded: a task stuck in a client library's cancellation must not hold us.
            await asyncio.wait([task], timeout=3)

    async def emit(self, tick: Tick) -> None:
        """Stamp, cache and publish one tick (called by the source)."""
        if not self.is_leader or time.monotonic() >= self._lease_until:
            return  # not the updater, or its lock may have lapsed: another may lead now
        if time.monotonic() - self._yielded_at >= YIELD_AFTER:
            # Let the loop write out what was published before stamping more (see above).
            await asyncio.sleep(0)
            self._yielded_at = time.monotonic()
        try:
            seq = await self.store.next_seq(tick.ticker)
            last = self._last_seq.get(tick.ticker, 0)
            if seq <= last:
                # The store lost its counter (a Redis flush or restart): never go back.
                seq = await self.store.raise_seq(tick.ticker, last)
            raw = protocol.price_update(tick, seq)
            await self.store.put_quote(tick.ticker, raw, self.quote_ttl)
            await self.broker.publish(tick.ticker, raw)
        except (StoreUnavailable, BrokerUnavailable) as exc:
            self.failed_publishes += 1
            if time.monotonic() - self._last_failure_log > 5:
                self._last_failure_log = time.monotonic()
                log.error("cannot publish %s: %s (dropping until it is back)", tick.ticker, exc)
            return
        self._last_seq[tick.ticker] = seq
        self.published += 1

    def status(self) -> dict[str, object]:
        health = self.source.health
        last = health.last_tick_ms
        return {
            "requested": self.requested_source,
            "active": self.source.name,
            "simulated": self.source.simulated,
            "stale": health.stale,
            "last_tick_ms": last,
            "age_ms": None if last is None else round(now_ms() - last),
            "last_error": health.last_error,
            "leader": self.owner,
            "published": self.published,
            "failed_publishes": self.failed_publishes,
        }
