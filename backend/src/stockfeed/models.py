"""Plain data carried between the parts: what sources produce."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def now_ms() -> float:
    return time.time() * 1000.0


@dataclass(slots=True)
class Tick:
    """One quote as a source saw it. Fields the source lacks stay None (never invented)."""

    ticker: str
    price: float
    market_time: int | None = None  # epoch ms of the quote at the source
    volume: int | None = None  # cumulative volume of the day
    open: float | None = None
    high: float | None = None
    low: float | None = None
    prev_close: float | None = None
    change: float | None = None  # when the source gives change but not prev_close
    change_percent: float | None = None
    price_decimals: int | None = None  # decimals the instrument quotes in, when known


@dataclass(slots=True, frozen=True)
class Bar:
    """One OHLCV bar; `time` is the bucket start in epoch seconds."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: int

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
