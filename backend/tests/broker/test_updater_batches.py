"""The updater on a real Redis, and on a Redis Cluster, publishes in batches
(publish_queue.py): a burst from the source goes out whole, each ticker's in order, with
consecutive `seq` per ticker, and a lost counter never makes `seq` go back."""

from __future__ import annotations

import asyncio
import json

import pytest

from stockfeed.config import Settings
from stockfeed.models import Tick
from stockfeed.services import build_broker_and_store
from stockfeed.sources.sim import SimSource
from stockfeed.updater import Updater

pytestmark = pytest.mark.process

TICKERS = [f"UB{i}" for i in range(40)]


@pytest.fixture(params=["redis", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


async def test_a_burst_goes_out_in_order_with_consecutive_seq(url: str) -> None:
    broker, store = build_broker_and_store(Settings(broker=url))
    assert store.pipelined
    await broker.start()
    for _ in range(250):  # a cluster's shards connected: each subscribe below confirmed
        if broker.state == "connected":
            break
        await asyncio.sleep(0.02)
    got: list[dict[str, object]] = []
    broker.set_handler(lambda t, m: got.append(json.loads(m)))
    for ticker in TICKERS:
        await broker.subscribe(ticker)
    updater = Updater(
        source=SimSource(seed=1, market_hours=False),
        requested_source="sim",
        broker=broker,
        store=store,
        watchlist=TICKERS,
        quote_ttl=60.0,
        leader_ttl=5.0,
        owner="test",
    )
    updater.is_leader = True
    updater._lease_until = float("inf")  # as if it held the lock
    # UB0's counter was lost (a Redis flush): its last seq was 50 before.
    updater._last_seq["UB0"] = 50
    try:
        burst = [Tick(TICKERS[i % len(TICKERS)], 100.0 + i) for i in range(2000)]
        for tick in burst:
            await updater.publish(tick)  # queued: returns before the round trips
        assert updater.published < len(burst)
        for _ in range(200):
            if len(got) >= len(burst) and updater.published == len(burst):
                break
            await asyncio.sleep(0.02)
        assert updater.published == len(burst) and updater.failed_publishes == 0
        prices = [(m["ticker"], m["data"]["price"]) for m in got]  # type: ignore[index]
        for ticker in TICKERS:
            assert [p for p in prices if p[0] == ticker] == [
                (t.ticker, t.price) for t in burst if t.ticker == ticker
            ]
        if broker.mode != "cluster":  # one connection: the order across tickers too
            assert prices == [(t.ticker, t.price) for t in burst]
        for ticker in TICKERS:
            seqs = [m["seq"] for m in got if m["ticker"] == ticker]
            first = 51 if ticker == "UB0" else 1
            assert seqs == list(range(first, first + 50)), ticker
        quote = await store.get_quote("UB7")
        assert quote is not None and json.loads(quote.raw)["seq"] == 50
    finally:
        await broker.close()
        await store.close()
