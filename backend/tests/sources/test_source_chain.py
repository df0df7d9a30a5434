"""A chain of sources (sources/failover.py), in this process: the real Alpaca and Coinbase
plugins against their fakes over real sockets, the chain choosing per ticker, feeding the
real updater (memory broker and store) so that `seq` and provenance are the wire's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from stockfeed.broker.memory import MemoryBroker
from stockfeed.client.backoff import Backoff
from stockfeed.market_hours import MarketClock
from stockfeed.shared.memory import MemoryStore
from stockfeed.sources.failover import FailoverSource
from stockfeed.sources.vendors.alpaca import AlpacaSource
from stockfeed.sources.vendors.coinbase import CoinbaseSource
from stockfeed.updater import Updater
from tests.sources.vendor_fakes.alpaca import FakeAlpaca
from tests.sources.vendor_fakes.base import eventually
from tests.sources.vendor_fakes.coinbase import FakeCoinbase

CLOCK = MarketClock()  # crypto: open at every hour


def alpaca_source(
    fake: FakeAlpaca, secret: str = "s3cret", mute_after: float = 0.8
) -> AlpacaSource:
    source = AlpacaSource(
        key_id="PKTEST",
        secret=secret,
        feed="iex",
        url=f"{fake.ws_url}/v2/iex",
        crypto_url=f"{fake.ws_url}/v1beta3/crypto/us",
        rest_url=fake.http_url,
        trading_urls=(fake.http_url,),
        symbol_limit=None,
        clock=CLOCK,
        mute_after=mute_after,
    )
    for conn in source.connections:
        conn.check_interval = 0.05
        conn.backoff = Backoff(initial=0.05, maximum=0.3, rng=random.Random(5))
    return source


def coinbase_source(fake: FakeCoinbase) -> CoinbaseSource:
    source = CoinbaseSource(url=fake.ws_url, rest_url=fake.http_url, clock=CLOCK, mute_after=5)
    source.connections[0].check_interval = 0.05
    return source


class Published:
    """What the updater published on the (memory) broker, decoded."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def __call__(self, raw: str) -> None:
        self.updates.append(json.loads(raw))

    def sources(self) -> list[str]:
        return [u["data"]["source"] for u in self.updates]


@asynccontextmanager
async def chain_updater(
    chain: FailoverSource, tickers: list[str]
) -> AsyncIterator[tuple[Updater, Published]]:
    broker = MemoryBroker()
    store = MemoryStore()
    await broker.start()
    published = Published()
    broker.set_handler(lambda _, message: published(message))
    for ticker in tickers:
        await broker.subscribe(ticker)
    updater = Updater(
        source=chain,
        requested_source="alpaca,coinbase",
        broker=broker,
        store=store,
        watchlist=tickers,
        quote_ttl=60,
        leader_ttl=5,
        owner="test",
    )
    task = asyncio.create_task(updater.run())
    try:
        yield updater, published
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await chain.close()
        await broker.close()


@pytest.fixture
async def vendors() -> AsyncIterator[tuple[FakeAlpaca, FakeCoinbase]]:
    alpaca = await FakeAlpaca().start()
    coinbase = await FakeCoinbase(heartbeat_interval=0.2).start()
    yield alpaca, coinbase
    await coinbase.stop_market()
    await alpaca.stop()
    await coinbase.stop()


async def pump(alpaca: FakeAlpaca, coinbase: FakeCoinbase, stop: asyncio.Event) -> None:
    """Both vendors trade BTC, each at its own price level, until `stop`."""
    i = 0
    while not stop.is_set():
        i += 1
        if alpaca.server is not None:
            await alpaca.trade("BTC/USD", f"{50000 + i % 50}.5", "0.01")
        await coinbase.trade("BTC-USD", f"{60000 + i % 50}.25", "0.02")
        await asyncio.sleep(0.03)


async def test_a_dead_first_source_fails_over_and_comes_back_with_seq_unbroken(
    vendors: tuple[FakeAlpaca, FakeCoinbase],
) -> None:
    alpaca, coinbase = vendors
    chain = FailoverSource(
        [alpaca_source(alpaca), coinbase_source(coinbase)], clock=CLOCK, fail_back_after=0.5
    )
    stop = asyncio.Event()
    trading = asyncio.create_task(pump(alpaca, coinbase, stop))
    try:
        async with chain_updater(chain, ["BTC-USD"]) as (updater, published):
            await eventually(lambda: published.sources()[-3:] == ["alpaca"] * 3)
            assert coinbase.subscribed() == set(), "the second source idles while the first is fine"
            port = alpaca.port
            await alpaca.stop()  # killed mid-session
            await eventually(lambda: published.sources()[-3:] == ["coinbase"] * 3, timeout=20)
            assert chain.describe_state()["failed_over"] == {"BTC-USD": "coinbase"}
            await alpaca.start(port)  # restored
            await eventually(lambda: published.sources()[-3:] == ["alpaca"] * 3, timeout=20)
            await eventually(lambda: coinbase.subscribed() == set(), timeout=10)
            status = updater.status()
    finally:
        stop.set()
        await trading
    seqs = [u["seq"] for u in published.updates]
    assert seqs == list(range(1, len(seqs) + 1)), "one unbroken series across both sources"
    runs = [
        s for i, s in enumerate(published.sources()) if i == 0 or published.sources()[i - 1] != s
    ]
    assert runs == ["alpaca", "coinbase", "alpaca"]
    prices = {u["data"]["source"]: u["data"]["price"] for u in published.updates}
    assert prices["alpaca"] < 51000 < prices["coinbase"], "each price is its source's"
    feeds = {(u["data"]["source"], u["data"]["feed"]) for u in published.updates}
    assert feeds == {("alpaca", "us"), ("coinbase", None)}
    assert status["chain"] == ["alpaca", "coinbase"] and status["switches"] == 2
    assert "gaps" in status, "the first source's outage is reported"


async def test_a_fatal_first_source_fails_over_at_once_and_stays_over(
    vendors: tuple[FakeAlpaca, FakeCoinbase],
) -> None:
    alpaca, coinbase = vendors
    chain = FailoverSource(
        [alpaca_source(alpaca, secret="wrong"), coinbase_source(coinbase)],
        clock=CLOCK,
        fail_back_after=0.2,
    )
    stop = asyncio.Event()
    trading = asyncio.create_task(pump(alpaca, coinbase, stop))
    try:
        async with chain_updater(chain, ["BTC-USD"]) as (updater, published):
            await eventually(lambda: published.sources()[-3:] == ["coinbase"] * 3, timeout=20)
            await asyncio.sleep(0.5)
            assert set(published.sources()) == {"coinbase"}
            assert alpaca.upgrades == 1, "a bad key is not retried"
            vendor_states = updater.status()["vendors"]
            assert "402" in str(vendor_states["alpaca"]["fatal"])  # type: ignore[index]
            assert updater.disabled is None, "the chain goes on"
    finally:
        stop.set()
        await trading


async def test_tickers_go_to_the_source_that_quotes_their_asset_class(
    vendors: tuple[FakeAlpaca, FakeCoinbase],
) -> None:
    # coinbase first, alpaca second: AAPL is not Coinbase's, so it is Alpaca's from the start.
    alpaca, coinbase = vendors
    chain = FailoverSource([coinbase_source(coinbase), alpaca_source(alpaca)], clock=CLOCK)
    async with chain_updater(chain, ["AAPL", "BTC-USD"]) as (_, published):
        await eventually(lambda: alpaca.subscribed("trades", "iex") == {"AAPL"})
        await eventually(lambda: coinbase.subscribed() == {"BTC-USD"})
        assert alpaca.subscribed("trades", "crypto") == set()
        await alpaca.trade("AAPL", "190.01")
        await coinbase.trade("BTC-USD", "60000.5")
        await eventually(lambda: len(published.updates) >= 2)
    by_ticker = {u["ticker"]: u["data"]["source"] for u in published.updates}
    assert by_ticker == {"AAPL": "alpaca", "BTC-USD": "coinbase"}
