"""The Finnhub plugin against the fake Finnhub over a real socket, in this process: trades
(ms times, sizes, conditions, batches), pings, the key in the URL never shown, a refused
key, one connection per key (a second one dropped: it waits its turn), too many symbols,
closes, quiet nights, REST with the key in a header."""

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
from stockfeed.logs import redact
from stockfeed.market_hours import MarketClock, MarketSession
from stockfeed.sources.base import Provenance, SourceError
from stockfeed.sources.events import Event, Gap, SourceState, Trade
from stockfeed.sources.vendors import finnhub
from stockfeed.sources.vendors.finnhub import FinnhubSource
from tests.sources.vendor_fakes.base import eventually
from tests.sources.vendor_fakes.finnhub import FakeFinnhub, FakeTrade

KEY = "fhkey123"
OPEN = MarketClock(always_open=True)
NEW_YORK = ZoneInfo("America/New_York")


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
    fake: FakeFinnhub, *, key: str = KEY, clock: MarketClock = OPEN, mute_after: float = 60.0
) -> FinnhubSource:
    source = FinnhubSource(
        key=key,
        url=fake.ws_url,
        rest_url=f"{fake.http_url}/api/v1",
        clock=clock,
        mute_after=mute_after,
    )
    conn = source.connections[0]
    conn.check_interval = 0.05
    conn.backoff = Backoff(initial=0.05, maximum=0.2, rng=random.Random(9))
    return source


@asynccontextmanager
async def running(
    source: FinnhubSource, wanted: Callable[[], frozenset[str]]
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
async def fake() -> AsyncIterator[FakeFinnhub]:
    vendor = await FakeFinnhub(ping_interval=0.1).start()
    yield vendor
    await vendor.stop()


async def test_trades_arrive_exact_and_the_key_in_the_url_is_never_shown(
    fake: FakeFinnhub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source = make(fake)
    async with running(source, lambda: frozenset({"AAPL", "BRK-B"})) as rec:
        await eventually(lambda: fake.subscribed() == {"AAPL", "BRK.B"})
        await asyncio.sleep(0.3)  # pings: liveness, not data
        assert not rec.of(Trade)
        at = time.time_ns() // 1_000_000 * 1_000_000
        await fake.send_trades(
            [
                FakeTrade("BRK.B", "412.5", "3", at + 5_000_000),
                FakeTrade("AAPL", "122.1", "1", at),
                FakeTrade("AAPL", "122.09", "0", at + 1_000_000),  # a price update, v = 0
            ]
        )
        await eventually(lambda: len(rec.of(Trade)) == 3)
    trades = rec.of(Trade)
    assert [t.ts_ns for t in trades] == sorted(t.ts_ns for t in trades), "in time order"
    first = trades[0]
    assert (first.ticker, first.price, first.size, first.ts_ns) == (
        "AAPL",
        Decimal("122.1"),
        Decimal(1),
        at,
    )
    assert first.conditions == ("1", "8", "24", "12")
    assert trades[-1].ticker == "BRK-B"
    assert {p for p, _ in rec.events} == {Provenance("finnhub", None, 0)}
    subscribes = [m for m in fake.received if m["type"] == "subscribe"]
    assert sorted(m["symbol"] for m in subscribes) == ["AAPL", "BRK.B"], "one a message"
    assert fake.ws_paths == [f"/?token={KEY}"], "the key goes in the URL, as documented"
    shown = caplog.text + repr(source.describe_state()) + repr(rec.events)
    assert KEY not in shown
    assert KEY not in redact(source.dialect.url()) and "token=***" in redact(source.dialect.url())


async def test_a_refused_key_is_fatal_and_not_shown(
    fake: FakeFinnhub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source = make(fake, key="wrong-key-9876")
    async with running(source, lambda: frozenset({"AAPL"})) as rec:
        await eventually(lambda: any(s.fatal for s in rec.states()))
        await asyncio.sleep(0.3)
    fatal = next(s for s in rec.states() if s.fatal)
    assert "FINNHUB_API_KEY" in (fatal.fatal or "") and "401" in (fatal.fatal or "")
    assert fake.upgrades == 1, "a refused key is not tried again"
    assert "wrong-key-9876" not in caplog.text + repr(rec.events) + repr(source.describe_state())


async def test_a_second_connection_of_a_key_is_dropped_and_waits_its_turn(
    fake: FakeFinnhub,
) -> None:
    first, second = make(fake), make(fake)
    second.connections[0].capacity_wait = 1.0
    second_rec = Recorder()
    async with running(first, lambda: frozenset({"AAPL"})):
        await eventually(lambda: fake.subscribed() == {"AAPL"})
        task = asyncio.create_task(second.run(lambda: frozenset({"AAPL"}), second_rec))
        try:
            await eventually(lambda: fake.dropped == 1)
            await eventually(
                lambda: any("another connection" in (s.message or "") for s in second_rec.states())
            )
            await asyncio.sleep(0.6)
            assert fake.dropped == 1, "it waits for the one connection: no storm"
            assert not any(s.fatal for s in second_rec.states())
            assert len(fake.sessions) == 1
        except BaseException:
            task.cancel()
            raise
    # The first holder let go: the second one's turn comes.
    try:
        await eventually(lambda: second.connections[0].state == "open", timeout=10)
        await eventually(lambda: fake.subscribed() == {"AAPL"})
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await second.close()


async def test_too_many_symbols_keeps_what_was_held_and_names_the_rest() -> None:
    fake = await FakeFinnhub(ping_interval=0.1, symbol_limit=3).start()
    tickers = frozenset({"AAPL", "MSFT", "NVDA", "TSLA", "AMZN"})
    wanted = {"AAPL", "MSFT"}
    try:
        source = make(fake)
        async with running(source, lambda: frozenset(wanted)) as rec:
            await eventually(lambda: fake.subscribed() == {"AAPL", "MSFT"})
            wanted.update(tickers)  # three more: one too many
            await eventually(lambda: bool(rec.states() and rec.states()[-1].limited))
            await eventually(lambda: len(fake.subscribed()) == 2)
            # Held before the refused subscribes: AAPL and MSFT; the rest named as left out.
            assert fake.subscribed() == {"AAPL", "MSFT"}
            assert rec.states()[-1].limited == {"AMZN", "NVDA", "TSLA"}
            assert all("more than 2 symbols" in why for why in source.dialect.limited.values())
            assert fake.connections == 1, "a symbol limit is never fixed with another socket"
    finally:
        await fake.stop()


@pytest.mark.parametrize("how", ["clean", "drop"])
async def test_a_close_after_data_is_a_reconnect_with_a_resubscribe_and_a_gap(
    fake: FakeFinnhub, how: str
) -> None:
    wanted = frozenset({"AAPL", "MSFT"})
    source = make(fake)
    async with running(source, lambda: wanted) as rec:
        await eventually(lambda: fake.subscribed() == {"AAPL", "MSFT"})
        await fake.trade("AAPL", "101.25")
        await eventually(lambda: rec.of(Trade))
        if how == "clean":
            await fake.close_all(1000, "restart")
        else:
            await fake.drop_all()
        await eventually(lambda: fake.connections == 2 and fake.subscribed() == {"AAPL", "MSFT"})
        await fake.trade("MSFT", "402.5")
        await eventually(lambda: rec.of(Gap))
    assert rec.of(Gap)[0].tickers == wanted
    assert "another connection" not in (source.connections[0].last_error or "")


async def test_a_quiet_night_with_pings_only_is_not_stale(fake: FakeFinnhub) -> None:
    source = make(fake, clock=ClosedClock(), mute_after=0.3)
    async with running(source, lambda: frozenset({"AAPL"})) as rec:
        await eventually(lambda: fake.subscribed() == {"AAPL"})
        await asyncio.sleep(1.2)
        assert not any(s.stale for s in rec.states())
        assert fake.connections == 1


async def test_directory_and_history_with_the_key_in_a_header(fake: FakeFinnhub) -> None:
    source = make(fake)
    try:
        minute = int(time.time() // 60 - 3) * 60
        for i, price in enumerate(["261.07", "263.31", "260.68", "261.74"]):
            await fake.trade("AAPL", price, "10", at_ns=(minute + i * 10) * 10**9)
        bars = await source.history("AAPL", "1m", "1d")
        bar = next(b for b in bars if b.time == minute)
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
            261.07,
            263.31,
            260.68,
            261.74,
            40,
        )
        found = await source.search_symbols("berkshire", 5)
        assert [(s.symbol, s.exchange) for s in found] == [("BRK-B", "XNYS")]
        assert [s.type for s in await source.search_symbols("SPY", 1)] == ["etf"]
        assert all(t == KEY for t in fake.rest_tokens), "the key in the header"
        assert all(KEY not in p for p in fake.rest_calls)
    finally:
        await source.close()


@pytest.mark.parametrize("moment", ["pre-market", "after the open"])
async def test_the_previous_close_is_the_last_regular_close(moment: str) -> None:
    clock = MarketClock()
    today = clock.current_day("XNYS", time.time())
    assert today is not None
    before = clock.previous_day("XNYS", today)
    earlier = clock.previous_day("XNYS", before)

    def at(day: Any, hour: int, minute: int = 0, second: int = 0) -> int:
        local = datetime.combine(day.date, datetime.min.time(), NEW_YORK)
        return int(local.replace(hour=hour, minute=minute, second=second).timestamp()) * 10**9

    fake = await FakeFinnhub().start()
    now = today.start + 3600 if moment == "pre-market" else today.open + 600
    source = FinnhubSource(
        key=KEY, url=fake.ws_url, rest_url=f"{fake.http_url}/api/v1", clock=clock, now=lambda: now
    )
    try:
        await fake.trade("AAPL", "250.00", at_ns=at(earlier, 15, 59))
        await fake.trade("AAPL", "254.50", at_ns=at(before, 15, 59, 30))  # the close
        if moment == "pre-market":
            # Before today's open the quote is the last session's: its `c` at 15:59 is
            # the close; an after-hours `c` is no close at all.
            assert await asyncio.to_thread(source.fetch_prev_close, "AAPL") == Decimal("254.50")
            await fake.trade("AAPL", "255.26", at_ns=at(before, 19, 30))
            assert await asyncio.to_thread(source.fetch_prev_close, "AAPL") is None
        else:
            # Today's session opened: `c` is today's, `pc` the close before it.
            await fake.trade("AAPL", "255.26", at_ns=at(before, 19, 30))
            await fake.trade("AAPL", "256.00", at_ns=int(now) * 10**9)
            close = await asyncio.to_thread(source.fetch_prev_close, "AAPL")
            assert close == Decimal("254.50"), "never the after-hours print"
    finally:
        await source.close()
        await fake.stop()


async def test_candles_outside_the_plan_say_so() -> None:
    fake = await FakeFinnhub(candles_allowed=False).start()
    source = make(fake)
    try:
        with pytest.raises(SourceError, match="plan"):
            await source.history("AAPL", "1d", "1mo")
    finally:
        await source.close()
        await fake.stop()


def test_the_settings_build_the_url_and_refuse_a_missing_key() -> None:
    assert "FINNHUB_API_KEY" in (finnhub.check(Settings(source="finnhub")) or "")  # type: ignore[call-arg]
    keyed = Settings(source="finnhub", FINNHUB_API_KEY="fh-secret-1")  # type: ignore[call-arg]
    source = finnhub.build(keyed, OPEN)
    assert source.dialect.url() == "wss://ws.finnhub.io?token=fh-secret-1"
    assert source.provenance == Provenance("finnhub", None, 0)
    assert "fh-secret-1" not in repr(keyed)
    assert source.capabilities.connections_per_key == 1
