"""The Massive plugin against the fake Massive over a real socket, in this process: the
handshake (both documented connect statuses), every event kind with its units (ms times,
round-lot quote sizes, the day's accumulated volume and official open), the delayed feed,
auth_failed (fatal), max_connections (the older connection evicted, waiting its turn),
closes and disconnect statuses, a mute socket, REST with the key in a header."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from stockfeed.client.backoff import Backoff
from stockfeed.config import Settings
from stockfeed.market_hours import MarketClock
from stockfeed.sources.base import Provenance
from stockfeed.sources.events import Event, Gap, Quote, SourceState, Summary, Trade, VendorBar
from stockfeed.sources.vendors import massive
from stockfeed.sources.vendors.massive import MassiveSource
from tests.sources.vendor_fakes.base import eventually
from tests.sources.vendor_fakes.massive import MAX_CONNECTIONS, FakeMassive

KEY = "MASSIVEKEY"
OPEN = MarketClock(always_open=True)
NEW_YORK = ZoneInfo("America/New_York")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Provenance, Event]] = []

    async def __call__(self, provenance: Provenance, event: Event) -> None:
        self.events.append((provenance, event))

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, kind)]

    def states(self) -> list[SourceState]:
        return self.of(SourceState)


def make(
    fake: FakeMassive,
    *,
    key: str = KEY,
    feed: massive.Feed = "realtime",
    clock: MarketClock = OPEN,
    mute_after: float = 60.0,
) -> MassiveSource:
    path = "/stocks" if feed == "realtime" else "/delayed/stocks"
    source = MassiveSource(
        key=key,
        feed=feed,
        url=f"{fake.ws_url}{path}",
        rest_url=fake.http_url,
        clock=clock,
        mute_after=mute_after,
    )
    conn = source.connections[0]
    conn.check_interval = 0.05
    conn.backoff = Backoff(initial=0.05, maximum=0.2, rng=random.Random(5))
    return source


@asynccontextmanager
async def running(
    source: MassiveSource, wanted: Callable[[], frozenset[str]]
) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    task = asyncio.create_task(source.run(wanted, recorder))
    try:
        yield recorder
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(10):  # a source that does not stop fails here
                await task
        await source.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeMassive]:
    vendor = await FakeMassive().start()
    yield vendor
    await vendor.stop()


@pytest.mark.parametrize("connect_status", ["connected", "success"])
async def test_every_event_kind_arrives_exact_in_its_units(connect_status: str) -> None:
    fake = await FakeMassive(connect_status=connect_status).start()  # type: ignore[arg-type]
    try:
        source = make(fake)
        async with running(source, lambda: frozenset({"AAPL", "BRK-B"})) as rec:
            await eventually(lambda: fake.subscribed("T") == {"AAPL", "BRK.B"})
            assert fake.subscribed("Q") == fake.subscribed("A") == fake.subscribed("AM")
            minute = (time.time_ns() // 60_000_000_000 - 2) * 60
            await fake.trade("AAPL", "114.125", "100", at_ns=minute * 10**9 + 784_000_000)
            await fake.trade("AAPL", "114.5", "250", at_ns=(minute + 30) * 10**9)
            await fake.trade("BRK.B", "412.01", "7", at_ns=(minute + 31) * 10**9)
            await fake.quote("AAPL", "114.12", 2, "114.13", 5, at_ns=(minute + 31) * 10**9)
            second = await fake.second_agg("AAPL", minute + 30)
            bar = await fake.minute_agg("AAPL", minute)
            await eventually(lambda: len(rec.of(Trade)) == 3 and rec.of(VendorBar))
    finally:
        await fake.stop()
    assert second is not None and bar is not None
    first = rec.of(Trade)[0]
    assert (first.ticker, first.price, first.size) == ("AAPL", Decimal("114.125"), Decimal(100))
    assert first.ts_ns == minute * 10**9 + 784_000_000, "`t` is ms: to ns exactly"
    assert first.conditions == ("0", "12") and first.venue == "4"
    assert rec.of(Trade)[2].ticker == "BRK-B", "Massive's BRK.B is stockfeed's BRK-B"
    quote = rec.of(Quote)[0]
    assert (quote.bid, quote.ask) == (Decimal("114.12"), Decimal("114.13"))
    assert (quote.bid_size, quote.ask_size) == (200, 500), "round lots of 100 shares"
    day = [s for s in rec.of(Summary) if s.day_volume is not None]
    # A: av is the day's accumulated volume (350 by then), op the day's official open.
    assert day[0].day_volume == Decimal(350) and day[0].open == Decimal("114.125")
    assert day[0].ts_ns == (minute + 31) * 10**9 - 1_000_000, "at the window's end"
    (vendor_bar,) = rec.of(VendorBar)
    assert vendor_bar.interval == "1m" and vendor_bar.final
    assert vendor_bar.start_ns == minute * 10**9
    assert (vendor_bar.open, vendor_bar.high, vendor_bar.close) == (
        Decimal("114.125"),
        Decimal("114.5"),
        Decimal("114.5"),
    )
    assert vendor_bar.volume == Decimal(350), "v: the window's volume"
    assert {p for p, e in rec.events if isinstance(e, Trade)} == {
        Provenance("massive", "realtime", 0)
    }
    assert fake.auth_messages == [{"action": "auth", "params": KEY}]
    subscribe = next(m for m in fake.received if m.get("action") == "subscribe")
    assert set(subscribe["params"].split(",")) == {
        f"{c}.{s}" for c in ("T", "Q", "A", "AM") for s in ("AAPL", "BRK.B")
    }


async def test_the_delayed_feed_says_so_and_asks_no_quotes(fake: FakeMassive) -> None:
    source = make(fake, feed="delayed")
    assert source.provenance == Provenance("massive", "delayed", 900)
    assert "quote" not in source.capabilities.event_kinds
    async with running(source, lambda: frozenset({"MSFT"})) as rec:
        await eventually(lambda: fake.subscribed("T", "delayed") == {"MSFT"})
        await fake.trade("MSFT", "400.5")
        await eventually(lambda: rec.of(Trade))
    assert fake.subscribed("Q") == set()
    assert not any("Q." in m.get("params", "") for m in fake.received)
    assert rec.events[-1][0] == Provenance("massive", "delayed", 900)


async def test_auth_failed_is_fatal_said_once_and_the_key_never_shown(
    fake: FakeMassive, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source = make(fake, key="not-the-key-1234")
    async with running(source, lambda: frozenset({"AAPL"})) as rec:
        await eventually(lambda: any(s.fatal for s in rec.states()))
        await asyncio.sleep(0.3)
    fatal = next(s for s in rec.states() if s.fatal)
    assert "authentication failed" in (fatal.fatal or "")
    assert "MASSIVE_API_KEY" in (fatal.fatal or "")
    assert fake.upgrades == 1, "a refused key is not tried again"
    assert source.connections[0].state == "failed"
    shown = caplog.text + repr(source.describe_state()) + repr(rec.events)
    assert "not-the-key-1234" not in shown


async def test_a_second_holder_evicts_the_older_which_waits_its_turn(fake: FakeMassive) -> None:
    # Massive keeps the NEWER connection of a key and tells the older `max_connections`.
    # The older one is a capacity problem, not a fatal one: it waits (never two sockets of
    # its own, never an immediate fight for the key).
    older, newer = make(fake), make(fake)
    older.connections[0].capacity_wait = 1.5
    async with running(older, lambda: frozenset({"AAPL"})) as old_rec:
        await eventually(lambda: len(fake.authenticated()) == 1)
        async with running(newer, lambda: frozenset({"AAPL"})):
            await eventually(lambda: fake.evicted == 1)
            await eventually(
                lambda: any(
                    MAX_CONNECTIONS["message"] in (s.message or "") for s in old_rec.states()
                )
            )
            conn = older.connections[0]
            assert conn.state == "waiting" and not conn.fatal
            await asyncio.sleep(0.5)
            assert fake.connections == 2, "the evicted one waits: no fight for the key"
            assert len(fake.authenticated()) == 1
        # The newer one went away: the older one's turn comes again.
        await eventually(lambda: older.connections[0].state == "open", timeout=10)
        assert fake.evicted == 1


@pytest.mark.parametrize("code", [1000, 1001, 1006])
async def test_any_close_is_a_reconnect_with_a_full_resubscribe_and_a_gap(
    fake: FakeMassive, code: int
) -> None:
    # The official client returns on a clean close (ConnectionClosedOK): stockfeed does not.
    wanted = frozenset({"AAPL", "MSFT"})
    source = make(fake)
    async with running(source, lambda: wanted) as rec:
        await eventually(lambda: fake.subscribed("T") == {"AAPL", "MSFT"})
        await fake.trade("AAPL", "101.5")
        await eventually(lambda: rec.of(Trade))
        await fake.close_all(code, "restart")
        await eventually(lambda: fake.connections == 2 and fake.subscribed("T") == {"AAPL", "MSFT"})
        await fake.trade("MSFT", "402.25")
        await eventually(lambda: rec.of(Gap))
    assert rec.of(Gap)[0].tickers == wanted
    assert fake.max_open == 1


@pytest.mark.parametrize("status", ["force_disconnect", "slow_consumer"])
async def test_disconnect_statuses_reconnect(fake: FakeMassive, status: str) -> None:
    source = make(fake)
    async with running(source, lambda: frozenset({"AAPL"})) as rec:
        await eventually(lambda: fake.subscribed("T") == {"AAPL"})
        await fake.status({"ev": "status", "status": status, "message": status}, close=1000)
        await eventually(lambda: fake.connections == 2 and fake.subscribed("T") == {"AAPL"})
    assert status in (source.connections[0].last_error or "")
    assert not any(s.fatal for s in rec.states())


async def test_a_mute_socket_is_replaced(fake: FakeMassive) -> None:
    source = make(fake, mute_after=0.4)  # the market always open: silence is staleness
    async with running(source, lambda: frozenset({"AAPL"})) as rec:
        await eventually(lambda: fake.subscribed("T") == {"AAPL"})
        await eventually(lambda: any("AAPL" in s.stale for s in rec.states()))
        await eventually(lambda: fake.connections >= 2, timeout=10)
        assert "mute socket" in (source.connections[0].last_error or "")
        await eventually(lambda: fake.subscribed("T") == {"AAPL"})
        await fake.trade("AAPL", "99.5")
        await eventually(lambda: not rec.states()[-1].stale)


async def test_history_directory_and_the_regular_previous_close(fake: FakeMassive) -> None:
    clock = MarketClock()
    source = make(fake, clock=clock)
    try:
        now = time.time()
        minute = int(now // 60 - 3) * 60
        for i, price in enumerate(["114.10", "114.90", "113.95", "114.40"]):
            await fake.trade("AAPL", price, "100", at_ns=(minute + i * 10) * 10**9)
        bars = await source.history("AAPL", "1m", "1d")
        bar = next(b for b in bars if b.time == minute)
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
            114.10,
            114.90,
            113.95,
            114.40,
            400,
        )
        # The session before the current one: its regular close (15:59) and an after-hours
        # print (17:30). The previous close is the regular one.
        today = clock.current_day("XNYS", now)
        assert today is not None
        before = clock.previous_day("XNYS", today)
        local = datetime.combine(before.date, datetime.min.time(), NEW_YORK)
        regular = int(local.replace(hour=15, minute=59).timestamp())
        after = int(local.replace(hour=17, minute=30).timestamp())
        await fake.trade("AAPL", "110.25", at_ns=regular * 10**9)
        await fake.trade("AAPL", "111.75", at_ns=after * 10**9)
        assert await asyncio.to_thread(source.fetch_prev_close, "AAPL") == Decimal("110.25")
        daily = await source.history("AAPL", "1d", "5d")
        assert any(b.close == 110.25 for b in daily), "the day bar closes at the regular close"
        found = await source.search_symbols("berkshire", 5)
        assert [(s.symbol, s.type, s.exchange) for s in found] == [("BRK-B", "equity", "XNYS")]
        assert [s.type for s in await source.search_symbols("SPY", 1)] == ["etf"]
        assert await source.can_quote("MSFT") is True
        assert await source.can_quote("BTC-USD") is False
        assert {a for a in fake.rest_auth} == {f"Bearer {KEY}"}, "the key in a header"
        assert all(KEY not in path for path in fake.rest_calls)
    finally:
        await source.close()


async def test_the_directory_follows_next_url(fake: FakeMassive) -> None:
    fake.tickers = [(f"T{i:03d}", f"Company {i}", "CS", "XNYS") for i in range(2500)]
    source = make(fake)
    try:
        infos = await asyncio.to_thread(source.fetch_directory)
    finally:
        await source.close()
    assert len(infos) == 2500 and infos[-1].symbol == "T2499"
    assert fake.rest_calls.count("/v3/reference/tickers") == 3


def test_the_settings_build_the_feed_and_refuse_a_missing_key() -> None:
    assert "MASSIVE_API_KEY" in (massive.check(Settings(source="massive")) or "")  # type: ignore[call-arg]
    keyed = Settings(source="massive", MASSIVE_API_KEY="mk-123", massive_feed="delayed")  # type: ignore[call-arg]
    source = massive.build(keyed, OPEN)
    assert source.provenance == Provenance("massive", "delayed", 900)
    assert source.dialect.url() == "wss://delayed.massive.com/stocks"
    assert "mk-123" not in repr(keyed)
    realtime = Settings(source="massive", MASSIVE_API_KEY="mk-123")  # type: ignore[call-arg]
    assert massive.build(realtime, OPEN).dialect.url() == "wss://socket.massive.com/stocks"
