"""The simulator: real instruments trading on their market's calendar, from one path.

What it quotes: the symbols of its directory (sources/symbols.py: a few hundred real,
well-known equities, ETFs, indices, FX pairs, crypto and futures), each near its real
price level and in its own precision (`price_decimals`: EUR/USD in 5 decimals, USD/JPY
in 3). Anything else is `unknown_ticker`: the simulator never makes up an instrument.

When: with market hours on (the default), each instrument trades its market's days
(market_hours.py): US equities and ETFs from the 04:00 pre-market to the end of the
post-market on XNYS sessions (holidays, half days and DST from the calendar), with thin
volume outside the regular session; indices in the regular session only; crypto around
the clock on UTC days; FX five days a week, each day from 17:00 to 17:00 New York time;
futures CME Globex hours. Nothing trades when the market is closed: a closed market's
last quote is published once (its last trade, with its own `market_time`), never a new
one. With market hours off (`STOCKFEED_SIM_MARKET_HOURS=false`, for demos at night), every
instrument trades around the clock on UTC days, and `market_status` says so (`SIM`).

One path. Everything the simulator shows (live ticks, their day fields, history bars of
every interval) is read from one deterministic path per (seed, ticker, trading day), so
the bars drawn for the past are exactly what the stream emitted then, and a restart with
the same seed continues the same day (the price at time t depends on the seed, the ticker
and t only):

- The day's close is the ticker's typical price times exp(X), X a mean-reverting walk
  over calendar days (a moving average of per-day draws, half-life 90 days), so any day's
  close is computed from a few hundred draws, without walking from the beginning of time.
  It is the close of the day's regular session: for what trades a post-market after it
  (US equities, ETFs), the day's last trade is that close moved by the post-market's own
  draw (`_day_last`). A day's `prev_close` is the previous trading day's close, its
  regular close, never its after-hours last print (what quote sites measure `change`
  from); once the regular session has closed, its ticks say that close
  (`regular_close`).
- The minutes of a day are a Brownian bridge, in log price, from the previous day's last
  trade through the day's close at the end of its regular session to the day's last
  trade, with more movement and volume in the regular session (a U shape) and a gap at
  the open after a break. Each minute has its open (the previous minute's close), high,
  low, close and volume. A daily bar (`1d`) is the regular session's, as quote sites
  draw them: its close is the regular close, pre- and post-market trades are not in it.
- Ticks fall on a fixed grid of `tick_interval` (epoch-aligned). A minute's ticks start
  at its open, end at its close, touch its high and its low once each and stay between
  them; its volume is spread evenly over its ticks. So a minute bar built from the ticks
  is the history's bar, and the day's open, high, low and volume are those of the day's
  bars up to the tick.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from stockfeed.market_hours import CRYPTO, FX, SIM, MarketClock, TradingDay
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
from stockfeed.sources.symbols import Directory, Listing, SymbolInfo
from stockfeed.tickers import InvalidTicker, normalize_ticker

log = logging.getLogger(__name__)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

# Annual volatility by instrument type; a day's share is this / sqrt(365) (calendar days:
# the daily walk below moves every calendar day, trading or not).
ANNUAL_VOLATILITY = {
    "equity": 0.30,
    "etf": 0.18,
    "index": 0.16,
    "future": 0.18,
    "fx": 0.08,
    "crypto": 0.60,
}
# Stablecoins hold their peg: a crypto pair whose base is one of these moves like a pegged
# currency (a tenth of a cent or so), not like bitcoin, so USDT-USD trades near 1.00.
STABLECOINS = frozenset({"USDT", "USDC", "DAI", "BUSD", "TUSD", "USDP", "PYUSD", "FDUSD", "USDE"})
PEGGED_VOLATILITY = 0.002
# The daily walk's pull back to the typical price: a half-life of 90 days, so a simulator
# left running for months stays near real levels. X is a moving average of the last
# DAILY_TERMS days' draws (weights REVERSION**k), which is what makes any day's close
# computable on its own.
REVERSION = 0.5 ** (1 / 90)
DAILY_TERMS = 512
_DAILY_BLOCK = 64  # per-day draws are generated this many days at a time
# Relative movement outside the regular session (pre/post-market, overnight futures).
QUIET_MOVE = 0.3
# Relative volume outside the regular session: thin pre- and post-market trading.
QUIET_VOLUME = 0.06
# Variance of the gap at a day's open after a break, in days of movement.
GAP_DAYS = 0.3
# A regular US session's minutes: a listing's typical volume is spread over them.
_REGULAR_MINUTES = 390
# Days kept per ticker for the live stream (the current one, and the one before it).
MAX_IDLE_TICKERS = 1000
# History bars built between yields to the event loop (~0.3 ms of Python each chunk), so
# a 7,200-bar answer never holds the loop (and every WebSocket client's updates).
HISTORY_CHUNK = 50
# Sessions of the ranges that count sessions (Yahoo's: 1d is the current or last session).
SESSION_RANGES = {"1d": 1, "5d": 5}
# The seed without --sim-seed: fixed, so every start and every machine draws the same
# history (a restart must not rewrite the simulated past).
DEFAULT_SEED = 0

_US_SESSION_TYPES = frozenset({"equity", "etf", "index", "future"})


@dataclass(slots=True)
class _Day:
    """One trading day of one ticker: its minutes and what traded in them."""

    day: TradingDay
    prev_close: float  # the previous day's regular close
    regular_close: float  # this day's: its ticks from the close on say it
    decimals: int
    times: Ints  # minute start, epoch s
    first_k: Ints  # grid index of each minute's first tick
    n: Ints  # ticks in each minute (0: no trade, no bar)
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Ints
    high_at: Ints  # tick position of the high within its minute
    low_at: Ints
    traded: npt.NDArray[np.bool_]
    # Prefix figures (the day so far, before each minute), made on first live use.
    high_before: Floats | None = None
    low_before: Floats | None = None
    volume_before: Ints | None = None
    first_price: float = 0.0  # the day's open: its first trade
    last_minute: int = -1  # the day's last minute with a trade (-1: none)


@dataclass(frozen=True, slots=True)
class _Shape:
    minutes: int
    offsets: Ints  # minute starts from the day's start, seconds
    move_sd: Floats  # sqrt of each minute's share of the day's variance
    move_spent: Floats  # the shares summed (0 first): how much of the day has moved
    busy: Floats  # relative volume
    all_traded: bool  # the tick grid puts a tick in every minute
    all_four: bool  # and at least four (open, high, low, close)


def _activity(
    kind: str, start: int, offsets: Ints, regular: list[TradingDay]
) -> tuple[Floats, Floats]:
    """Relative movement and volume of each minute: a U shape over the US regular session
    for what trades with it (thin outside it), flat for crypto, FX busiest when London
    and New York overlap (crypto and FX volume does not follow the US session)."""
    times = start + offsets
    ones = np.ones(len(times))
    if kind == "fx":
        hour = (times % 86400) / 3600.0
        busy = 0.6 + 0.8 * np.exp(-(((hour - 14.0) / 3.0) ** 2))
        return busy, busy
    if kind not in _US_SESSION_TYPES:
        return ones, ones
    move = ones * QUIET_MOVE
    busy = ones * QUIET_VOLUME
    for session in regular:
        inside = (times >= session.open) & (times < session.close)
        since_open = (times - session.open) / 60.0
        to_close = (session.close - times) / 60.0
        shape = 1.0 + 2.5 * np.exp(-since_open / 30.0) + 2.0 * np.exp(-to_close / 30.0)
        move = np.where(inside, 1.0, move)
        busy = np.where(inside, shape, busy)
    return move, busy


@dataclass(slots=True)
class _Live:
    """What the stream keeps per ticker: the day it trades and that day's current minute."""

    day: _Day
    minute: int = -1
    # The current minute's ticks: prices, and the day's high and low after each one.
    prices: list[float] | None = None
    highs: list[float] | None = None
    lows: list[float] | None = None


class SimSource(Source):
    name: ClassVar[str] = "sim"
    simulated: ClassVar[bool] = True
    capabilities = Capabilities(
        needs_key=False,
        asset_classes=frozenset({"equity", "etf", "index", "crypto", "fx", "future"}),
        event_kinds=frozenset({"summary"}),
        redistribution="none",  # made up here: yours to show anyone
        history=True,
        directory=True,
    )

    def __init__(
        self,
        seed: int | None = None,
        tick_interval: float = 1.0,
        *,
        market_hours: bool = True,
        clock: MarketClock | None = None,
        directory: Directory | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if tick_interval <= 0:
            raise ValueError("tick_interval must be positive")
        # Without a seed, the fixed default: the same history on every start.
        self.seed = DEFAULT_SEED if seed is None else seed
        self.tick_interval = tick_interval
        # The tick grid in whole milliseconds: integer arithmetic decides which minute a
        # tick falls in, the same way in the stream and in history.
        self._step_ms = max(1, round(tick_interval * 1000))
        self.market_hours = market_hours
        self.clock = clock or MarketClock()
        # Off: one market open around the clock (health and market_status say `SIM`).
        self.market_clock = None if market_hours else MarketClock(always_open=True)
        self.directory = directory or Directory.bundled()
        self._now = now
        self._live: dict[str, _Live] = {}
        self._closes: dict[tuple[str, date], float] = {}
        self._lasts: dict[tuple[str, date], float] = {}
        self._draws: dict[tuple[str, int], Floats] = {}
        self._shapes: dict[tuple[object, ...], _Shape] = {}
        self._full_n: dict[int, Ints] = {}
        # Daily bars of finished days (what `1d` history asks again and again).
        self._summaries: dict[tuple[str, date], Bar] = {}
        # Tickers whose latest trade went out: a market that closes, or a closed one
        # asked for again, publishes nothing more (the store keeps the last quote).
        self._announced: set[str] = set()
        self._closed_until: dict[str, float] = {}  # ticker -> its next day's start

    # -- the path ------------------------------------------------------------------------

    def _listing(self, ticker: str) -> Listing:
        listing = self.directory.get(ticker)
        if listing is None:
            raise UnknownTicker(f"the simulator does not list {ticker} (see /api/symbols)")
        return listing

    def schedule(self, ticker: str) -> str:
        listing = self.directory.get(ticker)
        if not self.market_hours:
            return SIM
        return self.clock.schedule(ticker, listing.info.type if listing else None)

    def _rng(self, ticker: str, *parts: int) -> np.random.Generator:
        # One stream per (seed, ticker, parts), from a 128-bit hash of them.
        key = ":".join(str(p) for p in (self.seed, ticker, *parts)).encode()
        entropy = int.from_bytes(hashlib.blake2b(key, digest_size=16).digest(), "big")
        return np.random.Generator(np.random.PCG64(entropy))

    def _daily_sd(self, listing: Listing) -> float:
        return _annual_volatility(listing) / math.sqrt(365.0)

    def _day_close(self, ticker: str, listing: Listing, day: date) -> float:
        """The close of `ticker` on `day`: its typical price times exp(X(day)), rounded."""
        key = (ticker, day)
        found = self._closes.get(key)
        if found is not None:
            return found
        ordinal = day.toordinal()
        first = ordinal - DAILY_TERMS + 1
        blocks = range(first // _DAILY_BLOCK, ordinal // _DAILY_BLOCK + 1)
        draws = np.concatenate([self._daily_draws(ticker, b) for b in blocks])
        offset = first - blocks[0] * _DAILY_BLOCK
        window = draws[offset : offset + DAILY_TERMS][::-1]  # today first
        sd = self._daily_sd(listing)
        # Scaled so that X's spread is the one of an unrestrained walk over ~60 days.
        weights = REVERSION ** np.arange(DAILY_TERMS)
        x = float(sd * np.dot(weights, window))
        close = _round(listing.info.price_decimals, listing.price * math.exp(x))
        if len(self._closes) > 50_000:
            self._closes.clear()
        self._closes[key] = close
        return close

    def _regular_end(self, day: TradingDay, minutes: int) -> int:
        """The path point (minutes from the day's start) at its regular session's close:
        the day's end when nothing trades after the close."""
        return min(minutes, (day.close - day.start) // 60)

    def _day_last(self, ticker: str, listing: Listing, schedule: str, day: TradingDay) -> float:
        """The day's last trade: its close, moved by a post-market when it has one (a draw
        of its own, so the next day's path can start from it without building this day)."""
        close = self._day_close(ticker, listing, day.date)
        if day.close >= day.end:
            return close
        key = (ticker, day.date)
        found = self._lasts.get(key)
        if found is not None:
            return found
        shape = self._shape(listing, schedule, day)
        share = 1.0 - float(shape.move_spent[self._regular_end(day, shape.minutes)])
        draw = float(self._rng(ticker, 3, day.date.toordinal()).standard_normal())
        sd = self._daily_sd(listing) * math.sqrt(max(share, 0.0))
        last = _round(listing.info.price_decimals, close * math.exp(sd * draw))
        if len(self._lasts) > 50_000:
            self._lasts.clear()
        self._lasts[key] = last
        return last

    def _daily_draws(self, ticker: str, block: int) -> Floats:
        key = (ticker, block)
        found = self._draws.get(key)
        if found is None:
            if len(self._draws) > 20_000:
                self._draws.clear()
            found = self._draws[key] = self._rng(ticker, 0, block).standard_normal(_DAILY_BLOCK)
        return found

    def _previous(self, schedule: str, day: TradingDay) -> TradingDay:
        if schedule in (SIM, CRYPTO):
            start = day.start - 86400
            return TradingDay(
                date.fromordinal(day.date.toordinal() - 1), start, day.start, start, day.start
            )
        return self.clock.previous_day(schedule, day)

    def _build(
        self,
        ticker: str,
        listing: Listing,
        schedule: str,
        day: TradingDay,
        previous: TradingDay | None = None,
    ) -> _Day:
        """The minutes of one trading day (see the module docstring), vectorized: a few
        dozen array operations a day; what depends only on the day's layout (its minutes,
        its session times) is made once (`_shape`)."""
        decimals = listing.info.price_decimals or 2
        previous = previous or self._previous(schedule, day)
        prev_close = self._day_close(ticker, listing, previous.date)
        start_price = self._day_last(ticker, listing, schedule, previous)
        close = self._day_close(ticker, listing, day.date)
        last = self._day_last(ticker, listing, schedule, day)
        shape = self._shape(listing, schedule, day)
        minutes = shape.minutes
        first_k, n = self._grid(day.start, minutes)

        rng = self._rng(ticker, 1, day.date.toordinal())
        normal = rng.standard_normal(4 * minutes + 1)
        uniform = rng.random(3 * minutes)
        day_sd = self._daily_sd(listing)
        gap_sd = day_sd * math.sqrt(GAP_DAYS) if day.start > previous.end else 0.0
        # The day's movement shared by its minutes as the shape says, after a gap at the
        # open when the market had a break.
        minute_sd = day_sd * shape.move_sd
        walk = np.cumsum(normal[: minutes + 1] * np.concatenate(([gap_sd], minute_sd)))
        spent = gap_sd * gap_sd + day_sd * day_sd * shape.move_spent
        to_close = math.log(close) - math.log(start_price)
        r = self._regular_end(day, minutes)
        # The bridge: the walk, bent so that it passes exactly through the day's close at
        # the end of its regular session, and (a post-market after it) ends at its last.
        if r >= minutes:
            path = walk - spent / spent[-1] * (walk[-1] - to_close)
        else:
            to_last = math.log(last) - math.log(start_price)
            head = walk[: r + 1] - spent[: r + 1] / spent[r] * (walk[r] - to_close)
            tail_walk = walk[r:] - walk[r]
            tail_spent = spent[r:] - spent[r]
            bend = tail_spent / tail_spent[-1] * (tail_walk[-1] - (to_last - to_close))
            path = np.concatenate((head, (to_close + tail_walk - bend)[1:]))
        prices = _round_array(decimals, start_price * np.exp(path))
        closes = prices[1:]
        opens = prices[:-1]
        traded = n > 0
        # The regular session's last trade is the close and the day's last trade its
        # last, exactly (minutes without a tick, on a grid coarser than a minute, have no
        # trade and no bar).
        idx = np.flatnonzero(traded) if not shape.all_traded else np.arange(minutes)
        in_regular = idx[idx < r]
        if in_regular.size:
            closes[in_regular[-1]] = close
        if idx.size and (r >= minutes or idx[-1] >= r):
            closes[idx[-1]] = last if r < minutes else close
        if not shape.all_traded:
            # A minute opens at the previous trade.
            latest = np.maximum.accumulate(np.where(traded, np.arange(minutes), -1))
            before = np.concatenate(([-1], latest[:-1]))
            opens = np.where(before >= 0, closes[np.maximum(before, 0)], prices[0])
            opens = np.where(n == 1, closes, opens)
        top = np.maximum(opens, closes)
        bottom = np.minimum(opens, closes)
        wick = 0.6 * minute_sd
        up = np.exp(np.abs(normal[minutes + 1 : 2 * minutes + 1]) * wick)
        down = np.exp(-np.abs(normal[2 * minutes + 1 : 3 * minutes + 1]) * wick)
        highs = np.maximum(_round_array(decimals, top * up), top)
        lows = np.minimum(_round_array(decimals, bottom * down), bottom)
        # The ticks (1..n-2) where the high and, at another one, the low trade.
        high_at = 1 + (uniform[minutes : 2 * minutes] * np.maximum(n - 2, 1)).astype(np.int64)
        low_at = 1 + (uniform[2 * minutes :] * np.maximum(n - 3, 1)).astype(np.int64)
        low_at = low_at + (low_at >= high_at)
        if not shape.all_four:
            # Two ticks: open and close only; three: one wick (a coin says which); one: flat.
            coin = uniform[:minutes] < 0.5
            highs = np.where((n <= 2) | ((n == 3) & ~coin), top, highs)
            lows = np.where((n <= 2) | ((n == 3) & coin), bottom, lows)
            high_at = np.where(n == 3, 1, high_at)
            low_at = np.where(n == 3, 1, low_at)
        if listing.volume > 0:
            per_minute = listing.volume / _REGULAR_MINUTES
            noise = np.exp(0.5 * normal[3 * minutes + 1 :])
            volume = np.maximum((per_minute * shape.busy * noise).astype(np.int64), 1)
            if not shape.all_traded:
                volume = np.where(traded, volume, 0)
        else:
            volume = np.zeros(minutes, dtype=np.int64)
        out = _Day(
            day=day,
            prev_close=prev_close,
            regular_close=close,
            decimals=decimals,
            times=day.start + shape.offsets,
            first_k=first_k,
            n=n,
            open=opens,
            high=highs,
            low=lows,
            close=closes,
            volume=volume,
            high_at=high_at,
            low_at=low_at,
            traded=traded,
        )
        if shape.all_traded:
            out.first_price, out.last_minute = float(opens[0]), minutes - 1
        else:
            idx = np.flatnonzero(traded)
            if idx.size:
                out.first_price, out.last_minute = float(opens[idx[0]]), int(idx[-1])
        return out

    def _grid(self, start: int, minutes: int) -> tuple[Ints, Ints]:
        """Grid index of each minute's first tick, and its number of ticks."""
        step = self._step_ms
        if 60_000 % step == 0:
            # The usual grid (1 s, 0.5 s, 0.1 s...): the same number of ticks each minute.
            per = 60_000 // step
            full = self._full_n.get(minutes)
            if full is None:
                full = self._full_n[minutes] = np.full(minutes, per, dtype=np.int64)
            return start * 1000 // step + per * np.arange(minutes, dtype=np.int64), full
        starts_ms = (start + 60 * np.arange(minutes, dtype=np.int64)) * 1000
        first_k = -(-starts_ms // step)
        return first_k, -(-(starts_ms + 60_000) // step) - first_k

    def _shape(self, listing: Listing, schedule: str, day: TradingDay) -> _Shape:
        """What a day's minutes share whatever the day (movement and volume by time of
        day), kept per distinct layout: a normal day, a half day, a DST week in SIM..."""
        regular = self._regular_sessions(listing, schedule, day)
        key = (
            listing.info.type,
            (day.end - day.start) // 60,
            tuple((s.open - day.start, s.close - day.start) for s in regular),
            day.start % 86400 if listing.info.type == "fx" else 0,
        )
        found = self._shapes.get(key)
        if found is None:
            minutes = (day.end - day.start) // 60
            offsets = 60 * np.arange(minutes, dtype=np.int64)
            move, busy = _activity(listing.info.type, day.start, offsets, regular)
            share = move / move.sum()
            step = self._step_ms
            per = 60_000 // step if 60_000 % step == 0 else 0
            found = _Shape(
                minutes=minutes,
                offsets=offsets,
                move_sd=np.sqrt(share),
                move_spent=np.concatenate(([0.0], np.cumsum(share))),
                busy=busy,
                all_traded=per >= 1,
                all_four=per >= 4,
            )
            if len(self._shapes) > 1000:
                self._shapes.clear()
            self._shapes[key] = found
        return found

    def _regular_sessions(
        self, listing: Listing, schedule: str, day: TradingDay
    ) -> list[TradingDay]:
        """The US regular sessions within a day, for what trades with them."""
        if listing.info.type not in _US_SESSION_TYPES:
            return []
        if schedule in (SIM, FX, CRYPTO) or schedule.startswith("CME"):
            regular = f"{self.clock.calendar}:regular"
            return self.clock.trading_days(regular, day.start, day.end - 1)
        return [day]

    def _minute_ticks(self, ticker: str, path: _Day, m: int) -> Floats:
        """The prices of minute `m`'s ticks: open first, close last, its high and low once
        each where the path put them, the rest in between and never beyond them."""
        n = int(path.n[m])
        o, h, lo, c = path.open[m], path.high[m], path.low[m], path.close[m]
        if n <= 0:
            return np.empty(0)
        if n == 1:
            return np.array([c])
        if n == 2:
            return np.array([o, c])
        if n == 3:
            return np.array([o, h if h > max(o, c) else lo, c])
        jh, jl = int(path.high_at[m]), int(path.low_at[m])
        anchors = sorted({0: o, n - 1: c, jh: h, jl: lo}.items())
        at = np.array([p for p, _ in anchors], dtype=np.float64)
        values = np.array([v for _, v in anchors])
        positions = np.arange(n, dtype=np.float64)
        base = np.interp(positions, at, values)
        seg = np.clip(np.searchsorted(at, positions, side="right") - 1, 0, len(at) - 2)
        frac = (positions - at[seg]) / (at[seg + 1] - at[seg])
        rng = self._rng(ticker, 2, path.day.date.toordinal(), m)
        wiggle = rng.standard_normal(n) * (h - lo) / 4.0 * np.sin(np.pi * frac)
        ticks = np.clip(_round_array(path.decimals, base + wiggle), lo, h)
        for p, v in anchors:
            ticks[p] = v
        return ticks

    def _prefix(self, path: _Day) -> None:
        if path.high_before is None:
            high = np.where(path.traded, path.high, -np.inf)
            low = np.where(path.traded, path.low, np.inf)
            path.high_before = np.concatenate(([-np.inf], np.maximum.accumulate(high)[:-1]))
            path.low_before = np.concatenate(([np.inf], np.minimum.accumulate(low)[:-1]))
            path.volume_before = np.concatenate(([0], np.cumsum(path.volume)[:-1]))

    def _tick(self, ticker: str, listing: Listing, live: _Live, m: int, j: int) -> Tick:
        path = live.day
        if live.minute != m or live.prices is None or live.highs is None or live.lows is None:
            # Once a minute: its ticks, and the day's running high and low through them.
            self._prefix(path)
            assert path.high_before is not None and path.low_before is not None
            ticks = self._minute_ticks(ticker, path, m)
            live.minute, live.prices = m, ticks.tolist()
            live.highs = np.maximum(np.maximum.accumulate(ticks), path.high_before[m]).tolist()
            live.lows = np.minimum(np.minimum.accumulate(ticks), path.low_before[m]).tolist()
        assert path.volume_before is not None and live.highs is not None and live.lows is not None
        n = int(path.n[m])
        share, extra = divmod(int(path.volume[m]), n)
        so_far = int(path.volume_before[m]) + (j + 1) * share + min(j + 1, extra)
        market_time = (int(path.first_k[m]) + j) * self._step_ms
        return Tick(
            ticker=ticker,
            price=live.prices[j],
            market_time=market_time,
            volume=so_far,
            open=path.first_price,
            high=live.highs[j],
            low=live.lows[j],
            prev_close=path.prev_close,
            price_decimals=listing.info.price_decimals,
            regular_close=path.regular_close if market_time >= path.day.close * 1000 else None,
        )

    def _live_day(self, ticker: str, listing: Listing, at_s: float) -> _Live | None:
        """The day `ticker` trades at `at_s` (kept for the stream), or None when closed."""
        live = self._live.get(ticker)
        if live is not None and live.day.day.start <= at_s < live.day.day.end:
            return live
        closed_until = self._closed_until.get(ticker)
        if closed_until is not None and at_s < closed_until and at_s >= closed_until - 86400 * 5:
            return None  # still closed (checked once, not at every tick of the night)
        schedule = self.schedule(ticker)
        day = self._trading_day(schedule, at_s)
        if day is None:
            upcoming = self.clock.trading_days(schedule, at_s, at_s + 5 * 86400)
            starts = [d.start for d in upcoming if d.start > at_s]
            if starts:
                self._closed_until[ticker] = starts[0]
            return None
        live = _Live(self._build(ticker, listing, schedule, day))
        if len(self._live) > MAX_IDLE_TICKERS:
            self._live.clear()
        self._live[ticker] = live
        return live

    def _trading_day(self, schedule: str, at_s: float) -> TradingDay | None:
        if schedule in (SIM, CRYPTO):
            days = self.clock.trading_days(schedule, at_s, at_s)
            return days[0] if days else None
        return self.clock.trading_day(schedule, at_s)

    def _position(self, path: _Day, k: int) -> tuple[int, int] | None:
        """(minute, tick in it) of grid index `k` within the day, or None (no trade)."""
        t_s = k * self._step_ms // 1000
        m = int((t_s - path.day.start) // 60)
        if not 0 <= m < len(path.times) or path.n[m] == 0:
            return None
        j = k - int(path.first_k[m])
        if not 0 <= j < path.n[m]:
            return None
        return m, j

    # -- quotes ----------------------------------------------------------------------------

    def quote(self, ticker: str, at: float | None = None) -> Tick | None:
        """The tick of the grid point at or just before `at` (default: now), or None when
        the ticker's market is closed then. Raises UnknownTicker."""
        listing = self._listing(ticker)
        at_s = self._now() if at is None else at
        k = int(at_s * 1000) // self._step_ms
        live = self._live_day(ticker, listing, k * self._step_ms / 1000)
        if live is None:
            return None
        where = self._position(live.day, k)
        if where is None:
            return None
        return self._tick(ticker, listing, live, *where)

    def next_tick(self, ticker: str) -> Tick | None:
        """The tick at the current clock (None when the market is closed)."""
        return self.quote(ticker)

    def last_quote(self, ticker: str, at: float | None = None) -> Tick:
        """The latest trade at or before `at`, even when the market is closed then (the last
        trade of its last day, with that trade's own `market_time`)."""
        found = self.quote(ticker, at)
        if found is not None:
            return found
        listing = self._listing(ticker)
        at_s = self._now() if at is None else at
        schedule = self.schedule(ticker)
        days = [
            d for d in self.clock.trading_days(schedule, at_s - 12 * 86400, at_s) if d.start <= at_s
        ]
        for day in reversed(days):
            path = self._build(ticker, listing, schedule, day)
            last_k = int(at_s * 1000) // self._step_ms
            # The latest traded minute that began before `at`.
            candidates = np.flatnonzero(path.traded & (path.first_k <= last_k))
            if not candidates.size:
                continue
            m = int(candidates[-1])
            j = min(int(path.n[m]) - 1, last_k - int(path.first_k[m]))
            return self._tick(ticker, listing, _Live(path), m, j)
        raise UnknownTicker(f"no trading day of {ticker} before {at_s}")  # pragma: no cover

    def current_price(self, ticker: str) -> float:
        """The price of the latest trade (the last close while the market is closed)."""
        return self.last_quote(ticker).price

    def describe(self, ticker: str) -> SymbolInfo | None:
        listing = self.directory.get(ticker)
        return listing.info if listing else None

    async def stream(self, wanted: Wanted, emit: Emit) -> None:
        step = self._step_ms
        last_k: int | None = None
        while True:
            k = int(self._now() * 1000) // step
            if k != last_k:
                last_k = k
                await self._round(wanted(), k, emit)
                self.health.ok()
            # Sleep to the next grid point by the source's clock (prices are read from it):
            # a late wake-up skips the missed ticks rather than bursting them.
            delay = ((k + 1) * step - self._now() * 1000) / 1000
            await asyncio.sleep(max(0.0, delay))

    async def _round(self, tickers: Iterable[str], k: int, emit: Emit) -> None:
        if len(self._live) > 2 * len(self.directory):  # pragma: no cover - bounded anyway
            self._live.clear()
        at_s = k * self._step_ms / 1000
        for ticker in sorted(tickers):
            listing = self.directory.get(ticker)
            if listing is None:
                continue  # not listed: can_quote said so, nobody gets a made-up price
            live = self._live_day(ticker, listing, at_s)
            where = None if live is None else self._position(live.day, k)
            if live is not None and where is not None:
                self._announced.add(ticker)
                await emit(self._tick(ticker, listing, live, *where))
            elif ticker not in self._announced:
                # Closed: the last trade, once, so a panel shows the last price (marked
                # stale once it is old), never an empty one and never a new tick.
                self._announced.add(ticker)
                await emit(self.last_quote(ticker, at_s))

    # -- history -----------------------------------------------------------------------------

    def _days_for(
        self, schedule: str, range_: str, now_s: float
    ) -> list[tuple[TradingDay, TradingDay | None]]:
        """The trading days a range covers, each with the day before it: `1d` and `5d`
        count sessions (the current one, or the last: Yahoo's meaning, so a weekend
        still shows Friday), longer ranges count calendar days back from now."""
        sessions = SESSION_RANGES.get(range_)
        since = now_s - (14 if sessions else RANGE_DAYS[range_] + 10) * 86400
        days = [d for d in self.clock.trading_days(schedule, since, now_s) if d.start <= now_s]
        if sessions is not None:
            first = max(0, len(days) - sessions)
        else:
            cut = now_s - RANGE_DAYS[range_] * 86400
            first = next((i for i, d in enumerate(days) if d.end > cut), len(days))
        return [(d, days[i - 1] if i else None) for i, d in enumerate(days) if i >= first]

    async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        problem = check_history_params(interval, range_)
        if problem is not None:
            raise ValueError(problem)
        ticker = normalize_ticker(ticker)
        listing = self._listing(ticker)
        now_s = self._now()
        k_now = int(now_s * 1000) // self._step_ms
        schedule = self.schedule(ticker)
        step = INTERVAL_SECONDS[interval]
        bars: list[Bar] = []
        for day, previous in self._days_for(schedule, range_, now_s):
            await asyncio.sleep(0)
            complete = day.end * 1000 <= k_now * self._step_ms
            summary = self._summaries.get((ticker, day.date)) if step >= 86400 else None
            if summary is not None and complete:
                bars.append(summary)
                continue
            live = self._live.get(ticker)
            if live is not None and live.day.day == day:
                path = live.day
            else:
                path = self._build(ticker, listing, schedule, day, previous)
            minute_bars = self._minute_bars(ticker, path, k_now)
            if minute_bars is None:
                continue
            times, opens, highs, lows, closes, volumes = minute_bars
            if step >= 86400:
                # One bar a day, at 00:00 UTC of the session's date (never shifted): the
                # regular session's (pre- and post-market are not in a daily bar; none
                # before the open).
                regular = np.flatnonzero((times >= day.open) & (times < day.close))
                if not regular.size:
                    continue
                bar = Bar(
                    day.bar_time,
                    float(opens[regular[0]]),
                    float(highs[regular].max()),
                    float(lows[regular].min()),
                    float(closes[regular[-1]]),
                    int(volumes[regular].sum()),
                )
                if complete:
                    if len(self._summaries) > 200_000:
                        self._summaries.clear()
                    self._summaries[(ticker, day.date)] = bar
                bars.append(bar)
                continue
            bucket_times, starts = np.unique(times // step * step, return_index=True)
            ends = np.append(starts[1:], len(times)) - 1
            rows = zip(
                bucket_times.tolist(),
                opens[starts].tolist(),
                np.maximum.reduceat(highs, starts).tolist(),
                np.minimum.reduceat(lows, starts).tolist(),
                closes[ends].tolist(),
                np.add.reduceat(volumes, starts).tolist(),
                strict=True,
            )
            for i, (t, o, h, lo, c, v) in enumerate(rows):
                if i and i % HISTORY_CHUNK == 0:
                    await asyncio.sleep(0)
                bars.append(Bar(t, o, h, lo, c, v))
        return bars

    def _minute_bars(
        self, ticker: str, path: _Day, k_now: int
    ) -> tuple[Ints, Floats, Floats, Floats, Floats, Ints] | None:
        """The day's traded minutes up to grid index `k_now`: the minute in progress as
        far as its ticks went (what the stream emitted), later ones left out."""
        done = path.traded & (path.first_k + path.n - 1 <= k_now)
        keep = np.flatnonzero(done)
        times, opens = path.times[keep], path.open[keep]
        highs, lows = path.high[keep], path.low[keep]
        closes, volumes = path.close[keep], path.volume[keep]
        current = np.flatnonzero(path.traded & (path.first_k <= k_now) & ~done)
        if current.size:
            m = int(current[0])
            j = k_now - int(path.first_k[m])
            ticks = self._minute_ticks(ticker, path, m)[: j + 1]
            n, volume = int(path.n[m]), int(path.volume[m])
            share, extra = divmod(volume, n)
            times = np.append(times, path.times[m])
            opens = np.append(opens, ticks[0])
            highs = np.append(highs, ticks.max())
            lows = np.append(lows, ticks.min())
            closes = np.append(closes, ticks[-1])
            volumes = np.append(volumes, (j + 1) * share + min(j + 1, extra))
        if not len(times):
            return None
        return times, opens, highs, lows, closes, volumes

    # -- what it knows ---------------------------------------------------------------------

    async def can_quote(self, ticker: str) -> bool | None:
        try:
            return normalize_ticker(ticker) in self.directory
        except InvalidTicker:
            return False

    async def search_symbols(self, query: str, limit: int) -> list[SymbolInfo]:
        return self.directory.search(query, limit)


def _annual_volatility(listing: Listing) -> float:
    kind = listing.info.type
    if kind == "crypto" and listing.info.symbol.split("-", 1)[0] in STABLECOINS:
        return PEGGED_VOLATILITY
    return ANNUAL_VOLATILITY[kind]


def _round(decimals: int | None, value: float) -> float:
    digits = 2 if decimals is None else decimals
    return max(round(value, digits), 10.0**-digits)


def _round_array(decimals: int, values: Floats) -> Floats:
    # Never below the smallest price the instrument can quote.
    return np.maximum(np.round(values, decimals), 10.0**-decimals)
