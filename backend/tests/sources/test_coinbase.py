"""The Coinbase plugin against the fake Coinbase over a real socket, in this process: what
it emits, and how it lives through closes, shutdowns, 429 storms, errors, counter gaps
and a mute socket."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest

from stockfeed.client.backoff import Backoff
from stockfeed.market_hours import MarketClock
from stockfeed.sources.base import Provenance
from stockfeed.sources.events import Event, Gap, Quote, SourceState, Summary, Trade
from stockfeed.sources.vendors.coinbase import CoinbaseSource
from tests.sources.vendor_fakes.base import eventually
from tests.sources.vendor_fakes.coinbase import FakeCoinbase

CLOCK = MarketClock()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Provenance, Event]] = []

    async def __call__(self, provenance: Provenance, event: Event) -> None:
        self.events.append((provenance, event))

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, kind)]

    def states(self) -> list[SourceState]:
        return self.of(SourceState)


@asynccontextmanager
async def running(
    fake: FakeCoinbase,
    wanted: Callable[[], frozenset[str]],
    *,
    mute_after: float = 60.0,
    backoff: Backoff | None = None,
) -> AsyncIterator[tuple[CoinbaseSource, Recorder]]:
    source = CoinbaseSource(
        url=fake.ws_url, rest_url=fake.http_url, clock=CLOCK, mute_after=mute_after
    )
    conn = source.connections[0]
    conn.check_interval = 0.05
    conn.backoff = backoff or Backoff(initial=0.05, maximum=0.2, rng=random.Random(1))
    recorder = Recorder()
    task = asyncio.create_task(source.run(wanted, recorder))
    try:
        yield source, recorder
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(10):  # a source that does not stop fails here
                await task
        await source.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeCoinbase]:
    vendor = await FakeCoinbase(heartbeat_interval=0.1).start()
    yield vendor
    await vendor.stop()


async def test_trades_quotes_and_the_24h_volume_arrive_exact(fake: FakeCoinbase) -> None:
    async with running(fake, lambda: frozenset({"BTC-USD", "ETH-USD"})) as (_, rec):
        await eventually(lambda: fake.subscribed() == {"BTC-USD", "ETH-USD"})
        sent = await fake.trade("BTC-USD", "21932.98", "0.20269406", side="SELL")
        await eventually(lambda: rec.of(Trade))
        trade = rec.of(Trade)[0]
        assert trade.ticker == "BTC-USD"
        assert trade.price == Decimal("21932.98") and trade.size == Decimal("0.20269406")
        assert trade.ts_ns == sent.ns, "the trade's own time, to the nanosecond"
        assert trade.taker_side == "sell" and trade.trade_id == sent.trade_id
        await eventually(lambda: rec.of(Quote) and rec.of(Summary))
        quote = rec.of(Quote)[-1]
        assert (quote.bid, quote.ask) == (Decimal("21932.97"), Decimal("21932.99"))
        assert rec.of(Summary)[-1].volume_24h == Decimal("0.20269406")
        assert rec.of(Summary)[-1].day_volume is None, "24 h is not a day"
        provenance = rec.events[-1][0]
        assert provenance == Provenance("coinbase", None, 0)
    # One subscribe per channel, heartbeats first (keeps a quiet socket open).
    kinds = [(m["type"], m["channel"]) for m in fake.received]
    assert kinds[0] == ("subscribe", "heartbeats")
    assert {("subscribe", "ticker"), ("subscribe", "market_trades")} <= set(kinds)
    assert all("jwt" not in m for m in fake.received), "keyless: no jwt is sent"


@pytest.mark.parametrize("shape", ["prose", "asyncapi"])
async def test_a_heartbeat_counter_jump_is_reported_as_a_gap(shape: str) -> None:
    fake = await FakeCoinbase(heartbeat_interval=0.05, heartbeat_shape=shape).start()  # type: ignore[arg-type]
    try:
        async with running(fake, lambda: frozenset({"BTC-USD"})) as (_, rec):
            await eventually(lambda: fake.subscribed() == {"BTC-USD"})
            await asyncio.sleep(0.2)  # a few heartbeats in order: no gap
            assert not rec.of(Gap)
            fake.skip_heartbeats(4)
            await eventually(lambda: rec.of(Gap))
            gap = rec.of(Gap)[0]
            assert gap.tickers == frozenset({"BTC-USD"}) and "4 missed" in gap.reason
            assert gap.until_ns > gap.since_ns
    finally:
        await fake.stop()


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1006])
async def test_any_close_is_a_reconnect_with_a_full_resubscribe_and_a_gap(
    fake: FakeCoinbase, code: int
) -> None:
    wanted = frozenset({"BTC-USD", "ETH-USD", "SOL-USD"})
    async with running(fake, lambda: wanted) as (source, rec):
        await eventually(lambda: fake.subscribed() == wanted)
        await fake.trade("BTC-USD", "100.5")
        await eventually(lambda: rec.of(Trade))
        await fake.close_all(code, "bye")  # a clean close too: not the end of the feed
        await eventually(lambda: fake.connections == 2 and fake.subscribed() == wanted)
        await fake.trade("ETH-USD", "7.25")
        await eventually(lambda: rec.of(Gap))
        gap = rec.of(Gap)[0]
        assert gap.tickers == wanted
        assert str(code) in gap.reason or code == 1006
        assert source.connections[0].state == "open"
    resubscribes = [
        m for m in fake.received if m["type"] == "subscribe" and m["channel"] == "market_trades"
    ]
    assert [set(m["product_ids"]) for m in resubscribes] == [set(wanted), set(wanted)]
    assert fake.max_open == 1, "never two sockets at once"


async def test_a_server_shutdown_is_ridden_out_and_nothing_is_published_twice(
    fake: FakeCoinbase,
) -> None:
    async with running(fake, lambda: frozenset({"BTC-USD"})) as (source, rec):
        await eventually(lambda: fake.subscribed() == {"BTC-USD"})
        first = await fake.trade("BTC-USD", "101")
        await eventually(lambda: len(rec.of(Trade)) == 1)
        port = fake.port
        await fake.stop()  # the vendor restarts a server: 1001, then nothing answers
        await eventually(lambda: source.connections[0].attempts >= 3)
        await fake.start(port)
        await eventually(lambda: fake.subscribed() == {"BTC-USD"})
        second = await fake.trade("BTC-USD", "102")
        await eventually(lambda: len(rec.of(Trade)) == 2)
        # The reconnect's snapshot lists the first trade again: not published twice.
        assert [t.trade_id for t in rec.of(Trade)] == [first.trade_id, second.trade_id]
        assert rec.of(Gap), "the outage is reported"


async def test_a_429_storm_meets_growing_jittered_waits_on_one_socket(fake: FakeCoinbase) -> None:
    fake.refuse_next(429, count=5)
    backoff = Backoff(initial=0.05, maximum=0.4, rng=random.Random(7))
    expected = Backoff(initial=0.05, maximum=0.4, rng=random.Random(7))
    async with running(fake, lambda: frozenset({"BTC-USD"}), backoff=backoff) as (source, rec):
        await eventually(lambda: fake.subscribed() == {"BTC-USD"})
        conn = source.connections[0]
        assert conn.delays == [round(expected.next_delay(), 3) for _ in range(5)]
        assert conn.delays[-1] >= 0.2 and max(conn.delays) <= 0.4, "capped"
        assert fake.upgrades == 6 and fake.connections == 1 and fake.max_open == 1
        assert any("HTTP 429" in (s.message or "") for s in rec.states())


async def test_retry_after_is_honoured(fake: FakeCoinbase) -> None:
    fake.refuse_next(429, count=1, Retry_After="0.5")
    async with running(fake, lambda: frozenset({"BTC-USD"})) as (source, _):
        await eventually(lambda: fake.connections == 1)
        assert source.connections[0].delays[0] >= 0.5


async def test_a_refused_upgrade_is_fatal_and_said_once(fake: FakeCoinbase) -> None:
    fake.refuse_next(403, count=1)
    async with running(fake, lambda: frozenset({"BTC-USD"})) as (source, rec):
        await eventually(lambda: any(s.fatal for s in rec.states()))
        fatal = next(s for s in rec.states() if s.fatal)
        assert "HTTP 403" in (fatal.fatal or "")
        await asyncio.sleep(0.3)
        assert fake.upgrades == 1, "a fatal error is not retried"
        assert source.connections[0].state == "failed"


async def test_an_error_frame_reconnects(fake: FakeCoinbase) -> None:
    async with running(fake, lambda: frozenset({"BTC-USD"})) as (source, _rec):
        await eventually(lambda: fake.subscribed() == {"BTC-USD"})
        await fake.send_error("internal error")
        await eventually(lambda: fake.connections == 2 and fake.subscribed() == {"BTC-USD"})
        assert "internal error" in (source.connections[0].last_error or "")


async def test_a_refused_product_is_left_out_and_the_rest_goes_on(fake: FakeCoinbase) -> None:
    wanted = frozenset({"BTC-USD", "DOGE-USD"})  # the fake lists no DOGE-USD
    async with running(fake, lambda: wanted) as (_source, rec):
        await eventually(lambda: any("DOGE-USD" in s.limited for s in rec.states()))
        await eventually(lambda: fake.subscribed() == {"BTC-USD"})
        await fake.trade("BTC-USD", "99")
        await eventually(lambda: rec.of(Trade))
        assert fake.connections == 1, "a refusal of one product is not a reconnect"
        limited = [s for s in rec.states() if s.limited][-1]
        assert "coinbase refused" in (limited.message or "") or limited.limited


async def test_a_mute_socket_is_replaced_and_its_tickers_are_stale_meanwhile(
    fake: FakeCoinbase,
) -> None:
    # Crypto is always open: silence is staleness at any hour.
    async with running(fake, lambda: frozenset({"BTC-USD"}), mute_after=0.6) as (source, rec):
        await eventually(lambda: fake.subscribed() == {"BTC-USD"})
        fake.muted = True  # heartbeats go on, market data does not
        await eventually(lambda: any("BTC-USD" in s.stale for s in rec.states()))
        await eventually(lambda: fake.connections >= 2, timeout=10)
        assert "mute socket" in (source.connections[0].last_error or "")
        fake.muted = False
        await fake.trade("BTC-USD", "98")
        await eventually(lambda: not rec.states()[-1].stale)


async def test_nothing_wanted_holds_no_socket(fake: FakeCoinbase) -> None:
    wanted: set[str] = set()
    async with running(fake, lambda: frozenset(wanted)) as (source, _):
        await asyncio.sleep(0.3)
        assert fake.upgrades == 0
        wanted.add("ETH-USD")
        await eventually(lambda: fake.subscribed() == {"ETH-USD"})
        wanted.clear()
        await eventually(lambda: fake.connections == 1 and not fake.sockets)
        assert source.connections[0].state == "idle"


async def test_history_directory_and_previous_close_over_rest(fake: FakeCoinbase) -> None:
    source = CoinbaseSource(url=fake.ws_url, rest_url=fake.http_url, clock=CLOCK)
    try:
        now = time.time_ns()
        minute = now // 60_000_000_000 * 60_000_000_000 - 120_000_000_000
        for i, price in enumerate(["100.10", "101.25", "99.90", "100.55"]):
            await fake.trade("BTC-USD", price, "0.5", at_ns=minute + i * 10_000_000_000)
        bars = await source.history("BTC-USD", "1m", "1d")
        bar = next(b for b in bars if b.time == minute // 10**9)
        assert (bar.open, bar.high, bar.low, bar.close) == (100.10, 101.25, 99.90, 100.55)
        assert bar.volume == 2, "0.5 x 4, summed exactly"
        found = await source.search_symbols("bitc", 5)
        assert [(s.symbol, s.name, s.type, s.price_decimals) for s in found] == [
            ("BTC-USD", "Bitcoin USD", "crypto", 2)
        ]
        assert await source.can_quote("ETH-USD") is True
        assert await source.can_quote("DOGE-USD") is False
        assert await source.can_quote("AAPL") is False, "not crypto: not Coinbase's"
        yesterday = (now // 86_400_000_000_000 - 1) * 86_400_000_000_000
        await fake.trade("BTC-USD", "95.5", at_ns=yesterday + 3600 * 10**9)
        await fake.trade("BTC-USD", "96.75", at_ns=yesterday + 7200 * 10**9)
        assert await asyncio.to_thread(source.fetch_prev_close, "BTC-USD") == Decimal("96.75")
        with pytest.raises(Exception, match="no product"):
            await source.history("DOGE-USD", "1m", "1d")
    finally:
        await source.close()
