"""The replay source: the bundled EA recording, pacing, looping, validation, history."""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import statistics
from datetime import datetime
from pathlib import Path

import pytest

import stockfeed
from stockfeed.models import Tick
from stockfeed.sources.base import UnknownTicker
from stockfeed.sources.replay import ReplaySource, ticks_from_history_csv
from stockfeed.sources.replay_format import load_jsonl, write_jsonl

BUNDLED = Path(stockfeed.__file__).parent / "data" / "ea-15m.jsonl"
YAHOO_CSV = Path("/work/shared/fixtures/yahoo/EA-15m-history.csv")
NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class Enough(Exception):
    """Raised from emit to stop a stream after the ticks a test needs."""


class Recorder:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.ticks: list[Tick] = []
        self.waits: list[float] = []
        self.waits_before: list[float] = []  # wait made just before each tick (0 if none)
        self._pending = 0.0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._pending += seconds

    async def emit(self, tick: Tick) -> None:
        self.ticks.append(tick)
        self.waits_before.append(self._pending)
        self._pending = 0.0
        if len(self.ticks) >= self.limit:
            raise Enough


async def play(source: ReplaySource, recorder: Recorder) -> None:
    with pytest.raises(Enough):
        await source.stream(lambda: frozenset(), recorder.emit)


def make(path: Path, recorder: Recorder, **kwargs: object) -> ReplaySource:
    return ReplaySource(path, sleep=recorder.sleep, now=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def write_lines(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "ticks.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tick_line(ticker: str, price: float, t: int, volume: int | None = None) -> str:
    obj: dict[str, object] = {"ticker": ticker, "price": price, "market_time": t}
    if volume is not None:
        obj["volume"] = volume
    return json.dumps(obj)


def test_bundled_file_loads() -> None:
    ticks = load_jsonl(BUNDLED)
    assert len(ticks) > 900
    assert {t.ticker for t in ticks} == {"EA"}
    times = [t.market_time or 0 for t in ticks]
    assert times == sorted(times) and 0 not in times
    assert 195 < statistics.median(t.price for t in ticks) < 210  # a real EA price path
    source = ReplaySource(BUNDLED)
    assert source.tickers == ("EA",)
    assert source.name == "replay" and source.simulated is False


async def test_can_quote_only_the_file_tickers() -> None:
    source = ReplaySource(BUNDLED)
    assert await source.can_quote("EA")
    assert await source.can_quote("ea")
    assert not await source.can_quote("AAPL")


async def test_ticks_come_in_order_with_spacing_divided_by_speed() -> None:
    recorded = load_jsonl(BUNDLED)
    rec = Recorder(limit=120)
    source = make(BUNDLED, rec, speed=60.0)
    await play(source, rec)
    assert [t.price for t in rec.ticks] == [t.price for t in recorded[:120]]
    gaps = [b.market_time - a.market_time for a, b in itertools.pairwise(recorded[:120])]  # type: ignore[operator]
    expected = [0.0, *(min(gap / 1000 / 60.0, 5.0) for gap in gaps)]
    assert rec.waits_before == pytest.approx(expected)
    assert 5.0 in rec.waits_before  # the night's gap is shortened, not waited for
    assert 3.75 in rec.waits_before  # a quarter of a 15-minute bar at 60x
    # Fresh timestamps: replay starts at "now", spaced like the waits.
    assert rec.ticks[0].market_time == int(NOW * 1000)
    for prev, tick, wait in zip(rec.ticks, rec.ticks[1:], rec.waits_before[1:], strict=False):
        assert tick.market_time - prev.market_time == pytest.approx(wait * 1000, abs=1)  # type: ignore[operator]


async def test_speed_one_keeps_recorded_spacing(tmp_path: Path) -> None:
    lines = [tick_line("AB", 10.0, 1000), tick_line("AB", 10.5, 3500), tick_line("CD", 5, 4000)]
    rec = Recorder(limit=3)
    source = make(write_lines(tmp_path, lines), rec, speed=1.0)
    await play(source, rec)
    assert rec.waits == pytest.approx([2.5, 0.5])
    assert [t.market_time for t in rec.ticks] == [int(NOW * 1000) + d for d in (0, 2500, 3000)]
    assert [t.ticker for t in rec.ticks] == ["AB", "AB", "CD"]  # wanted() was empty


async def test_timestamps_never_fall_behind_the_clock(tmp_path: Path) -> None:
    clock = [NOW]

    async def slow_sleep(seconds: float) -> None:
        clock[0] += seconds + 0.25  # the real wait overshoots

    ticks: list[Tick] = []

    async def emit(tick: Tick) -> None:
        ticks.append(tick)
        if len(ticks) == 3:
            raise Enough

    path = write_lines(
        tmp_path, [tick_line("AB", 1, 0), tick_line("AB", 2, 1000), tick_line("AB", 3, 2000)]
    )
    source = ReplaySource(path, sleep=slow_sleep, now=lambda: clock[0])
    with pytest.raises(Enough):
        await source.stream(lambda: frozenset(), emit)
    assert [t.market_time for t in ticks] == [int(NOW * 1000) + d for d in (0, 1250, 2500)]


async def test_loop_restarts_with_increasing_time_and_continuing_volume(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path,
        [
            tick_line("AB", 10.0, 1_000, volume=100),
            tick_line("AB", 11.0, 2_000, volume=250),
            tick_line("AB", 12.0, 4_000, volume=300),
        ],
    )
    rec = Recorder(limit=9)
    source = make(path, rec, speed=2.0)
    await play(source, rec)
    assert [t.price for t in rec.ticks] == [10.0, 11.0, 12.0] * 3
    times = [t.market_time for t in rec.ticks]
    assert all(b > a for a, b in itertools.pairwise(times))  # type: ignore[operator]
    volumes = [t.volume for t in rec.ticks]
    # Per-tick increases of the recording, summed; a pass adds on, it never jumps back.
    assert volumes == [0, 150, 200, 200, 350, 400, 400, 550, 600]
    assert source.health.extra["passes"] == 2


async def test_without_loop_the_stream_idles_at_the_end(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [tick_line("AB", 1, 0), tick_line("AB", 2, 10)])
    seen: list[Tick] = []

    async def emit(tick: Tick) -> None:
        seen.append(tick)

    async def no_sleep(seconds: float) -> None:
        pass

    source = ReplaySource(path, loop=False, sleep=no_sleep)
    task = asyncio.create_task(source.stream(lambda: frozenset(), emit))
    for _ in range(100):
        await asyncio.sleep(0)
    assert not task.done()
    assert [t.price for t in seen] == [1, 2]
    assert source.health.extra.get("finished") is True
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_restarted_stream_resumes_where_it_stopped(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [tick_line("AB", p, p * 1000) for p in range(1, 7)])
    source = ReplaySource(path, sleep=Recorder(0).sleep, now=lambda: NOW)
    first, second = Recorder(limit=2), Recorder(limit=3)
    await play(source, first)
    await play(source, second)
    assert [t.price for t in first.ticks + second.ticks] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"ticker":"AB","price":1.5', "not valid JSON"),
        ('{"ticker":"AB","market_time":5}', "price"),
        ('{"price":1.5,"market_time":5}', "ticker"),
        ('{"ticker":"AB","price":1.5}', "market_time"),
        ('{"ticker":"AB","price":-1,"market_time":5}', "positive"),
        ('{"ticker":"AB","price":"1.5","market_time":5}', "number"),
        ('{"ticker":"AB","price":1.5,"market_time":5.5}', "whole"),
        ('{"ticker":"A B!","price":1.5,"market_time":5}', "invalid ticker"),
        ('{"ticker":"AB","price":1.5,"market_time":5,"volume":-3}', "volume"),
        ('{"ticker":"AB","price":1.5,"market_time":5,"high":true}', "high"),
        ('["AB",1.5,5]', "object"),
        ('{"ticker":"AB","price":1.5,"market_time":1}', "sorted"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = write_lines(
        tmp_path,
        [
            "# a recording",
            tick_line("AB", 1.0, 2),
            "",
            tick_line("AB", 1.1, 3),
            bad_line,
            tick_line("AB", 1.2, 9),
        ],
    )
    with pytest.raises(ValueError) as info:
        ReplaySource(path)
    assert f"{path}:5:" in str(info.value)
    assert message in str(info.value)


def test_empty_or_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    empty = write_lines(tmp_path, ["# nothing here", ""])
    with pytest.raises(ValueError, match="no ticks"):
        ReplaySource(empty)
    with pytest.raises(ValueError, match="cannot read"):
        ReplaySource(tmp_path / "missing.jsonl")


def test_optional_fields_pass_through_and_stay_null(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path,
        [
            '{"ticker":"ab","price":2,"market_time":7,"open":1.5,"high":2.5,"low":1.25,'
            '"prev_close":1.75,"extra":"ignored"}',
            '{"ticker":"AB","price":3,"market_time":8,"volume":null,"open":null}',
        ],
    )
    first, second = load_jsonl(path)
    assert first == Tick("AB", 2.0, 7, None, 1.5, 2.5, 1.25, 1.75)
    assert second == Tick("AB", 3.0, 8)


def yahoo_rows() -> list[dict[str, str]]:
    with YAHOO_CSV.open(newline="") as handle:
        return list(csv.DictReader(handle))


async def test_history_rebuilds_the_real_bars() -> None:
    # Played at speed 1 with no gap shortened and "now" at the recording's start, the
    # emitted times are the recorded ones, so 15m history must give back Yahoo's bars.
    recorded = load_jsonl(BUNDLED)
    rec = Recorder(limit=len(recorded))
    source = ReplaySource(
        BUNDLED,
        sleep=rec.sleep,
        now=lambda: recorded[0].market_time / 1000,  # type: ignore[operator]
        max_wait=float("inf"),
    )
    await play(source, rec)
    assert [t.market_time for t in rec.ticks] == [t.market_time for t in recorded]
    bars = await source.history("EA", "15m", "1mo")
    rows = yahoo_rows()
    assert len(bars) == len(rows) == 319
    for bar, row in zip(bars, rows, strict=True):
        assert bar.time == int(datetime.fromisoformat(row["Datetime"]).timestamp())
        assert bar.open == pytest.approx(float(row["Open"]), abs=6e-5)
        assert bar.high == pytest.approx(float(row["High"]), abs=6e-5)
        assert bar.low == pytest.approx(float(row["Low"]), abs=6e-5)
        assert bar.close == pytest.approx(float(row["Close"]), abs=6e-5)
        assert bar.volume == int(row["Volume"])
    hourly = await source.history("EA", "1h", "1mo")
    assert all(b.time % 3600 == 0 for b in hourly)
    assert sum(b.volume for b in hourly) == sum(int(r["Volume"]) for r in rows)
    daily = await source.history("EA", "1d", "1mo")
    assert all(b.time % 86400 == 0 for b in daily)
    assert len(daily) == 7  # 04:00-20:00 ET is 08:00-24:00 UTC: one UTC date per session
    assert daily[-1].close == recorded[-1].price


async def test_history_covers_only_what_was_replayed() -> None:
    rec = Recorder(limit=30)
    source = make(BUNDLED, rec, speed=1000.0)
    assert await source.history("EA", "1m", "1d") == []
    await play(source, rec)
    bars = await source.history("EA", "1m", "5d")
    assert bars[0].time == rec.ticks[0].market_time // 60_000 * 60  # type: ignore[operator]
    assert bars[-1].time == rec.ticks[-1].market_time // 60_000 * 60  # type: ignore[operator]
    assert bars[-1].close == rec.ticks[-1].price
    assert all(b.time % 60 == 0 for b in bars)
    assert max(b.high for b in bars) == max(t.price for t in rec.ticks)
    assert min(b.low for b in bars) == min(t.price for t in rec.ticks)
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
    volumes = [t.volume for t in rec.ticks]
    assert sum(b.volume for b in bars) == volumes[-1]


async def test_history_errors() -> None:
    source = ReplaySource(BUNDLED)
    with pytest.raises(UnknownTicker):
        await source.history("AAPL", "5m", "1d")
    with pytest.raises(ValueError):
        await source.history("EA", "1m", "1y")
    with pytest.raises(ValueError):
        await source.history("EA", "7m", "1d")


def test_csv_conversion_orders_each_bar_and_accumulates_volume(tmp_path: Path) -> None:
    csv_path = tmp_path / "XYZ-15m-history.csv"
    csv_path.write_text(
        "Datetime,Open,High,Low,Close,Adj Close,Volume,Dividends,Stock Splits\n"
        "2026-05-26 09:30:00-04:00,10,12,9,11,11,100,0,0\n"  # rising: open, low, high, close
        "2026-05-26 09:45:00-04:00,11,11.5,10,10.5,10.5,40,0,0\n"  # falling: open, high, low
        "2026-05-26 10:00:00-04:00,,,,,,,0,0\n"  # yfinance's empty row: skipped
        "2026-05-27 09:30:00-04:00,10.5,10.5,10.5,10.5,10.5,6,0,0\n"  # flat: one tick
    )
    ticks = ticks_from_history_csv(csv_path)
    assert {t.ticker for t in ticks} == {"XYZ"}
    assert [t.price for t in ticks] == [10, 9, 12, 11, 11, 11.5, 10, 10.5, 10.5]
    start = int(datetime.fromisoformat("2026-05-26 09:30:00-04:00").timestamp() * 1000)
    quarter = 225_000
    assert [t.market_time - start for t in ticks[:8]] == [  # type: ignore[operator]
        0,
        quarter,
        2 * quarter,
        3 * quarter,
        4 * quarter,
        5 * quarter,
        6 * quarter,
        7 * quarter,
    ]
    assert [t.volume for t in ticks] == [25, 50, 75, 100, 110, 120, 130, 140, 6]
    assert ticks[3].high == 12 and ticks[3].low == 9 and ticks[3].open == 10
    assert ticks[3].prev_close is None
    assert ticks[-1].prev_close == 10.5 and ticks[-1].open == 10.5  # a new day


def test_bundled_file_is_the_converted_yahoo_csv(tmp_path: Path) -> None:
    converted = ticks_from_history_csv(YAHOO_CSV)
    assert load_jsonl(BUNDLED) == converted
    out = tmp_path / "round.jsonl"
    assert write_jsonl(converted, out, header="made in a test\nsecond line") == len(converted)
    assert out.read_text().startswith("# made in a test\n# second line\n")
    assert load_jsonl(out) == converted
