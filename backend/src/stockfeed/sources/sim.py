"""The simulator: a seedable random walk per ticker that needs nothing from outside.

Each ticker has its own `random.Random`, seeded from the source's seed and the ticker's
name, so a fixed seed replays the same prices and adding a ticker never changes another's
path. Prices follow a geometric (log-normal) walk with an annual volatility of 30 %, scaled
by calendar time: the simulator trades around the clock, every day, and a "day" is the UTC
date (that is when `open`, `high`, `low` and `volume` start again and `prev_close` moves on).
When an `is_trading` callable is given, tickers whose market is closed get no ticks and
their walk pauses until the market opens again.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from stockfeed.models import Bar, Tick
from stockfeed.sources.base import (
    INTERVAL_SECONDS,
    RANGE_DAYS,
    Emit,
    Source,
    Wanted,
    check_history_params,
)
from stockfeed.tickers import InvalidTicker, normalize_ticker

ANNUAL_VOLATILITY = 0.30
# Calendar seconds, not trading seconds: the simulator trades 24 hours a day, 7 days a week,
# so one volatility per second gives the same spread to live ticks and to every bar size.
SECONDS_PER_YEAR = 365.0 * 86400.0
# A gentle pull of the log price back towards the ticker's base (half-life of ~60 days):
# without it a simulator left running for months wanders off to implausible prices.
REVERSION_PER_SECOND = math.log(2.0) / (60.0 * 86400.0)
MIN_PRICE = 0.01

# Realistic starting points for tickers people try first; others get a stable pseudo-price.
KNOWN_BASES: dict[str, float] = {
    "AAPL": 190.0,
    "MSFT": 420.0,
    "GOOGL": 170.0,
    "GOOG": 171.0,
    "AMZN": 185.0,
    "TSLA": 250.0,
    "NVDA": 120.0,
    "META": 500.0,
    "EA": 200.0,
    "SPY": 520.0,
    "QQQ": 440.0,
    "BTC-USD": 65000.0,
    "ETH-USD": 3200.0,
}

# Rough US regular session in UTC (13:30-20:00, EDT). Only shapes the volume curve.
_SESSION_OPEN_S = 13 * 3600 + 30 * 60
_SESSION_CLOSE_S = 20 * 3600


def base_price(ticker: str) -> float:
    """Starting price of a ticker: realistic for well-known ones, else 20..600 from its name."""
    known = KNOWN_BASES.get(ticker)
    if known is not None:
        return known
    digest = hashlib.sha256(ticker.encode()).digest()
    # 58_001 cent steps: 20.00 .. 600.00, stable across processes (unlike hash()).
    return 20.0 + (int.from_bytes(digest[:8], "big") % 58_001) / 100.0


def _sigma(seconds: float) -> float:
    return ANNUAL_VOLATILITY * math.sqrt(max(seconds, 0.0) / SECONDS_PER_YEAR)


def _volume_intensity(epoch_s: float) -> float:
    """Relative trading activity by time of day: a U shape over the US session."""
    second_of_day = epoch_s % 86400.0
    if not _SESSION_OPEN_S <= second_of_day < _SESSION_CLOSE_S:
        return 0.15
    since_open = (second_of_day - _SESSION_OPEN_S) / 60.0
    to_close = (_SESSION_CLOSE_S - second_of_day) / 60.0
    return 1.0 + 2.5 * math.exp(-since_open / 30.0) + 2.0 * math.exp(-to_close / 30.0)


def _shares_per_second(price: float) -> float:
    # Cheaper stocks trade more shares: roughly $2B of turnover a day for any ticker.
    return 2e9 / 86400.0 / max(price, 1.0)


def _cents(price: float) -> float:
    return max(MIN_PRICE, round(price, 2))


MAX_IDLE_WALKS = 1000
# History bars drawn between yields to the event loop: ~0.5 ms of pure Python each (about
# 9 us a bar), so a 7,200-bar answer never holds the loop (and every WebSocket client's
# updates) for the ~65 ms it takes in all. A yield costs ~4 us: under 1 % more in all.
HISTORY_CHUNK = 50


@dataclass(slots=True)
class _Walk:
    """The live state of one ticker's walk."""

    rng: random.Random
    base: float
    price: float  # unrounded, the walk's true state
    day: int  # UTC day number (epoch days) the day fields belong to
    prev_close: float
    open: float | None = None  # None until the day's first tick
    high: float = 0.0
    low: float = 0.0
    volume: int = 0


class SimSource(Source):
    name = "sim"
    simulated = True

    def __init__(
        self,
        seed: int | None = None,
        tick_interval: float = 1.0,
        is_trading: Callable[[str], bool] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if tick_interval <= 0:
            raise ValueError("tick_interval must be positive")
        # Without a seed each instance still gets one, so per-ticker paths stay independent.
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**63)
        self.tick_interval = tick_interval
        self._is_trading = is_trading
        self._now = now
        self._walks: dict[str, _Walk] = {}

    def _rng(self, *parts: object) -> random.Random:
        # A string seed is hashed with SHA-512 by random.Random: stable across processes.
        return random.Random(":".join(str(p) for p in (self.seed, *parts)))

    def _walk(self, ticker: str) -> _Walk:
        walk = self._walks.get(ticker)
        if walk is not None:
            return walk
        rng = self._rng(ticker)
        base = base_price(ticker)
        # Yesterday's close and today's open come from the same walk: one day's move, then
        # an overnight gap, so the first tick already shows a plausible change.
        prev_close = base * math.exp(rng.gauss(0.0, _sigma(86400.0)))
        opening = prev_close * math.exp(rng.gauss(0.0, _sigma(86400.0) / 3.0))
        walk = _Walk(
            rng=rng,
            base=base,
            price=opening,
            day=int(self._now() // 86400),
            prev_close=_cents(prev_close),
        )
        self._walks[ticker] = walk
        return walk

    def next_tick(self, ticker: str) -> Tick:
        """Advance `ticker`'s walk by one tick at the current clock and return the tick."""
        walk = self._walk(ticker)
        now_s = self._now()
        day = int(now_s // 86400)
        if day != walk.day:
            # A new UTC day: yesterday's last price becomes prev_close, the day starts afresh
            # after an overnight gap.
            walk.prev_close = _cents(walk.price)
            walk.price *= math.exp(walk.rng.gauss(0.0, _sigma(86400.0) / 3.0))
            walk.day = day
            walk.open = None
            walk.volume = 0
        sigma = _sigma(self.tick_interval)
        pull = -REVERSION_PER_SECOND * self.tick_interval * math.log(walk.price / walk.base)
        walk.price *= math.exp(pull - 0.5 * sigma * sigma + sigma * walk.rng.gauss(0.0, 1.0))
        price = _cents(walk.price)
        if walk.open is None:
            walk.open = walk.high = walk.low = price
        else:
            walk.high = max(walk.high, price)
            walk.low = min(walk.low, price)
        mean_shares = _shares_per_second(price) * self.tick_interval * _volume_intensity(now_s)
        walk.volume += int(walk.rng.expovariate(1.0 / max(mean_shares, 0.01)))
        return Tick(
            ticker=ticker,
            price=price,
            market_time=int(now_s * 1000),
            volume=walk.volume,
            open=walk.open,
            high=walk.high,
            low=walk.low,
            prev_close=walk.prev_close,
        )

    def current_price(self, ticker: str) -> float:
        """The price of the last tick (before the first one: where the walk will start)."""
        return _cents(self._walk(ticker).price)

    async def stream(self, wanted: Wanted, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            tickers = wanted()
            if len(self._walks) > 2 * len(tickers) + MAX_IDLE_WALKS:
                # A walk holds a seeded generator (~2.5 KiB): keep only the wanted ones
                # once many tickers came and went (one that comes back starts afresh).
                self._walks = {t: w for t, w in self._walks.items() if t in tickers}
            for ticker in sorted(tickers):
                if self._is_trading is not None and not self._is_trading(ticker):
                    continue
                await emit(self.next_tick(ticker))
            self.health.ok()
            deadline += self.tick_interval
            delay = deadline - loop.time()
            if delay < 0:
                # Fell behind (slow emit): skip the missed ticks rather than burst them.
                deadline = loop.time()
                delay = 0.0
            await asyncio.sleep(delay)

    async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        problem = check_history_params(interval, range_)
        if problem is not None:
            raise ValueError(problem)
        ticker = normalize_ticker(ticker)
        step = INTERVAL_SECONDS[interval]
        count = RANGE_DAYS[range_] * 86400 // step
        last_start = int(self._now() // step) * step
        # Seeded by the bucket, not the price: within one bucket every call draws the same
        # shape, anchored on whatever the live price is now.
        rng = self._rng(ticker, "history", interval, range_, last_start)
        sigma = _sigma(step)
        close = self.current_price(ticker)
        per_bar_shares = _shares_per_second(close) * step
        bars: list[Bar] = []
        # Walk backwards from the live price so the newest bar's close is exactly it.
        for i in range(count):
            if i and i % HISTORY_CHUNK == 0:
                await asyncio.sleep(0)
            start = last_start - i * step
            raw_open = close * math.exp(-(sigma * rng.gauss(0.0, 1.0) - 0.5 * sigma * sigma))
            open_ = _cents(raw_open)
            wick_up = math.exp(abs(rng.gauss(0.0, sigma * 0.6)))
            wick_down = math.exp(-abs(rng.gauss(0.0, sigma * 0.6)))
            high = max(_cents(max(open_, close) * wick_up), open_, close)
            low = min(_cents(min(open_, close) * wick_down), open_, close)
            intensity = 1.0 if step >= 86400 else _volume_intensity(start + step / 2)
            volume = max(1, int(per_bar_shares * intensity * rng.lognormvariate(0.0, 0.4)))
            bars.append(Bar(start, open_, high, low, close, volume))
            close = open_
        bars.reverse()
        return bars

    async def can_quote(self, ticker: str) -> bool | None:
        try:
            normalize_ticker(ticker)
        except InvalidTicker:
            return False
        return True
