"""The simulator: determinism, realistic invariants, streaming and history."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from stockfeed.models import Tick
from stockfeed.sources.base import INTERVAL_SECONDS, RANGE_DAYS, check_history_params
from stockfeed.sources.sim import SimSource, base_price

START = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class Clock:
    def __init__(self, t: float = START) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run(source: SimSource, clock: Clock, tickers: list[str], steps: int) -> list[Tick]:
    out: list[Tick] = []
    for _ in range(steps):
        for ticker in tickers:
            out.append(source.next_tick(ticker))
        clock.t += source.tick_interval
    return out


def test_same_seed_gives_identical_ticks_and_other_seed_differs() -> None:
    c1, c2, c3 = Clock(), Clock(), Clock()
    a = run(SimSource(seed=7, now=c1), c1, ["AAPL", "ZZZ"], 500)
    b = run(SimSource(seed=7, now=c2), c2, ["AAPL", "ZZZ"], 500)
    other = run(SimSource(seed=8, now=c3), c3, ["AAPL", "ZZZ"], 500)
    assert a == b
    assert [t.price for t in a] != [t.price for t in other]
    assert len({t.price for t in a if t.ticker == "AAPL"}) > 10  # it does move


def test_each_ticker_walks_its_own_path() -> None:
    clock = Clock()
    source = SimSource(seed=3, tick_interval=60.0, now=clock)
    ticks = run(source, clock, ["AAA", "BBB"], 3000)

    def moves(ticker: str) -> list[float]:
        prices = [t.price for t in ticks if t.ticker == ticker]
        return [math.log(b / a) for a, b in itertools.pairwise(prices)]

    a, b = moves("AAA"), moves("BBB")
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    corr = cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
    assert abs(corr) < 0.15  # independent walks, not one path at two price levels


def test_adding_a_ticker_does_not_change_another_path() -> None:
    c1, c2 = Clock(), Clock()
    alone = run(SimSource(seed=3, now=c1), c1, ["MSFT"], 300)
    crowded = run(SimSource(seed=3, now=c2), c2, ["NEW1", "MSFT", "NEW2"], 300)
    assert alone == [t for t in crowded if t.ticker == "MSFT"]


def test_100k_steps_stay_positive_with_sane_day_fields() -> None:
    # One-minute ticks: 100k steps are ~69 simulated days, with their day roll-overs.
    clock = Clock()
    source = SimSource(seed=11, tick_interval=60.0, now=clock)
    prev: Tick | None = None
    days = 0
    for _ in range(100_000):
        tick = source.next_tick("PENNY")
        assert tick.price > 0
        assert round(tick.price, 2) == tick.price
        assert tick.low is not None and tick.high is not None and tick.volume is not None
        assert tick.low <= tick.price <= tick.high
        assert tick.market_time == int(clock.t * 1000)
        if prev is not None and prev.market_time // 86_400_000 == tick.market_time // 86_400_000:  # type: ignore[operator]
            assert tick.volume >= prev.volume  # type: ignore[operator]
            assert tick.open == prev.open
            assert tick.prev_close == prev.prev_close
            assert tick.high >= prev.high and tick.low <= prev.low  # type: ignore[operator]
        elif prev is not None:
            days += 1
            assert tick.prev_close == prev.price  # yesterday's close, from the same walk
            assert tick.open == tick.high == tick.low  # the day starts afresh
            assert tick.volume <= prev.volume  # type: ignore[operator]
        assert tick.change is None and tick.change_percent is None
        prev = tick
        clock.t += 60.0
    assert days >= 68
    assert prev is not None and prev.volume is not None and prev.volume > 0


def test_prices_stay_positive_even_with_huge_steps() -> None:
    # A day per tick over 100k ticks: log-normal steps and the cent floor keep it > 0.
    clock = Clock()
    source = SimSource(seed=5, tick_interval=86400.0, now=clock)
    prices = [t.price for t in run(source, clock, ["XYZ"], 100_000)]
    assert min(prices) > 0
    assert max(prices) / min(prices) > 1.5  # really volatile at this scale


def test_per_tick_volatility_is_realistic() -> None:
    clock = Clock()
    source = SimSource(seed=1, tick_interval=1.0, now=clock)
    prices = [t.price for t in run(source, clock, ["NVDA"], 20_000)]
    returns = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    mean = sum(returns) / len(returns)
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
    expected = 0.30 / math.sqrt(365 * 86400)  # 30 % a year, per second
    assert expected * 0.7 < sd < expected * 1.5  # cent rounding adds a little noise


def test_base_prices() -> None:
    assert base_price("AAPL") == pytest.approx(190, rel=0.05)
    assert base_price("MSFT") == pytest.approx(420, rel=0.05)
    for ticker in ("QWERTY", "A", "XYZ.L", "^GSPC", "AB-C"):
        assert 20 <= base_price(ticker) <= 600
        assert base_price(ticker) == base_price(ticker)
    assert base_price("QWERTY") != base_price("QWERTZ")
    clock = Clock()
    first = SimSource(seed=1, now=clock).next_tick("AAPL").price
    assert 150 < first < 230  # starts near its realistic base


class Collector:
    """Records emitted tickers; lets a test wait (with a timeout) for the n-th of one."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._waiters: list[tuple[str, int, asyncio.Event]] = []

    async def emit(self, tick: Tick) -> None:
        self.seen.append(tick.ticker)
        for ticker, n, event in self._waiters:
            if self.seen.count(ticker) >= n:
                event.set()

    async def until(self, ticker: str, n: int) -> None:
        event = asyncio.Event()
        self._waiters.append((ticker, n, event))
        if self.seen.count(ticker) >= n:
            event.set()
        await asyncio.wait_for(event.wait(), 5)


async def test_stream_follows_wanted_tickers() -> None:
    source = SimSource(seed=1, tick_interval=0.01)
    wanted: set[str] = {"AAA"}
    got = Collector()
    task = asyncio.create_task(source.stream(lambda: frozenset(wanted), got.emit))
    try:
        await got.until("AAA", 3)
        assert "BBB" not in got.seen
        wanted.add("BBB")
        await got.until("BBB", 3)
        # emit does not suspend, so the stream is between rounds here: no AAA in flight.
        wanted.discard("AAA")
        aaa_at_removal = got.seen.count("AAA")
        await got.until("BBB", 8)
        assert got.seen.count("AAA") == aaa_at_removal
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert source.health.last_tick_ms is not None


async def test_stream_skips_tickers_whose_market_is_closed() -> None:
    source = SimSource(seed=1, tick_interval=0.01, is_trading=lambda t: t != "SHUT")
    got = Collector()
    task = asyncio.create_task(source.stream(lambda: frozenset({"OPEN", "SHUT"}), got.emit))
    try:
        await got.until("OPEN", 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert "SHUT" not in got.seen


async def test_stream_never_ticks_faster_than_the_interval() -> None:
    # Only a lower bound on spacing: a busy machine may be late, never early.
    source = SimSource(seed=1, tick_interval=0.05)
    times: list[float] = []
    enough = asyncio.Event()

    async def emit(tick: Tick) -> None:
        times.append(asyncio.get_running_loop().time())
        if len(times) == 5:
            enough.set()

    task = asyncio.create_task(source.stream(lambda: frozenset({"AAA"}), emit))
    try:
        await asyncio.wait_for(enough.wait(), 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    for k, at in enumerate(times[:5]):
        assert at - times[0] >= k * 0.05 - 0.005


VALID = [(i, r) for i in INTERVAL_SECONDS for r in RANGE_DAYS if check_history_params(i, r) is None]


@pytest.mark.parametrize(("interval", "range_"), VALID)
async def test_history_ends_at_the_live_price_and_is_aligned(interval: str, range_: str) -> None:
    clock = Clock(START + 1234.5)
    source = SimSource(seed=9, tick_interval=1.0, now=clock)
    live = run(source, clock, ["AAPL"], 50)[-1].price
    step = INTERVAL_SECONDS[interval]
    bars = await source.history("AAPL", interval, range_)
    assert len(bars) == RANGE_DAYS[range_] * 86400 // step
    assert bars[-1].close == live
    assert bars[-1].time == int(clock.t // step) * step
    for prev, bar in itertools.pairwise(bars):
        assert bar.time - prev.time == step
    for bar in bars:
        assert bar.time % step == 0
        assert bar.high >= max(bar.open, bar.close)
        assert bar.low <= min(bar.open, bar.close)
        assert bar.low > 0
        assert isinstance(bar.volume, int) and bar.volume > 0
        assert round(bar.close, 2) == bar.close
    # Bars join: each bar opens where the one before closed.
    assert all(b.open == a.close for a, b in itertools.pairwise(bars))
    # history() does not move the live walk.
    assert source.current_price("AAPL") == live


async def test_history_counts_and_calendar_alignment() -> None:
    clock = Clock(START + 5000)
    source = SimSource(seed=2, now=clock)
    assert len(await source.history("MSFT", "5m", "1d")) == 288
    assert len(await source.history("MSFT", "1m", "5d")) == 5 * 1440
    hourly = await source.history("MSFT", "1h", "5d")
    assert len(hourly) == 120 and all(b.time % 3600 == 0 for b in hourly)
    daily = await source.history("MSFT", "1d", "1y")
    assert len(daily) == 366
    assert all(b.time % 86400 == 0 for b in daily)  # 00:00 UTC


async def test_history_is_deterministic_and_follows_the_price() -> None:
    def make() -> tuple[SimSource, Clock]:
        clock = Clock()
        return SimSource(seed=4, now=clock), clock

    (a, ca), (b, cb) = make(), make()
    run(a, ca, ["TSLA"], 20)
    run(b, cb, ["TSLA"], 20)
    assert await a.history("TSLA", "15m", "5d") == await b.history("TSLA", "15m", "5d")
    before = await a.history("TSLA", "15m", "5d")
    while a.current_price("TSLA") == before[-1].close:
        a.next_tick("TSLA")  # same clock: same bucket, new price
    after = await a.history("TSLA", "15m", "5d")
    assert after[-1].close == a.current_price("TSLA")
    assert after[0].time == before[0].time


async def test_history_for_a_ticker_never_ticked_ends_at_its_opening_price() -> None:
    clock = Clock()
    source = SimSource(seed=4, now=clock)
    bars = await source.history("NEWCO", "1h", "1mo")
    assert bars[-1].close == source.current_price("NEWCO")
    assert source.next_tick("NEWCO").prev_close is not None


@pytest.mark.parametrize(
    ("interval", "range_"), [("2m", "1d"), ("5m", "2d"), ("1m", "1mo"), ("5m", "1y"), ("", "")]
)
async def test_history_rejects_bad_params(interval: str, range_: str) -> None:
    with pytest.raises(ValueError):
        await SimSource(seed=1).history("AAPL", interval, range_)


async def test_can_quote_any_valid_ticker() -> None:
    source = SimSource(seed=1)
    assert await source.can_quote("ANYTHING")
    assert await source.can_quote("brk.b")
    assert await source.can_quote("not a ticker!") is False
    assert SimSource.simulated is True and SimSource.name == "sim"


def test_unseeded_sources_differ() -> None:
    clock = Clock()
    a = run(SimSource(now=clock), clock, ["AAPL"], 30)
    b = run(SimSource(now=clock), clock, ["AAPL"], 30)
    assert [t.price for t in a] != [t.price for t in b]
