"""The Alpaca plugin against the fake Alpaca over a real socket, in this process: the
handshake, every event kind, the documented errors in their three classes, the symbol
limit, the one connection per key, keys never shown."""

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
from stockfeed.market_hours import MarketClock, MarketSession
from stockfeed.sources.base import Provenance
from stockfeed.sources.events import (
    Event,
    Gap,
    Quote,
    SourceState,
    Status,
    Summary,
    Trade,
    VendorBar,
)
from stockfeed.sources.vendors import alpaca
from stockfeed.sources.vendors.alpaca import AlpacaSource
from tests.sources.vendor_fakes.alpaca import FakeAlpaca
from tests.sources.vendor_fakes.base import eventually

KEY, SECRET = "PKTEST", "s3cret"
NEW_YORK = ZoneInfo("America/New_York")
OPEN = MarketClock(always_open=True)


class ClosedClock(MarketClock):
    """Every market closed: a night, a holiday."""

    def status(self, ticker: str, at: datetime | None = None) -> MarketSession:
        return MarketSession("XNYS", False, "closed", None, None)


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
    fake: FakeAlpaca,
    *,
    key: str = KEY,
    secret: str = SECRET,
    feed: str = "iex",
    symbol_limit: int | None = None,
    clock: MarketClock = OPEN,
    mute_after: float = 60.0,
) -> AlpacaSource:
    source = AlpacaSource(
        key_id=key,
        secret=secret,
        feed=feed,
        url=f"{fake.ws_url}/v2/{feed}",
        crypto_url=f"{fake.ws_url}/v1beta3/crypto/us",
        rest_url=fake.http_url,
        trading_urls=(fake.http_url,),
        symbol_limit=symbol_limit,
        clock=clock,
        mute_after=mute_after,
    )
    for conn in source.connections:
        conn.check_interval = 0.05
        conn.backoff = Backoff(initial=0.05, maximum=0.2, rng=random.Random(3))
    return source


@asynccontextmanager
async def running(
    source: AlpacaSource, wanted: Callable[[], frozenset[str]]
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
                await task  # (it may have ended by itself: a fatal error)
        await source.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAlpaca]:
    vendor = await FakeAlpaca(feeds=("iex", "test")).start()
    yield vendor
    await vendor.stop()


async def test_every_event_kind_arrives_exact_with_its_feed(fake: FakeAlpaca) -> None:
    source = make(fake)
    async with running(source, lambda: frozenset({"AAPL", "BRK-B", "BTC-USD"})) as rec:
        await eventually(lambda: fake.subscribed("trades", "iex") == {"AAPL", "BRK.B"})
        await eventually(lambda: fake.subscribed("trades", "crypto") == {"BTC/USD"})
        assert fake.subscribed("statuses", "iex") == {"AAPL", "BRK.B"}
        assert fake.subscribed("dailyBars", "crypto") == {"BTC/USD"}
        minute = (time.time_ns() // 60_000_000_000 - 2) * 60
        await fake.trade("AAPL", "126.55", "1", at_ns=minute * 10**9 + 208_000_000)
        await fake.trade("AAPL", "126.60", "3", at_ns=minute * 10**9 + 30 * 10**9)
        await fake.trade("BTC/USD", "47.299", "29.205707815")
        await fake.quote("AAPL", "126.54", "126.58")
        await fake.minute_bar("AAPL", minute)
        await fake.minute_bar("AAPL", minute, updated=True)
        local = datetime.fromtimestamp(minute, NEW_YORK)
        day = int(local.replace(hour=0, minute=0, second=0).timestamp())
        await fake.daily_bar("AAPL", day)
        await fake.status("AAPL", "H", "Trading Halt", "T12", "Trading Halted")
        await eventually(lambda: len(rec.of(Status)) == 1 and len(rec.of(Trade)) == 3)
    trades = {(t.ticker, t.price, t.size) for t in rec.of(Trade)}
    assert ("AAPL", Decimal("126.55"), Decimal(1)) in trades
    assert ("BTC-USD", Decimal("47.299"), Decimal("29.205707815")) in trades
    first = next(t for t in rec.of(Trade) if t.price == Decimal("126.55"))
    assert first.ts_ns == minute * 10**9 + 208_000_000 and first.conditions == ("@", "I")
    quote = rec.of(Quote)[0]
    assert (quote.bid, quote.ask) == (Decimal("126.54"), Decimal("126.58"))
    minute_bars = [b for b in rec.of(VendorBar) if b.interval == "1m"]
    assert [(b.revision, b.final) for b in minute_bars] == [(0, True), (1, True)]
    assert (minute_bars[0].open, minute_bars[0].close, minute_bars[0].volume) == (
        Decimal("126.55"),
        Decimal("126.6"),
        Decimal(4),
    )
    day_summary = next(s for s in rec.of(Summary) if s.day_volume is not None)
    assert day_summary.day_volume == Decimal(4), "the daily bar's v: cumulative day volume"
    assert rec.of(Status)[0].kind == "halted" and rec.of(Status)[0].code == "H"
    by_ticker = {e.ticker: p for p, e in rec.events if isinstance(e, Trade)}
    assert by_ticker["AAPL"] == Provenance("alpaca", "iex", 0)
    assert by_ticker["BTC-USD"] == Provenance("alpaca", "us", 0), "crypto is its own feed"
    assert fake.auth_messages[0] == {"action": "auth", "key": KEY, "secret": SECRET}


async def test_a_bad_key_is_fatal_said_once_and_not_retried(
    fake: FakeAlpaca, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source = make(fake, secret="wrong-secret-value")
    async with running(source, lambda: frozenset({"AAPL"})) as rec:
        await eventually(lambda: any(s.fatal for s in rec.states()))
        await asyncio.sleep(0.3)
    fatal = next(s for s in rec.states() if s.fatal)
    assert "402 auth failed" in (fatal.fatal or "")
    assert fake.upgrades == 1, "a refused key is not tried again"
    shown = caplog.text + repr(source.describe_state()) + repr(rec.events)
    assert "wrong-secret-value" not in shown and "s3cret" not in shown


async def test_a_feed_outside_the_plan_is_fatal(fake: FakeAlpaca) -> None:
    source = make(fake, feed="sip")
    async with running(source, lambda: frozenset({"AAPL"})) as rec:
        await eventually(lambda: any(s.fatal for s in rec.states()))
    assert "409 insufficient subscription" in (rec.states()[-1].fatal or "")


async def test_past_the_symbol_limit_tickers_get_minute_bars_and_are_named(
    fake: FakeAlpaca,
) -> None:
    tickers = [f"T{i:02d}" for i in range(33)]
    fake.assets = [(t, t, "us_equity", "NASDAQ") for t in tickers]
    source = make(fake)  # iex: the free plan's 30
    async with running(source, lambda: frozenset(tickers)) as rec:
        await eventually(lambda: len(fake.subscribed("trades", "iex")) == 30)
        await eventually(lambda: len(fake.subscribed("bars", "iex")) == 33)
        left = set(tickers) - fake.subscribed("trades", "iex")
        await eventually(lambda: rec.states() and rec.states()[-1].limited == left)
        assert "30 symbols" in (rec.states()[-1].message or "") or left
        ticker = sorted(left)[0]
        minute = (time.time_ns() // 60_000_000_000 - 1) * 60
        await fake.trade(ticker, "10.5", at_ns=minute * 10**9 + 5)
        await fake.trade(ticker, "10.75", at_ns=minute * 10**9 + 6)
        await fake.minute_bar(ticker, minute)
        await eventually(lambda: any(s.price is not None for s in rec.of(Summary)))
    priced = next(s for s in rec.of(Summary) if s.price is not None)
    assert (priced.ticker, priced.price) == (ticker, Decimal("10.75"))
    assert priced.ts_ns == (minute + 60) * 10**9 - 1_000_000, "in the bar's own minute"
    assert not rec.of(Trade), "no trades for a bars-only ticker"
    assert fake.connections == 1


async def test_a_405_shrinks_the_set_without_a_reconnect(fake: FakeAlpaca) -> None:
    tickers = [f"S{i:02d}" for i in range(12)]
    fake.symbol_limit = 10  # the plan's real limit, lower than configured
    source = make(fake, symbol_limit=20)
    async with running(source, lambda: frozenset(tickers)) as rec:
        # Refused whole at 12, then at 11 (nothing confirmed yet): 10 is the plan's.
        await eventually(lambda: len(fake.subscribed("trades", "iex")) == 10)
        await eventually(lambda: len(rec.states()[-1].limited) == 2 if rec.states() else False)
        assert len(fake.subscribed("bars", "iex")) == 12
    assert fake.connections == 1, "a symbol limit is never fixed with another socket"
    assert fake.max_open == 1


async def test_one_connection_per_key_a_second_one_waits_its_turn(fake: FakeAlpaca) -> None:
    # Two holders of one key (the updater lock changing hands, another program): the
    # second is refused with 406, waits (capacity, not fatal), and gets the connection
    # once the first lets it go, never two at a time.
    first, second = make(fake), make(fake)
    for conn in second.connections:
        conn.capacity_wait = 0.3
    second_rec = Recorder()
    second_task: asyncio.Task[None] | None = None
    async with running(first, lambda: frozenset({"AAPL"})):
        await eventually(lambda: len(fake.authenticated()) == 1)
        second_task = asyncio.create_task(second.run(lambda: frozenset({"AAPL"}), second_rec))
        await eventually(lambda: any("406" in (s.message or "") for s in second_rec.states()))
        assert len(fake.authenticated()) == 1
        assert not any(s.fatal for s in second_rec.states()), "capacity, not fatal"
    # The first holder stopped: its socket is closed, the second one's turn comes.
    try:
        await eventually(lambda: second.connections[0].state == "open")
        assert len(fake.authenticated()) == 1
    finally:
        second_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await second_task
        await second.close()


@pytest.mark.parametrize(("code", "close"), [(407, True), (500, False), (401, False)])
async def test_transient_errors_reconnect_resubscribe_and_report_the_gap(
    fake: FakeAlpaca, code: int, close: bool
) -> None:
    source = make(fake)
    wanted = frozenset({"AAPL", "MSFT"})
    async with running(source, lambda: wanted) as rec:
        await eventually(lambda: fake.subscribed("trades", "iex") == {"AAPL", "MSFT"})
        await fake.trade("AAPL", "100.01")
        await eventually(lambda: rec.of(Trade))
        await fake.error(code, close=close)
        await eventually(lambda: fake.connections == 2)
        await eventually(lambda: fake.subscribed("trades", "iex") == {"AAPL", "MSFT"})
        await fake.trade("MSFT", "300.02")
        await eventually(lambda: rec.of(Gap))
    assert rec.of(Gap)[0].tickers == wanted
    assert str(code) in rec.of(Gap)[0].reason or "closed" in rec.of(Gap)[0].reason


async def test_closed_markets_are_not_stale_open_ones_are(fake: FakeAlpaca) -> None:
    night = make(fake, clock=ClosedClock(), mute_after=0.3)
    async with running(night, lambda: frozenset({"AAPL"})) as rec:
        await eventually(lambda: fake.subscribed("trades", "iex") == {"AAPL"})
        await asyncio.sleep(1.0)  # silent, but the market is closed: nothing is wrong
        assert not any(s.stale for s in rec.states())
        assert fake.connections == 1
    await fake.close_all()
    day = make(fake, clock=OPEN, mute_after=0.3)
    async with running(day, lambda: frozenset({"AAPL"})) as rec:
        await eventually(lambda: any("AAPL" in s.stale for s in rec.states()))
        await eventually(lambda: fake.connections >= 3, timeout=10)  # mute: replaced


async def test_history_directory_and_previous_close_use_the_key(fake: FakeAlpaca) -> None:
    source = make(fake)
    try:
        now = time.time()
        minute = int(now // 60 - 3) * 60
        for i, price in enumerate(["126.55", "127.10", "126.20", "126.90"]):
            await fake.trade("AAPL", price, "100", at_ns=(minute + i * 10) * 10**9)
        bars = await source.history("AAPL", "1m", "1d")
        bar = next(b for b in bars if b.time == minute)
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
            126.55,
            127.10,
            126.20,
            126.90,
            400,
        )
        await previous_close_is_the_day_befores(fake, now)
        found = await source.search_symbols("berkshire", 5)
        assert [(s.symbol, s.type, s.exchange) for s in found] == [("BRK-B", "equity", "NYSE")]
        assert await source.can_quote("BTC-USD") is True
        assert await source.can_quote("EURUSD=X") is False
    finally:
        await source.close()
    bad = make(fake, secret="nope")
    try:
        with pytest.raises(Exception, match="HTTP 401"):
            await bad.history("AAPL", "1m", "1d")
    finally:
        await bad.close()


async def previous_close_is_the_day_befores(fake: FakeAlpaca, now: float) -> None:
    """The previous close is the close of the session before the current trading day, by
    the exchange's calendar as a real deployment's clock has it (not the simulator's UTC
    days: between midnight UTC and midnight in New York they name different days): the
    day in progress, or the last one at night, a weekend or a holiday, is not before."""
    clock = MarketClock()
    schedule = clock.schedule("AAPL")
    today = clock.current_day(schedule, now)
    assert today is not None
    before = clock.previous_day(schedule, today)
    earlier = clock.previous_day(schedule, before)
    await fake.trade("AAPL", "118.40", at_ns=(earlier.close - 60) * 10**9)
    await fake.trade("AAPL", "120.25", at_ns=(before.close - 60) * 10**9)
    await fake.trade("AAPL", "131.05", at_ns=(today.start + 60) * 10**9)
    source = make(fake, clock=clock)
    try:
        close = await asyncio.to_thread(source.fetch_prev_close, "AAPL")
    finally:
        await source.close()
    assert close == Decimal("120.25")


def test_the_settings_build_the_feed_and_refuse_a_missing_key() -> None:
    from stockfeed.config import Settings

    settings = Settings(source="alpaca")  # type: ignore[call-arg]
    assert alpaca.check(settings) is not None and "APCA_API_KEY_ID" in (
        alpaca.check(settings) or ""
    )
    keyed = Settings(
        source="alpaca",
        APCA_API_KEY_ID="PK1",
        APCA_API_SECRET_KEY="sk",
        alpaca_feed="delayed_sip",
    )  # type: ignore[call-arg]
    source = alpaca.build(keyed, OPEN)
    assert source.provenance == Provenance("alpaca", "delayed_sip", 900)
    assert source.connections[0].dialect.url().endswith("/v2/delayed_sip")
    assert "PK1" not in repr(keyed) and "sk'" not in repr(keyed)
    test_stream = Settings(
        source="alpaca",
        APCA_API_KEY_ID="PK1",
        APCA_API_SECRET_KEY="sk",
        alpaca_url="wss://stream.data.alpaca.markets/v2/test",
    )  # type: ignore[call-arg]
    assert alpaca.build(test_stream, OPEN).provenance.feed == "test"
