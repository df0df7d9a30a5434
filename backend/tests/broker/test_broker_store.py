"""The broker/store contract, one suite run on every backend: memory, one Redis, a Redis
Cluster and Redis behind Sentinel (real servers; the topologies come from conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from stockfeed.broker import Broker
from stockfeed.config import Settings
from stockfeed.services import build_broker_and_store
from stockfeed.shared import SharedStore

T = TypeVar("T")

pytestmark = pytest.mark.process


BACKENDS = {
    "memory": None,
    "redis": "redis_url",
    "cluster": "cluster_url",
    "sentinel": "sentinel_url",
}


@pytest.fixture(params=list(BACKENDS))
def contract_url(request: pytest.FixtureRequest) -> str:
    """The backend's URL (its server made ready and empty by that fixture)."""
    fixture = BACKENDS[request.param]
    return "memory://" if fixture is None else str(request.getfixturevalue(fixture))


@pytest.fixture
async def pair(contract_url: str) -> AsyncIterator[tuple[Broker, SharedStore]]:
    broker, store = build_broker_and_store(Settings(broker=contract_url))
    await broker.start()
    for _ in range(100):
        if broker.state == "connected":
            break
        await asyncio.sleep(0.02)
    yield broker, store
    await broker.close()
    await store.close()


async def until_changed(read: Callable[[], Awaitable[T]], was: T, timeout: float = 10.0) -> T:
    """What `read` answers once it stops answering `was` (a TTL lapsing). Polled, so a busy
    machine is not a failure, and the TTLs are long enough to read before they lapse."""
    deadline = time.monotonic() + timeout
    while (now := await read()) == was:
        assert time.monotonic() < deadline, f"still {was!r} after {timeout} s"
        await asyncio.sleep(0.1)
    return now


async def test_publish_reaches_subscriber_in_order_and_unsubscribe_stops(
    pair: tuple[Broker, SharedStore],
) -> None:
    broker, _ = pair
    got: list[tuple[str, str]] = []
    broker.set_handler(lambda t, m: got.append((t, m if isinstance(m, str) else m.decode())))
    await broker.publish("BRKA", "before")  # nobody subscribed: not delivered
    await broker.subscribe("BRKA")
    await broker.subscribe("BRKA")  # idempotent: still one subscription
    for i in range(50):
        await broker.publish("BRKA", f"m{i}")
    await broker.publish("OTHER", "x")
    for _ in range(100):
        if len(got) >= 50:
            break
        await asyncio.sleep(0.02)
    assert got == [("BRKA", f"m{i}") for i in range(50)]
    await broker.unsubscribe("BRKA")
    await broker.publish("BRKA", "after")
    await asyncio.sleep(0.2)
    assert len(got) == 50
    assert broker.describe()["state"] == "connected"


async def test_seq_counts_and_never_goes_back(pair: tuple[Broker, SharedStore]) -> None:
    _, store = pair
    assert [await store.next_seq("SEQT") for _ in range(3)] == [1, 2, 3]
    assert await store.raise_seq("SEQT", 10) == 11
    assert await store.raise_seq("SEQT", 5) == 12
    assert await store.next_seq("SEQU") == 1


async def test_batches_count_publish_and_keep_in_order_as_one_by_one_does(
    pair: tuple[Broker, SharedStore], contract_url: str
) -> None:
    """next_seqs / put_quotes / publish_many (the updater's batches): the same as the
    calls one at a time, each ticker's in order, a ticker named twice counted twice."""
    broker, store = pair
    assert await store.next_seqs(["BAT1", "BAT2", "BAT1", "BAT1"]) == [1, 1, 2, 3]
    assert await store.next_seq("BAT2") == 2
    got: list[tuple[str, str]] = []
    broker.set_handler(lambda t, m: got.append((t, m if isinstance(m, str) else m.decode())))
    await broker.subscribe("BAT1")
    await broker.subscribe("BAT2")
    messages = [("BAT1" if i % 3 else "BAT2", f'{{"seq":{i}}}') for i in range(1, 31)]
    await store.put_quotes(messages, 60.0)
    await broker.publish_many(messages)
    for _ in range(100):
        if len(got) >= len(messages):
            break
        await asyncio.sleep(0.02)
    for ticker in ("BAT1", "BAT2"):
        assert [m for m in got if m[0] == ticker] == [m for m in messages if m[0] == ticker]
    if broker.mode != "cluster":
        # One connection to one server: the order across tickers is kept too. A cluster
        # sends each node its part at once (BAT1 and BAT2 live on different ones), and the
        # subscriber hears each node on its own connection.
        assert got == messages
    last = {ticker: raw for ticker, raw in messages}
    for ticker in ("BAT1", "BAT2"):
        quote = await store.get_quote(ticker)
        assert quote is not None and quote.raw == last[ticker]
        recent = await store.recent(ticker)  # the memory store keeps none (the hub does)
        assert recent[-1:] == ([] if contract_url == "memory://" else [last[ticker]])


async def test_quote_fresh_then_last_known(pair: tuple[Broker, SharedStore]) -> None:
    _, store = pair
    assert await store.get_quote("QT") is None
    await store.put_quote("QT", '{"a":1}', ttl=1.5)
    q = await store.get_quote("QT")
    assert q is not None and q.raw == '{"a":1}' and q.fresh
    q = await until_changed(lambda: store.get_quote("QT"), q)
    assert q is not None and q.raw == '{"a":1}' and not q.fresh


async def test_leader_lock_is_exclusive_and_lapses(
    pair: tuple[Broker, SharedStore], contract_url: str
) -> None:
    _, store = pair
    assert await store.try_lead("a", ttl=2)
    assert await store.try_lead("a", ttl=2)  # renew
    if contract_url == "memory://":
        return  # one process: always the leader, nothing to contend
    assert not await store.try_lead("b", ttl=2)
    assert await store.leader() == "a"
    assert await until_changed(lambda: store.try_lead("b", ttl=30), False) is True  # lapsed
    assert not await store.try_lead("a", ttl=2)
    await store.release_lead("a")  # not the owner: no effect
    assert await store.leader() == "b"
    await store.release_lead("b")
    assert await store.leader() is None


async def test_interest_expires(pair: tuple[Broker, SharedStore]) -> None:
    _, store = pair
    # TTLs long enough that a loaded CI machine reads before they lapse (0.3 s did not).
    await store.add_interest({"INTA", "INTB"}, ttl=1.5)
    await store.add_interest({"INTC"}, ttl=30)
    assert {"INTA", "INTB", "INTC"} <= await store.interest()
    interest = await until_changed(store.interest, {"INTA", "INTB", "INTC"})
    assert "INTC" in interest and "INTA" not in interest and "INTB" not in interest


async def test_status_roundtrip_and_ttl(pair: tuple[Broker, SharedStore]) -> None:
    _, store = pair
    await store.put_status('{"x":1}', ttl=1.5)
    assert await store.get_status() == '{"x":1}'
    assert await until_changed(store.get_status, '{"x":1}') is None
