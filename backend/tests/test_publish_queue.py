"""The updater's batches to a remote store (publish_queue.py), in-process: order kept,
batches of whatever queued meanwhile, bounded, dropped on a lost lock."""

from __future__ import annotations

import asyncio

import pytest

from stockfeed import publish_queue
from stockfeed.models import Tick
from stockfeed.publish_queue import PublishQueue


def ticks(n: int, tickers: int = 10_000) -> list[Tick]:
    return [Tick(f"T{i % tickers}", float(i)) for i in range(n)]


async def test_what_queues_in_one_turn_goes_in_batches_in_order() -> None:
    batches: list[list[Tick]] = []

    async def send(batch: list[Tick]) -> None:
        batches.append(batch)
        await asyncio.sleep(0.001)  # a round trip

    queue = PublishQueue(send)
    sent = ticks(1200)
    for tick in sent:
        await queue.put(tick)  # never waits below MAX_QUEUED
    for _ in range(100):
        if not len(queue) and sum(map(len, batches)) == len(sent):
            break
        await asyncio.sleep(0.01)
    assert [t for batch in batches for t in batch] == sent
    assert [len(b) for b in batches] == [500, 500, 200]  # MAX_BATCH each
    await queue.close()


async def test_a_batch_holds_each_ticker_once_so_no_stored_quote_runs_ahead() -> None:
    batches: list[list[Tick]] = []

    async def send(batch: list[Tick]) -> None:
        batches.append(batch)

    queue = PublishQueue(send)
    sent = [*ticks(20, tickers=3), Tick("A", 1.0), Tick("B", 1.0), Tick("A", 2.0)]
    for tick in sent:
        await queue.put(tick)
    for _ in range(100):
        if sum(map(len, batches)) == len(sent):
            break
        await asyncio.sleep(0.01)
    assert [t for batch in batches for t in batch] == sent  # still first in, first out
    for batch in batches:
        assert len({t.ticker for t in batch}) == len(batch)
    assert [len(b) for b in batches] == [3] * 6 + [4, 1]  # T0 T1 T2 ..., T0 T1 A B, A
    await queue.close()


async def test_a_full_queue_makes_the_source_wait_until_the_sender_catches_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(publish_queue, "MAX_QUEUED", 10)
    release = asyncio.Event()
    sent: list[Tick] = []

    async def send(batch: list[Tick]) -> None:
        await release.wait()  # the store is away
        sent.extend(batch)

    queue = PublishQueue(send)
    for tick in ticks(10):
        await queue.put(tick)
    await asyncio.sleep(0)  # the sender takes the first batch (all 10) and waits
    for tick in ticks(10):
        await queue.put(tick)
    blocked = asyncio.create_task(queue.put(Tick("LAST", 1.0)))
    await asyncio.sleep(0.05)
    assert not blocked.done() and len(queue) == 10  # held: at most MAX_QUEUED wait here
    release.set()
    await asyncio.wait_for(blocked, 2)
    for _ in range(100):
        if len(sent) == 21:
            break
        await asyncio.sleep(0.01)
    assert sent[-1].ticker == "LAST"
    await queue.close()


async def test_a_lost_lock_drops_what_is_queued() -> None:
    sent: list[Tick] = []
    gate = asyncio.Event()

    async def send(batch: list[Tick]) -> None:
        await gate.wait()
        sent.extend(batch)

    queue = PublishQueue(send)
    for tick in ticks(3):
        await queue.put(tick)
    await asyncio.sleep(0)  # the first batch is out
    for tick in ticks(5):
        await queue.put(tick)
    queue.drop()
    gate.set()
    await asyncio.sleep(0.05)
    assert len(sent) == 3 and len(queue) == 0
    await queue.close()
