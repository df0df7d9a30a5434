"""The simulator: real instruments on their market's calendar, from one deterministic path.

Everything here runs on a fixed clock (never the wall clock): the live walk is read at
chosen moments, or the real `stream()` loop is driven through days of simulated time
with its sleeps advancing the clock.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from stockfeed.market_hours import MarketClock
from stockfeed.models import Bar, Tick
from stockfeed.sources import sim as sim_module
from stockfeed.sources.base import INTERVAL_SECONDS, RANGE_DAYS, UnknownTicker, check_history_params
from stockfeed.sources.sim import DEFAULT_SEED, SimSource
from stockfeed.sources.symbols import Directory

NY = ZoneInfo("America/New_York")
CLOCK = MarketClock()


def et(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=NY).timestamp()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def source(t: float, seed: int = 7, **kw: object) -> tuple[SimSource, Clock]:
    clock = Clock(t)
    return SimSource(seed=seed, clock=CLOCK, now=clock, **kw), clock  # type: ignore[arg-type]


def run_stream(
    sim: SimSource, clock: Clock, tickers: set[str], until: float, monkeypatch: pytest.MonkeyPatch
) -> list[Tick]:
    """The real stream loop, its sleeps advancing the simulated clock."""
    ticks: list[Tick] = []

    async def fake_sleep(delay: float) -> None:
        clock.t += max(delay, 1e-6)
        if clock.t >= until:
            raise asyncio.CancelledError

    async def emit(tick: Tick) -> None:
        ticks.append(tick)

    monkeypatch.setattr(sim_module.asyncio, "sleep", fake_sleep)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(sim.stream(lambda: frozenset(tickers), emit))
    monkeypatch.undo()
    return ticks


def bars_from_ticks(ticks: list[Tick], step: int, volume_before: int | None = None) -> list[Bar]:
    """Candles as a client builds them from the stream (DESIGN: bucket by market_time,
    volume from the differences of the day's volume, which starts again each day)."""
    out: dict[int, list[float]] = {}
    prev_close: float | None = None
    for tick in ticks:
        assert tick.market_time is not None and tick.volume is not None
        start = tick.market_time // 1000 // step * step
        if volume_before is None or tick.prev_close != prev_close:
            delta = (
                tick.volume
                if volume_before is None and prev_close is not None
                else (tick.volume - (volume_before or 0))
            )
            if prev_close is not None and tick.prev_close != prev_close:
                delta = tick.volume  # a new day
        else:
            delta = tick.volume - volume_before
        prev_close, volume_before = tick.prev_close, tick.volume
        bar = out.get(start)
        if bar is None:
            out[start] = [tick.price, tick.price, tick.price, tick.price, delta]
        else:
            bar[1] = max(bar[1], tick.price)
            bar[2] = min(bar[2], tick.price)
            bar[3] = tick.price
            bar[4] += delta
    return [Bar(t, o, h, lo, c, int(v)) for t, (o, h, lo, c, v) in sorted(out.items())]


def sessions_by_date(ticks: list[Tick], tz: ZoneInfo = NY) -> dict[date, list[Tick]]:
    days: dict[date, list[Tick]] = defaultdict(list)
    for tick in ticks:
        assert tick.market_time is not None
        days[datetime.fromtimestamp(tick.market_time / 1000, tz).date()].append(tick)
    return dict(days)


# --- the calendar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "label", "interval"),
    [
        # Thanksgiving (Thursday 26 November 2026: NYSE closed) and the half day after it;
        # 20 s ticks: three a minute (one wick each).
        (et(2026, 11, 23, 0), et(2026, 11, 30, 0), "thanksgiving", 20.0),
        # The end of daylight time (Sunday 1 November 2026): 09:30 ET is 13:30Z, then
        # 14:30Z; 15 s ticks: four a minute (open, high, low, close).
        (et(2026, 10, 29, 0), et(2026, 11, 5, 0), "dst", 15.0),
    ],
)
def test_a_week_with_a_holiday_and_a_dst_change(
    start: float, end: float, label: str, interval: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, clock = source(start, tick_interval=interval)
    ticks = run_stream(sim, clock, {"AAPL", "^GSPC"}, end, monkeypatch)
    aapl = [t for t in ticks if t.ticker == "AAPL"]
    index = [t for t in ticks if t.ticker == "^GSPC"]
    assert aapl and index

    def status(tick: Tick) -> str:
        assert tick.market_time is not None
        moment = datetime.fromtimestamp(tick.market_time / 1000, UTC)
        return CLOCK.status(tick.ticker, moment).session

    # The stream starts at midnight (closed): the last trade is published once (Friday's
    # or the previous evening's), then nothing until the market opens.
    first, *live = aapl
    assert first.market_time is not None and first.market_time < start * 1000
    assert all(status(t) != "closed" for t in live), "an equity tick outside XNYS hours"
    assert all(status(t) == "regular" for t in index[1:]), "an index trades regular hours only"

    days = sessions_by_date(live)
    expected = [d.date for d in CLOCK.trading_days("XNYS", start, end - 1) if d.start >= start]
    assert sorted(days) == expected
    if label == "thanksgiving":
        assert date(2026, 11, 26) not in days and date(2026, 11, 28) not in days
        # The half day: the regular session ends at 13:00, post-market at 17:00.
        assert max(t.market_time for t in days[date(2026, 11, 27)]) < et(2026, 11, 27, 17) * 1000  # type: ignore[type-var]
    else:
        # Pre-market opens at 04:00 New York time: 08:00Z in daylight time, 09:00Z after.
        assert days[date(2026, 10, 30)][0].market_time == utc(2026, 10, 30, 8) * 1000
        assert days[date(2026, 11, 2)][0].market_time == utc(2026, 11, 2, 9) * 1000
        opens = {
            d: min(t.market_time for t in sessions_by_date(index[1:])[d])  # type: ignore[type-var]
            for d in (date(2026, 10, 30), date(2026, 11, 2))
        }
        assert opens == {
            date(2026, 10, 30): utc(2026, 10, 30, 13, 30) * 1000,
            date(2026, 11, 2): utc(2026, 11, 2, 14, 30) * 1000,
        }

    # The history the simulator draws afterwards is what it streamed, minute by minute,
    # and no bar falls outside a session.
    clock.t = end
    history = asyncio.run(sim.history("AAPL", "1m", "5d"))
    streamed = bars_from_ticks(live, 60)
    assert [b for b in history if b.time >= start] == streamed
    assert len(streamed) * (60 // interval) == len(live)  # a bar every minute of a session
    for bar in history:
        moment = datetime.fromtimestamp(bar.time, UTC)
        assert CLOCK.status("AAPL", moment).session != "closed"
    for interval in ("5m", "1h"):
        step = INTERVAL_SECONDS[interval]
        drawn = asyncio.run(sim.history("AAPL", interval, "5d"))
        assert [b for b in drawn if b.time >= start] == bars_from_ticks(live, step)

    # The day fields are the whole trading day's (pre-market on); the 1D bar, at 00:00 UTC
    # of its date, is the regular session's, as quote sites draw it: its close is the
    # regular close, which is also the next day's prev_close and, after the close, the
    # ticks' regular_close. The after-hours last print is neither.
    daily = {
        datetime.fromtimestamp(b.time, UTC).date(): b
        for b in asyncio.run(sim.history("AAPL", "1d", "1mo"))
    }
    trading = {d.date: d for d in CLOCK.trading_days("XNYS", start, end - 1)}
    previous_close: float | None = None
    after_hours_moved = 0
    for session_date in sorted(days):
        session = days[session_date]
        day = trading[session_date]
        last = session[-1]
        bar = daily[session_date]
        assert bar.time == datetime.combine(session_date, datetime.min.time(), UTC).timestamp()
        minute_bars = [
            b for b in streamed if datetime.fromtimestamp(b.time, NY).date() == session_date
        ]
        assert (last.open, last.high, last.low, last.volume) == (
            minute_bars[0].open,
            max(b.high for b in minute_bars),
            min(b.low for b in minute_bars),
            sum(b.volume for b in minute_bars),
        )
        regular = [b for b in minute_bars if day.open <= b.time < day.close]
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
            regular[0].open,
            max(b.high for b in regular),
            min(b.low for b in regular),
            regular[-1].close,
            sum(b.volume for b in regular),
        )
        assert session[0].open == session[0].price  # the day opens at its first trade
        assert {t.prev_close for t in session} == {session[0].prev_close}
        if previous_close is not None:
            # The previous *session's* regular close, the holiday skipped.
            assert session[0].prev_close == previous_close
        closed = [
            t for t in session if t.market_time is not None and t.market_time >= day.close * 1000
        ]
        assert closed, "a post-market after every close"
        assert {t.regular_close for t in closed} == {bar.close}
        open_part = [
            t for t in session if t.market_time is not None and t.market_time < day.close * 1000
        ]
        assert {t.regular_close for t in open_part} == {None}
        after_hours_moved += last.price != bar.close
        previous_close = bar.close
    assert after_hours_moved, "the after-hours last print is not the close"
    assert not [d for d in daily if d.weekday() >= 5 or d == date(2026, 11, 26)]


def test_market_hours_off_trades_around_the_clock_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saturday = et(2026, 11, 28, 12)
    sim, clock = source(saturday, tick_interval=30.0, market_hours=False)
    ticks = run_stream(sim, clock, {"AAPL"}, saturday + 600, monkeypatch)
    assert len(ticks) == 20 and all(t.ticker == "AAPL" for t in ticks)
    # market_status agrees: one market, open around the clock.
    assert sim.market_clock is not None
    status = sim.market_clock.status("AAPL")
    assert (status.market, status.is_open, status.session) == ("SIM", True, "regular")
    # So does history: bars on a Saturday, from 00:00 UTC (days are UTC dates).
    clock.t = saturday + 600 - 0.001  # the stream's last tick
    bars = asyncio.run(sim.history("AAPL", "1m", "1d"))
    assert bars[0].time == utc(2026, 11, 28)
    base = sim.quote("AAPL", saturday - 30)
    assert base is not None
    assert bars[-10:] == bars_from_ticks(ticks, 60, volume_before=base.volume)
    daily = asyncio.run(sim.history("AAPL", "1d", "5d"))
    assert [b.time for b in daily] == [utc(2026, 11, d) for d in range(24, 29)]


def test_a_closed_market_publishes_its_last_trade_once(monkeypatch: pytest.MonkeyPatch) -> None:
    saturday = et(2026, 11, 28, 12)
    sim, clock = source(saturday)
    ticks = run_stream(sim, clock, {"AAPL", "BTC-USD", "EURUSD=X"}, saturday + 30, monkeypatch)
    aapl = [t for t in ticks if t.ticker == "AAPL"]
    fx = [t for t in ticks if t.ticker == "EURUSD=X"]
    assert len(aapl) == 1 and len(fx) == 1  # the last trade, once; never a new one
    # Friday's half day: the post-market ends at 17:00 New York time.
    assert aapl[0].market_time == et(2026, 11, 27, 17) * 1000 - 1000
    assert fx[0].market_time == et(2026, 11, 27, 17) * 1000 - 1000
    assert len([t for t in ticks if t.ticker == "BTC-USD"]) == 30  # crypto trades


# --- one path -----------------------------------------------------------------------------


def test_a_restart_continues_the_same_day() -> None:
    t0 = et(2026, 11, 24, 11)
    first, c1 = source(t0)
    before = [first.quote("MSFT", t0 + i) for i in range(0, 600)]
    # Another process, started later with the same seed: the same prices at the same times,
    # and the day it reports (open, prev_close) did not move.
    second, _ = source(t0 + 300)
    after = [second.quote("MSFT", t0 + i) for i in range(300, 600)]
    assert before[300:] == after
    c1.t = t0 + 599
    assert first.current_price("MSFT") == before[-1].price  # type: ignore[union-attr]
    other, _ = source(t0, seed=8)
    assert [other.quote("MSFT", t0 + i) for i in range(300, 600)] != after


def test_history_ends_at_the_live_price_and_does_not_move_it() -> None:
    t = et(2026, 11, 24, 14, 7) + 33.5
    sim, _ = source(t)
    live = sim.quote("NVDA")
    assert live is not None
    for interval, range_ in [(i, r) for i in INTERVAL_SECONDS for r in RANGE_DAYS]:
        if check_history_params(interval, range_) is not None:
            continue
        bars = asyncio.run(sim.history("NVDA", interval, range_))
        step = INTERVAL_SECONDS[interval]
        assert bars[-1].close == live.price, (interval, range_)
        assert bars[-1].time == (int(t) // step * step if step < 86400 else utc(2026, 11, 24))
        assert [b.time for b in bars] == sorted({b.time for b in bars})
        for bar in bars:
            assert bar.time % min(step, 86400) == 0
            assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
            assert bar.low > 0 and bar.volume > 0
    assert sim.quote("NVDA") == live


def test_ranges_count_sessions_or_days() -> None:
    sunday = et(2026, 11, 29, 12)
    sim, _ = source(sunday)
    # 1d on a Sunday is Friday's session (Yahoo's meaning), 5d the last five sessions.
    day = asyncio.run(sim.history("AAPL", "5m", "1d"))
    assert {datetime.fromtimestamp(b.time, NY).date() for b in day} == {date(2026, 11, 27)}
    five = asyncio.run(sim.history("AAPL", "1d", "5d"))
    assert [datetime.fromtimestamp(b.time, UTC).date().day for b in five] == [20, 23, 24, 25, 27]
    year = asyncio.run(sim.history("AAPL", "1d", "1y"))
    assert 245 <= len(year) <= 256
    crypto = asyncio.run(sim.history("BTC-USD", "1h", "5d"))
    # Four whole UTC days, and this one: 17 hours to 12:00 ET (17:00Z), then the one forming.
    assert len(crypto) == 4 * 24 + 18


def test_each_ticker_walks_its_own_path() -> None:
    t = et(2026, 11, 24, 10)
    sim, _ = source(t)

    def moves(ticker: str) -> list[float]:
        prices = [sim.quote(ticker, t + 10 * i).price for i in range(2000)]  # type: ignore[union-attr]
        return [math.log(b / a) for a, b in itertools.pairwise(prices)]

    a, b = moves("AAPL"), moves("MSFT")
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    corr = cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
    assert abs(corr) < 0.15


def test_a_minute_of_ticks_touches_its_high_and_low_and_stays_between() -> None:
    t = et(2026, 11, 24, 10, 15)
    sim, _ = source(t, tick_interval=0.5)
    for ticker in ("AAPL", "EURUSD=X", "BTC-USD", "ES=F"):
        before = sim.quote(ticker, t - 0.5)
        ticks = [sim.quote(ticker, t + 0.5 * i) for i in range(120)]
        assert before is not None and all(tick is not None for tick in ticks)
        bar = bars_from_ticks(ticks, 60, volume_before=before.volume)  # type: ignore[arg-type]
        assert len(bar) == 1 and bar[0].open == before.price  # a minute opens at the last trade
        drawn = asyncio.run(_history_at(sim, t + 59.9, ticker))
        assert drawn[-1] == bar[0], ticker


async def _history_at(sim: SimSource, at: float, ticker: str) -> list[Bar]:
    sim._now = lambda: at  # type: ignore[method-assign]
    return await sim.history(ticker, "1m", "1d")


# --- instruments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticker", "low", "high", "decimals"),
    [
        ("EURUSD=X", 0.85, 1.35, 5),
        ("JPY=X", 110.0, 200.0, 3),
        ("^GSPC", 3500.0, 9000.0, 2),
        ("^DJI", 28000.0, 65000.0, 2),
        ("BTC-USD", 40000.0, 200000.0, 2),
        ("DOGE-USD", 0.1, 1.0, 5),
        ("AAPL", 130.0, 380.0, 2),
        ("ES=F", 3500.0, 9000.0, 2),
    ],
)
def test_prices_are_plausible_and_in_the_instruments_precision(
    ticker: str, low: float, high: float, decimals: int
) -> None:
    sim, _ = source(et(2026, 11, 24, 11))
    for day in range(0, 365, 7):  # a year of Tuesdays: the walk stays near real levels
        tick = sim.quote(ticker, et(2026, 11, 24, 11) - day * 86400)
        if tick is None:
            continue
        assert low < tick.price < high, (ticker, tick.price)
        assert tick.price_decimals == decimals
        for value in (tick.price, tick.open, tick.high, tick.low, tick.prev_close):
            assert value is not None and round(value, decimals) == value


def test_a_stablecoin_holds_its_peg() -> None:
    # USDT-USD walked like bitcoin (60 % a year) drifted to 0.83; pegged, it stays at 1.00.
    sim, _ = source(et(2026, 11, 24, 11))
    for day in range(0, 365, 5):
        tick = sim.quote("USDT-USD", et(2026, 11, 24, 11) - day * 86400)
        assert tick is not None
        assert 0.99 < tick.price < 1.01, (day, tick.price)
        assert tick.low is not None and tick.high is not None
        assert 0.99 < tick.low <= tick.high < 1.01


def test_volume_follows_each_market() -> None:
    sim, _ = source(et(2026, 11, 24, 23))
    bars = asyncio.run(sim.history("AAPL", "1h", "1d"))
    by_hour = {datetime.fromtimestamp(b.time, NY).hour: b.volume for b in bars}
    # Thin pre- and post-market, a busy regular session.
    assert by_hour[5] * 5 < by_hour[10] and by_hour[18] * 5 < by_hour[15]
    # Crypto does not follow the US session: its night hours trade like its day hours.
    btc = asyncio.run(sim.history("BTC-USD", "1h", "5d"))
    night = [b.volume for b in btc if datetime.fromtimestamp(b.time, NY).hour in (1, 2, 3)]
    day = [b.volume for b in btc if datetime.fromtimestamp(b.time, NY).hour in (10, 11, 12)]
    assert 0.6 < sum(night) / sum(day) < 1.6
    # FX and indices report no volume (0, as Yahoo does), never an invented one.
    assert sim.quote("EURUSD=X", et(2026, 11, 24, 11)).volume == 0  # type: ignore[union-attr]
    assert sim.quote("^GSPC", et(2026, 11, 24, 11)).volume == 0  # type: ignore[union-attr]


# --- what it quotes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ticker", ["=", "---", "AAPL.", "ZZZZQ", "NEWCO", "XYZ.L", "not a ticker!"]
)
def test_unknown_tickers_are_refused(ticker: str) -> None:
    sim, _ = source(et(2026, 11, 24, 11))
    assert asyncio.run(sim.can_quote(ticker)) is False
    with pytest.raises((UnknownTicker, ValueError)):
        asyncio.run(sim.history(ticker, "5m", "1d"))


def test_listed_tickers_are_quoted_and_the_stream_skips_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = et(2026, 11, 24, 11)
    sim, clock = source(t)
    for ticker in ("AAPL", "aapl", " brk-b ", "^GSPC", "EURUSD=X", "BTC-USD", "ES=F", "SPY"):
        assert asyncio.run(sim.can_quote(ticker)) is True, ticker
    ticks = run_stream(sim, clock, {"AAPL", "ZZZZQ", "FAKE1"}, t + 5, monkeypatch)
    assert {tick.ticker for tick in ticks} == {"AAPL"}
    assert len(Directory.bundled()) >= 300
    assert SimSource.simulated is True and SimSource.name == "sim"


async def test_the_real_stream_ticks_on_its_grid_never_early() -> None:
    # Ticks fall on the epoch-aligned grid of the interval, each published at or after its
    # own time (a late wake-up skips to the current grid point, never bursts).
    sim = SimSource(seed=1, tick_interval=0.05, market_hours=False)
    emitted: list[tuple[float, int]] = []
    enough = asyncio.Event()

    async def emit(tick: Tick) -> None:
        assert tick.market_time is not None
        emitted.append((time.time() * 1000, tick.market_time))
        if len(emitted) == 6:
            enough.set()

    task = asyncio.create_task(sim.stream(lambda: frozenset({"AAPL"}), emit))
    try:
        await asyncio.wait_for(enough.wait(), 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    stamps = [stamp for _, stamp in emitted]
    assert all(stamp % 50 == 0 for stamp in stamps)
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert all(at >= stamp for at, stamp in emitted)
    assert sim.health.last_tick_ms is not None


def test_the_default_seed_is_stable_and_a_given_one_changes_the_path() -> None:
    # Without --sim-seed every instance (every start, every machine) draws the same
    # history: a restart must not rewrite the simulated past.
    t = et(2026, 11, 24, 11)
    a, b = SimSource(now=lambda: t), SimSource(now=lambda: t)
    assert a.seed == b.seed == DEFAULT_SEED
    assert a.quote("AAPL") == b.quote("AAPL") is not None
    assert asyncio.run(a.history("AAPL", "1d", "6mo")) == asyncio.run(
        b.history("AAPL", "1d", "6mo")
    )
    other = SimSource(seed=DEFAULT_SEED + 1, now=lambda: t).quote("AAPL")
    assert other is not None and other != a.quote("AAPL")
