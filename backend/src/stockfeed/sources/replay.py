"""The replay source: plays a recorded file of ticks back at a chosen speed.

The file format is replay_format.py's (docs/protocol.md#replay-file-format).

Playback
--------
- Every tick of the file is emitted, whatever `wanted()` says: the file defines what is
  being replayed (`tickers` lists its tickers, for the watchlist).
- Between two ticks the source waits `(next.market_time - prev.market_time) / 1000 / speed`
  seconds, at most `max_wait` (5 s by default), so that overnight and weekend gaps in a
  recording do not stall a demo for hours.
- Emitted `market_time` values are fresh: the first tick is stamped with the current time
  and each later one with the previous stamp plus the wait just made (never earlier than
  the clock). At speed 1 with no shortened gap this is the recorded time plus a constant
  shift; faster speeds compress the spacing by the same factor as the waits.
- With `loop=True` playback starts again at the end of the file; time keeps increasing.
- `volume` is re-based so that it stays a cumulative day volume of the replay: the
  recording's per-tick volume increases (a drop in the recorded cumulative volume is a new
  recorded day) are summed, and the sum starts again from zero when the emitted UTC date
  changes. Loops therefore continue the volume instead of jumping back. `open`, `high`,
  `low` and `prev_close` are passed through as recorded.
- `history()` builds OHLCV bars from the ticks emitted so far (emitted times, epoch-aligned
  UTC buckets, `1d` by UTC date), so a chart joins the live ticks without a jump.

`ticks_from_history_csv` turns a yfinance history CSV into such a tick sequence and
`replay_format.write_jsonl` writes one; the bundled `stockfeed/data/ea-15m.jsonl`
was made with them.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import math
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from stockfeed.models import Bar, Tick
from stockfeed.sources.base import (
    INTERVAL_SECONDS,
    RANGE_DAYS,
    Emit,
    Source,
    UnknownTicker,
    Wanted,
    check_history_params,
)
from stockfeed.sources.capabilities import Capabilities
from stockfeed.sources.replay_format import load_jsonl
from stockfeed.tickers import normalize_ticker

DEFAULT_MAX_WAIT_S = 5.0

# Bars are kept at two resolutions: 1-minute bars for as long as an intraday interval may
# reach back (1mo), hourly bars for the longest range (1y), so memory stays bounded however
# long a looping replay runs. Every interval is a whole number of minutes (1h and 1d of
# hours), and all buckets are epoch-aligned, so coarser bars are exact merges of finer ones.
_FINE_S = 60
_COARSE_S = 3600
_FINE_KEEP_S = (RANGE_DAYS["1mo"] + 1) * 86400
_COARSE_KEEP_S = (RANGE_DAYS["1y"] + 1) * 86400


_CSV_NAME = re.compile(r"^(?P<ticker>.+?)-\d+(?:m|h|d|wk|mo)(?:-history)?$", re.IGNORECASE)


def ticks_from_history_csv(
    path: str | Path, ticker: str | None = None, decimals: int = 4
) -> list[Tick]:
    """Turn a yfinance history CSV (Datetime/Date, Open, High, Low, Close, Volume, ...) into
    the tick sequence a live feed would have shown.

    Each bar becomes up to four ticks, a quarter of the bar apart: open, then low and high
    (low first on a rising bar, high first on a falling one), then close; repeated prices
    within a bar are dropped. `volume` is cumulative per trading day (the date in the
    timestamp's own time zone, i.e. the exchange's), the bar's volume spread over its ticks.
    `open`/`high`/`low` are the day's so far, `prev_close` the previous day's last price.
    The ticker defaults to the file name's prefix (`EA-15m-history.csv` -> `EA`). Prices
    are rounded to `decimals` places (Yahoo's float32 noise).
    """
    path = Path(path)
    if ticker is None:
        match = _CSV_NAME.match(path.stem)
        ticker = match.group("ticker") if match else path.stem
    ticker = normalize_ticker(ticker)
    rows = list(_read_history_rows(path, decimals))
    if not rows:
        raise ValueError(f"{path}: no usable bars")
    gaps = [b.start_ms - a.start_ms for a, b in itertools.pairwise(rows)]
    positive = [g for g in gaps if g > 0]
    bar_ms = min(positive) if positive else 60_000

    ticks: list[Tick] = []
    day: date | None = None
    day_open = day_high = day_low = 0.0
    day_volume = 0
    prev_close: float | None = None
    last_price: float | None = None
    for row in rows:
        if row.day != day:
            if last_price is not None:
                prev_close = last_price
            day = row.day
            day_open, day_high, day_low = row.open, row.open, row.open
            day_volume = 0
        if row.close >= row.open:
            path_prices = [row.open, row.low, row.high, row.close]
        else:
            path_prices = [row.open, row.high, row.low, row.close]
        points: list[tuple[int, float]] = []
        for slot, price in enumerate(path_prices):
            if points and points[-1][1] == price:
                continue
            points.append((row.start_ms + slot * bar_ms // 4, price))
        for k, (at_ms, price) in enumerate(points):
            day_high = max(day_high, price)
            day_low = min(day_low, price)
            cumulative = day_volume + round(row.volume * (k + 1) / len(points))
            ticks.append(
                Tick(
                    ticker=ticker,
                    price=price,
                    market_time=at_ms,
                    volume=cumulative,
                    open=day_open,
                    high=day_high,
                    low=day_low,
                    prev_close=prev_close,
                )
            )
        day_volume += row.volume
        last_price = row.close
    return ticks


@dataclass(slots=True, frozen=True)
class _CsvBar:
    start_ms: int
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: int


def _read_history_rows(path: Path, decimals: int) -> Iterator[_CsvBar]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for lineno, row in enumerate(reader, start=2):
            stamp = row.get("Datetime") or row.get("Date")
            if not stamp:
                raise ValueError(f"{path}:{lineno}: no Datetime or Date column")
            try:
                when = datetime.fromisoformat(stamp)
                values = [float(row[k] or "nan") for k in ("Open", "High", "Low", "Close")]
                volume_text = row.get("Volume") or "0"
                volume = float(volume_text)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: cannot read bar: {exc}") from None
            if not all(math.isfinite(v) and v > 0 for v in values):
                continue  # yfinance writes NaN rows for bars it has no prices for
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            open_, high, low, close = (round(v, decimals) for v in values)
            yield _CsvBar(
                start_ms=round(when.timestamp() * 1000),
                day=when.date(),
                open=open_,
                high=max(high, open_, close),
                low=min(low, open_, close),
                close=close,
                volume=int(volume) if math.isfinite(volume) and volume > 0 else 0,
            )


@dataclass(slots=True)
class _Candles:
    """One ticker's bars built from emitted ticks, at two resolutions (see _FINE_S)."""

    fine: dict[int, list[float]] = field(default_factory=dict)
    coarse: dict[int, list[float]] = field(default_factory=dict)
    last_s: float = 0.0

    def add(self, at_s: float, price: float, volume: int) -> None:
        self.last_s = max(self.last_s, at_s)
        for bars, size, keep in (
            (self.fine, _FINE_S, _FINE_KEEP_S),
            (self.coarse, _COARSE_S, _COARSE_KEEP_S),
        ):
            start = int(at_s // size) * size
            bar = bars.get(start)
            if bar is None:
                bars[start] = [price, price, price, price, float(volume)]
                cutoff = start - keep
                while True:
                    oldest = next(iter(bars))
                    if oldest >= cutoff:
                        break
                    del bars[oldest]
            else:
                bar[1] = max(bar[1], price)
                bar[2] = min(bar[2], price)
                bar[3] = price
                bar[4] += volume

    def bars(self, interval: str, range_: str) -> list[Bar]:
        step = INTERVAL_SECONDS[interval]
        source = self.fine if step < _COARSE_S else self.coarse
        if not source:
            return []
        last_start = int(self.last_s // step) * step
        first_start = last_start - (RANGE_DAYS[range_] * 86400 // step - 1) * step
        merged: dict[int, list[float]] = {}
        for start, (o, h, lo, c, v) in source.items():
            bucket = start // step * step
            if bucket < first_start:
                continue
            bar = merged.get(bucket)
            if bar is None:
                merged[bucket] = [o, h, lo, c, v]
            else:
                bar[1] = max(bar[1], h)
                bar[2] = min(bar[2], lo)
                bar[3] = c
                bar[4] += v
        return [
            Bar(start, o, h, lo, c, int(v)) for start, (o, h, lo, c, v) in sorted(merged.items())
        ]


class ReplaySource(Source):
    name = "replay"
    simulated = False
    # A recording's terms are its recorder's: the bundled one is Yahoo's bars.
    capabilities = Capabilities(
        needs_key=False, event_kinds=frozenset({"summary"}), redistribution="unknown"
    )

    def __init__(
        self,
        path: str | Path,
        speed: float = 1.0,
        loop: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
        max_wait: float = DEFAULT_MAX_WAIT_S,
        ticks: list[Tick] | None = None,
    ) -> None:
        """`ticks`: play these (kept updates, from the market-data store) rather than the
        file at `path` (then only a name for health)."""
        super().__init__()
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if not max_wait >= 0:
            raise ValueError(f"max_wait must not be negative, got {max_wait}")
        self.path = Path(path)
        self.speed = speed
        self.loop = loop
        self.max_wait = max_wait
        self._sleep = sleep
        self._now = now
        self._ticks = load_jsonl(self.path) if ticks is None else ticks
        self._tickers = tuple(dict.fromkeys(t.ticker for t in self._ticks))
        times = [t.market_time for t in self._ticks if t.market_time is not None]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        positive = [g for g in gaps if g > 0]
        # Between the end of the file and its start again: a typical step, not a jump.
        self._loop_gap_ms = statistics.median(positive) if positive else 1000.0
        # Playback position, kept across stream() calls so a restarted stream resumes.
        self._index = 0
        self._passes = 0
        self._clock_ms: float | None = None
        self._recorded_volume: dict[str, int | None] = {}
        self._day_volume: dict[str, int] = {}
        self._volume_day: dict[str, int] = {}
        self._candles: dict[str, _Candles] = {}
        self.health.extra["path"] = str(self.path)
        self.health.extra["passes"] = 0

    @property
    def tickers(self) -> tuple[str, ...]:
        """The file's tickers, in order of first appearance."""
        return self._tickers

    async def can_quote(self, ticker: str) -> bool | None:
        return ticker.upper() in self._tickers

    def describe_state(self) -> dict[str, object]:
        """Health's `source.replay_clock_ms`: the recorded time of the last update played
        (what a dashboard shows as the replay's clock), and how many passes so far."""
        return {
            "replay_clock_ms": self.health.extra.get("replay_clock_ms"),
            "replay_passes": self._passes,
        }

    async def stream(self, wanted: Wanted, emit: Emit) -> None:
        # `wanted` is not consulted: the file decides what is replayed (see module docstring).
        now_ms = self._now() * 1000.0
        self._clock_ms = now_ms if self._clock_ms is None else max(self._clock_ms, now_ms)
        while True:
            if self._index >= len(self._ticks):
                if not self.loop:
                    self.health.extra["finished"] = True
                    await asyncio.get_running_loop().create_future()  # idle until cancelled
                self._index = 0
                self._recorded_volume.clear()  # a new pass: no volume delta across the seam
                self._passes += 1
                self.health.extra["passes"] = self._passes
                gap_ms = self._loop_gap_ms
            elif self._index == 0:
                gap_ms = 0.0
            else:
                previous = self._ticks[self._index - 1].market_time
                current = self._ticks[self._index].market_time
                assert previous is not None and current is not None
                gap_ms = float(current - previous)
            if gap_ms > 0:
                wait = min(gap_ms / 1000.0 / self.speed, self.max_wait)
                await self._sleep(wait)
                self._clock_ms += wait * 1000.0
            self._clock_ms = max(self._clock_ms, self._now() * 1000.0)
            record = self._ticks[self._index]
            self._index += 1
            if record.market_time is not None:
                # The time being replayed, as recorded (the dashboard's replay clock).
                self.health.extra["replay_clock_ms"] = record.market_time
            await emit(self._restamp(record, self._clock_ms))
            self.health.ok()

    def _restamp(self, record: Tick, clock_ms: float) -> Tick:
        ticker = record.ticker
        market_time = int(clock_ms)
        volume: int | None = None
        delta = 0
        if record.volume is not None:
            recorded = int(record.volume)  # the replay format's volume is whole shares
            before = self._recorded_volume.get(ticker)
            if before is not None:
                # A drop in the recorded cumulative volume starts a new recorded day.
                delta = recorded - before if recorded >= before else recorded
            self._recorded_volume[ticker] = recorded
            day = market_time // 86_400_000
            if self._volume_day.get(ticker) != day:
                self._volume_day[ticker] = day
                self._day_volume[ticker] = 0
            self._day_volume[ticker] += delta
            volume = self._day_volume[ticker]
        candles = self._candles.setdefault(ticker, _Candles())
        candles.add(market_time / 1000.0, record.price, delta)
        return Tick(
            ticker=ticker,
            price=record.price,
            market_time=market_time,
            volume=volume,
            open=record.open,
            high=record.high,
            low=record.low,
            prev_close=record.prev_close,
            change=record.change,
            change_percent=record.change_percent,
            price_decimals=record.price_decimals,
        )

    async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        problem = check_history_params(interval, range_)
        if problem is not None:
            raise ValueError(problem)
        ticker = ticker.upper()
        if ticker not in self._tickers:
            raise UnknownTicker(f"{ticker} is not in the replay file {self.path.name}")
        candles = self._candles.get(ticker)
        return [] if candles is None else candles.bars(interval, range_)
