"""The updater on a store of several servers (a Redis Cluster's shards) sends each
server's part of a batch on its own: while one server fails, the updates of the tickers
on the others go out whole, with consecutive `seq`, and take no `seq` they never publish.
In-process: a memory store that says which shard holds a ticker and fails one of them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from stockfeed.broker.memory import MemoryBroker
from stockfeed.models import Tick
from stockfeed.shared.base import StoreUnavailable
from stockfeed.shared.memory import MemoryStore
from stockfeed.sources.sim import SimSource
from stockfeed.updater import Updater

HEALTHY = ["HA", "HB", "HC"]  # shard "up"
BROKEN = ["XA", "XB"]  # shard "down"


class TwoShards(MemoryStore):
    pipelined = True  # batches, as on Redis

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls: list[list[str]] = []

    def shard_of(self, ticker: str) -> str | None:
        return "down" if ticker in BROKEN else "up"

    async def next_seqs(self, tickers: Sequence[str]) -> list[int]:
        self.calls.append(list(tickers))
        await asyncio.sleep(0)  # a round trip
        if self.down and any(t in BROKEN for t in tickers):
            raise StoreUnavailable("shard down")
        return await super().next_seqs(tickers)


async def test_a_failing_shard_costs_only_its_own_tickers_updates() -> None:
    store = TwoShards()
    broker = MemoryBroker()
    got: list[dict[str, object]] = []
    broker.set_handler(lambda t, m: got.append(json.loads(m)))
    for ticker in HEALTHY + BROKEN:
        await broker.subscribe(ticker)
    updater = Updater(
        source=SimSource(seed=1, market_hours=False),
        requested_source="sim",
        broker=broker,
        store=store,
        watchlist=HEALTHY + BROKEN,
        quote_ttl=60.0,
        leader_ttl=5.0,
        owner="test",
    )
    updater.is_leader = True
    updater._lease_until = float("inf")  # as if it held the lock
    assert updater._queue is not None

    async def burst(rounds: int) -> None:
        for i in range(rounds):
            for ticker in HEALTHY + BROKEN:
                await updater.publish(Tick(ticker, 100.0 + i))
        for _ in range(200):
            if not len(updater._queue):  # type: ignore[arg-type]
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)

    await burst(5)
    store.down = True
    await burst(5)
    store.down = False
    await burst(5)
    await updater._queue.close()

    # Each call went to one shard only.
    assert all(len({store.shard_of(t) for t in call}) == 1 for call in store.calls)
    for ticker in HEALTHY:
        seqs = [m["seq"] for m in got if m["ticker"] == ticker]
        assert seqs == list(range(1, 16)), ticker  # never held up by the other shard
    for ticker in BROKEN:
        seqs = [m["seq"] for m in got if m["ticker"] == ticker]
        assert seqs == list(range(1, 11)), ticker  # its 5 while down failed, no seq taken
    assert updater.failed_publishes == 5 * len(BROKEN)
    assert updater.published == 15 * len(HEALTHY) + 10 * len(BROKEN)
