"""Plain data carried between the parts: what sources produce."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def now_ms() -> float:
    return time.time() * 1000.0


@dataclass(slots=True)
class Tick:
    """One quote: what a summarising source (simulator, Yahoo, a replay) emits, and what
    the updater publishes as a `price_update` (sources/last_price.py derives it from a
    vendor's events). Fields the source lacks stay None (never invented)."""

    ticker: str
    price: float
    market_time: int | None = None  # epoch ms of the quote at the source
    # Cumulative volume of the day, only from a field documented as such (crypto: may
    # be fractional); never a sum of trade sizes, never a rolling 24 h figure.
    volume: int | float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    prev_close: float | None = None
    change: float | None = None  # when the source gives change but not prev_close
    change_percent: float | None = None
    price_decimals: int | None = None  # decimals the instrument quotes in, when known
    volume_24h: float | None = None  # a rolling 24 h volume (Coinbase): its own field
    # Provenance (protocol v1.2), set by the updater: which source, which of its feeds,
    # how many seconds behind real time. None on a tick a source emits.
    source: str | None = None
    feed: str | None = None
    delayed: int | None = None
    # Session-true figures (protocol v1.2) of a session-bound instrument (US equities,
    # ETFs, indices), set by the updater (sources/session_figures.py): the session the
    # quote's time falls in (pre, regular, post, closed) and, once its trading day's
    # regular session has closed, that session's close. None for crypto, FX, futures.
    session: str | None = None
    regular_close: float | None = None


@dataclass(slots=True, frozen=True)
class Bar:
    """One OHLCV bar; `time` is the bucket start in epoch seconds. `volume` is what traded
    in the bar: whole shares for equities, fractional for crypto (a vendor's candles)."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: int | float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "time": self.time,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
        }


@dataclass(slots=True)
class SourceHealth:
    """How fresh a source is; the updater publishes it, health reports it."""

    last_tick_ms: float | None = None
    last_error: str | None = None
    last_error_ms: float | None = None
    stale: bool = False
    backoff_until_ms: float | None = None
    extra: dict[str, object] = field(default_factory=dict)
    errors: int = 0  # failures so far (/metrics)

    def ok(self) -> None:
        self.last_tick_ms = now_ms()
        self.stale = False
        self.backoff_until_ms = None

    def failed(self, message: str, backoff_s: float | None = None) -> None:
        self.last_error = message
        self.last_error_ms = now_ms()
        self.errors += 1
        self.stale = True
        if backoff_s is not None:
            self.backoff_until_ms = now_ms() + backoff_s * 1000.0
