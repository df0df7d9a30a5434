"""What the Redis store's batched writes (put_quotes: a script call per ~100 updates, or per
slot on a cluster) leave in Redis, on one Redis, a Cluster and Sentinel (real servers):

- the layout other processes read: `quote:{T}` with its TTL, `quote_last:{T}` without,
  `history:{T}` newest first and capped at HISTORY_LENGTH;
- with replicas (cluster, Sentinel) the history stays one run of consecutive seqs, also
  within one batch; one Redis keeps every update;
- a Redis that lost the script (a restart, a failover, SCRIPT FLUSH) is written anyway;
- the calls a batch takes: on a cluster one per slot, else about 100 updates each.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import redis
from redis.crc import key_slot

from stockfeed.config import Settings
from stockfeed.services import build_broker_and_store
from stockfeed.shared.base import HISTORY_LENGTH
from stockfeed.shared.redis import _PUT_QUOTES_SHA, RedisStore
from stockfeed.testing.redis_topologies import ClusterTopology, SentinelTopology

pytestmark = pytest.mark.process


@dataclass
class Backend:
    name: str
    store: RedisStore
    contiguous: bool
    primaries: Callable[[], list[redis.Redis]]  # every server holding the store's keys
    holder: Callable[[str], redis.Redis]  # the one holding this key

    def flush_scripts(self) -> None:
        for client in self.primaries():
            with client:
                client.script_flush()

    def script_calls(self) -> int:
        """EVALSHA calls the servers answered so far."""
        total = 0
        for client in self.primaries():
            with client:
                total += int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
        return total


@pytest.fixture(params=["redis", "cluster", "sentinel"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    primaries: Callable[[], list[redis.Redis]]
    holder: Callable[[str], redis.Redis]
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        primaries = lambda: [redis.Redis.from_url(url)]  # noqa: E731
        holder = lambda key: redis.Redis.from_url(url)  # noqa: E731
    elif request.param == "cluster":
        url = request.getfixturevalue("cluster_url")
        cluster: ClusterTopology = request.getfixturevalue("cluster")
        primaries = lambda: [n.client() for n in cluster.primary_nodes()]  # noqa: E731
        holder = lambda key: cluster.primary_for(key).client()  # noqa: E731
    else:
        url = request.getfixturevalue("sentinel_url")
        sentinel: SentinelTopology = request.getfixturevalue("sentinel")
        primaries = lambda: [sentinel.primary.client()]  # noqa: E731
        holder = lambda key: sentinel.primary.client()  # noqa: E731
    broker, store = build_broker_and_store(Settings(broker=url))
    assert isinstance(store, RedisStore)
    yield Backend(request.param, store, request.param != "redis", primaries, holder)
    await store.close()
    await broker.close()


def update(ticker: str, seq: int) -> str:
    return json.dumps({"type": "price_update", "ticker": ticker, "seq": seq})


async def history(store: RedisStore, ticker: str) -> list[int]:
    return [json.loads(raw)["seq"] for raw in await store.recent(ticker)]


async def test_the_layout_other_processes_read(backend: Backend) -> None:
    store, keys = backend.store, backend.store.keys
    ticks = [(t, i) for i in range(1, HISTORY_LENGTH + 21) for t in ("LAYA", "LAYB")]
    for start in range(0, len(ticks), 500):  # the updater's largest batch
        await store.put_quotes([(t, update(t, i)) for t, i in ticks[start : start + 500]], 30.0)
    r = store._r
    for ticker in ("LAYA", "LAYB"):
        newest = update(ticker, HISTORY_LENGTH + 20)
        assert await r.get(keys.of("quote", ticker)) == newest
        assert 29_000 < await r.pttl(keys.of("quote", ticker)) <= 30_000
        assert await r.get(keys.of("quote_last", ticker)) == newest
        assert await r.pttl(keys.of("quote_last", ticker)) == -1  # never expires
        items = await r.lrange(keys.of("history", ticker), 0, -1)
        assert len(items) == HISTORY_LENGTH  # capped
        assert items[0] == newest and items[-1] == update(ticker, 21)  # newest first
    assert await history(store, "LAYA") == list(range(21, HISTORY_LENGTH + 21))


async def test_a_seq_that_does_not_follow_starts_the_history_again_with_replicas(
    backend: Backend,
) -> None:
    store = backend.store
    # A hole inside one batch (3 never written), then one between batches (6 and 7).
    await store.put_quotes([("HOLE", update("HOLE", s)) for s in (1, 2, 4, 5)], 30.0)
    assert await history(store, "HOLE") == ([4, 5] if backend.contiguous else [1, 2, 4, 5])
    await store.put_quotes([("HOLE", update("HOLE", s)) for s in (8, 9)], 30.0)
    got = await history(store, "HOLE")
    assert got == ([8, 9] if backend.contiguous else [1, 2, 4, 5, 8, 9])
    await store.put_quote("HOLE", update("HOLE", 10), 30.0)  # one at a time: the same
    assert (await history(store, "HOLE"))[-3:] == [8, 9, 10]


async def test_a_redis_that_lost_the_script_is_written_anyway(backend: Backend) -> None:
    store = backend.store
    await store.put_quotes([("NOSA", update("NOSA", 1)), ("NOSB", update("NOSB", 1))], 30.0)
    backend.flush_scripts()  # as after a restart or a failover to a replica
    await store.put_quotes([("NOSA", update("NOSA", 2)), ("NOSB", update("NOSB", 2))], 30.0)
    for ticker in ("NOSA", "NOSB"):
        quote = await store.get_quote(ticker)
        assert quote is not None and quote.raw == update(ticker, 2)
        assert await history(store, ticker) == [1, 2]
    for ticker in ("NOSA", "NOSB"):  # known again: the next batch goes by its SHA
        with backend.holder(store.keys.of("quote", ticker)) as client:
            assert client.script_exists(_PUT_QUOTES_SHA) == [True]
    before = backend.script_calls()
    await store.put_quote("NOSA", update("NOSA", 3), 30.0)
    assert backend.script_calls() == before + 1
    assert await history(store, "NOSA") == [1, 2, 3]


async def test_script_calls_a_batch_takes(backend: Backend) -> None:
    # Two tickers whose hash tags fall in one slot (found by trying names), and one that
    # does not: on a cluster, one call for the pair and one beside it; elsewhere one.
    names = (f"SL{i}" for i in itertools.count())
    by_slot: dict[int, str] = {}
    for name in names:
        slot = key_slot(name.encode())
        if slot in by_slot:
            pair = (by_slot[slot], name)
            break
        by_slot[slot] = name
    other = next(n for n in by_slot.values() if key_slot(n.encode()) != key_slot(pair[0].encode()))
    tickers = (*pair, other)
    store = backend.store
    await store.put_quotes([(t, update(t, 1)) for t in tickers], 30.0)
    before = backend.script_calls()
    await store.put_quotes([(t, update(t, s)) for s in (2, 3) for t in tickers], 30.0)
    assert backend.script_calls() - before == (2 if backend.name == "cluster" else 1)
    for ticker in tickers:
        assert await history(store, ticker) == [1, 2, 3]
    # A batch of 370 tickers: one call a slot on a cluster, else about 100 updates a call
    # (a script holds Redis until it ends).
    many = [f"MANY{i}" for i in range(370)]
    await store.put_quotes([(t, update(t, 1)) for t in many], 30.0)
    before = backend.script_calls()
    await store.put_quotes([(t, update(t, 2)) for t in many], 30.0)
    slots = {key_slot(t.encode()) for t in many}
    assert backend.script_calls() - before == (len(slots) if backend.name == "cluster" else 4)
    for ticker in many[::37]:
        assert await history(store, ticker) == [1, 2]
