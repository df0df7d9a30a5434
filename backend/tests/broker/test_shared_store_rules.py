"""The shared stores' own rules, one suite for each (memory; Redis: a real server), beside
tests/broker/test_broker_store.py (seq, quotes, the lock, interest, status):

- the ticker limit: the memory store holds the per-ticker state (quote, seq, bar
  checkpoints) of at most `max_tickers` tickers, the least recently published forgotten
  first (a store that never forgets would grow with every ticker ever asked for); Redis
  holds them all (its memory is the operator's to bound);
- seq floors: a ticker's next seq is above every seq it had, also after it was forgotten
  (a change that stopped raising the floor would hand a returning ticker seq 1 again:
  clients would take it for updates they already have);
- bar checkpoints: written over an older one only, created only where none can be
  continued, and gone with their ticker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stockfeed.shared import SharedStore
from stockfeed.shared.memory import MemoryStore
from stockfeed.shared.redis import RedisStore

LIMIT = 5


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.process)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SharedStore]:
    kept: SharedStore
    if request.param == "memory":
        kept = MemoryStore(max_tickers=LIMIT)
    else:
        kept = RedisStore(request.getfixturevalue("redis_url"))
    yield kept
    await kept.close()


async def publish(store: SharedStore, ticker: str) -> int:
    """What the updater does for one update: the next seq, then the quote."""
    seq = await store.next_seq(ticker)
    await store.put_quote(ticker, f'{{"type":"price_update","ticker":"{ticker}","seq":{seq}}}', 60)
    return seq


async def test_the_memory_store_holds_at_most_its_ticker_limit(store: SharedStore) -> None:
    for i in range(LIMIT + 3):
        await publish(store, f"T{i}")
    await publish(store, "T0")  # published again: the most recent now
    held = [t for i in range(LIMIT + 3) if await store.get_quote(t := f"T{i}") is not None]
    if isinstance(store, MemoryStore):
        # The least recently published went: T1, T2, T3 (T0 came back last).
        assert held == ["T0", "T4", "T5", "T6", "T7"]
        assert len(store._quotes) == LIMIT and len(store._seq) <= LIMIT + 1
    else:
        assert held == [f"T{i}" for i in range(LIMIT + 3)]


async def test_a_forgotten_tickers_next_seq_starts_above_its_old_one(
    store: SharedStore,
) -> None:
    seqs = [await publish(store, "BACK") for _ in range(40)]
    assert seqs == list(range(1, 41))
    for i in range(LIMIT * 3):  # enough others to push BACK out of a limited store
        for _ in range(i % 3 + 1):
            await publish(store, f"O{i}")
    if isinstance(store, MemoryStore):
        assert await store.get_quote("BACK") is None  # forgotten indeed
    again = await publish(store, "BACK")
    assert again > 40, "a returning ticker must never repeat a seq it had"
    # Every ticker forgotten raises the floor for all: none starts below any seq seen.
    fresh = await publish(store, "NEWCOMER")
    assert fresh >= 1
    if isinstance(store, MemoryStore):
        assert fresh > 40


async def test_raise_seq_is_a_floor_for_the_ticker(store: SharedStore) -> None:
    assert await store.raise_seq("FLOOR", 100) == 101
    assert await store.next_seq("FLOOR") == 102
    assert await store.raise_seq("FLOOR", 50) == 103  # never down


async def test_bar_checkpoints_follow_their_rules_and_go_with_their_ticker(
    store: SharedStore,
) -> None:
    assert await store.get_bars("CP", "1m") is None
    assert await store.put_bars("CP", "1m", "e1", 10, "ten", 60, create=11)
    # Another process starting at seq 11 can continue from 10: no second creation.
    assert not await store.put_bars("CP", "1m", "e1", 12, "twelve", 60, create=11)
    assert await store.get_bars("CP", "1m") == ("e1", "ten")
    assert not await store.put_bars("CP", "1m", "e1", 9, "nine", 60, create=None)  # older
    assert await store.put_bars("CP", "1m", "e1", 20, "twenty", 60, create=None)
    assert await store.put_bars("CP", "1m", "e2", 1, "new epoch", 60, create=None)
    assert await store.get_bars("CP", "1m") == ("e2", "new epoch")
    if isinstance(store, MemoryStore):
        for i in range(LIMIT + 1):
            await store.put_bars(f"X{i}", "1m", "e2", 1, "x", 60, create=None)
        assert await store.get_bars("CP", "1m") is None  # its ticker was pushed out
