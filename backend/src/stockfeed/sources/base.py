"""The interface every source implements.

A source streams events (sources/events.py: trades, quotes, bars, status, summaries and
its own state) for the tickers the updater wants, answers history and symbol searches
where its vendor has them, and declares what it needs and allows (`capabilities`). Its
`provenance` (name, feed, delay) goes on every update derived from its events.

A vendor plugin is one module in sources/vendors/ (see docs/sources.md, "Adding a
source"); sources/vendors/connection.py is the socket loop they share.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from stockfeed.market_hours import MarketClock
from stockfeed.models import Bar, SourceHealth
from stockfeed.sources.capabilities import SUMMARY_ONLY, Capabilities
from stockfeed.sources.events import Event
from stockfeed.sources.symbols import SymbolInfo

Emit = Callable[[Event], Awaitable[None]]
Wanted = Callable[[], frozenset[str]]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an update came from, as the wire says it (protocol v1.2): the source's name,
    the vendor's feed where it has several (`iex`, `sip`), and the delay in seconds."""

    source: str
    feed: str | None = None
    delayed: int = 0


# What a chain (sources/failover.py) delivers: each event with the source it came from.
Deliver = Callable[[Provenance, Event], Awaitable[None]]

INTERVALS = ("1m", "5m", "15m", "1h", "1d")
RANGES = ("1d", "5d", "1mo", "6mo", "1y")
INTERVAL_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
RANGE_DAYS = {"1d": 1, "5d": 5, "1mo": 31, "6mo": 183, "1y": 366}
# Yahoo serves intraday bars only so far back; the same limits apply to every source
# so that a client sees one behaviour whatever source the server runs.
MAX_RANGE_FOR_INTERVAL = {"1m": "5d", "5m": "1mo", "15m": "1mo", "1h": "1y", "1d": "1y"}


class SourceError(Exception):
    """The source cannot answer now (network, rate limit, no data): maps to HTTP 503."""


class UnknownTicker(Exception):
    """The source knows it cannot quote this ticker: maps to 404 / `unknown_ticker`."""


def check_history_params(interval: str, range_: str) -> str | None:
    """Return an error message for a bad interval/range pair, or None when it is fine."""
    if interval not in INTERVALS:
        return f"interval must be one of {', '.join(INTERVALS)}"
    if range_ not in RANGES:
        return f"range must be one of {', '.join(RANGES)}"
    limit = MAX_RANGE_FOR_INTERVAL[interval]
    if RANGE_DAYS[range_] > RANGE_DAYS[limit]:
        return f"interval {interval} is available for a range of at most {limit}"
    return None


def clamp_range(interval: str, range_: str) -> str:
    """The range a REST history request is served: the one asked for, cut to the longest
    its interval has (1m over 1y: 5d). Unknown values are returned as they are."""
    limit = MAX_RANGE_FOR_INTERVAL.get(interval)
    if limit is not None and range_ in RANGE_DAYS and RANGE_DAYS[range_] > RANGE_DAYS[limit]:
        return limit
    return range_


class Source(abc.ABC):
    name: ClassVar[str]
    simulated: ClassVar[bool] = False
    # The market hours the source's prices follow, when they are not the real ones (the
    # simulator without market hours: one market open around the clock). The process's
    # `market_status` and liveness use it instead of the real calendar.
    market_clock: MarketClock | None = None
    # Declared up front (sources/capabilities.py); a plugin whose limits depend on its
    # configuration (a feed, a plan) sets its own in __init__.
    capabilities: Capabilities = SUMMARY_ONLY
    feed: str | None = None  # the vendor's feed, where it has several
    delayed: int = 0  # seconds behind real time

    def __init__(self) -> None:
        self.health = SourceHealth()

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.name, self.feed, self.delayed)

    @abc.abstractmethod
    async def stream(self, wanted: Wanted, emit: Emit) -> None:
        """Produce events for the tickers `wanted()` returns, until cancelled.

        Must never raise for a transient failure: record it in `self.health` and retry.
        A fatal one (a bad key) is reported as a `SourceState` with `fatal` set, then the
        stream returns: the updater does not restart a source that said it cannot work.
        """

    async def run(self, wanted: Wanted, deliver: Deliver) -> None:
        """`stream`, each event delivered with this source's provenance (a chain of
        sources overrides it to say which of them each event came from)."""
        provenance = self.provenance

        async def emit(event: Event) -> None:
            await deliver(provenance, event)

        await self.stream(wanted, emit)

    def describe_state(self) -> dict[str, object]:
        """What health shows of the source beyond SourceHealth (a chain: its members)."""
        return {}

    @abc.abstractmethod
    async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        """OHLCV bars, oldest first. Raises SourceError or UnknownTicker."""

    async def can_quote(self, ticker: str) -> bool | None:
        """True/False when the source knows; None when it cannot tell right now."""
        return True

    async def search_symbols(self, query: str, limit: int) -> list[SymbolInfo]:
        """Instruments matching `query` (symbol or name), best first, at most `limit`.
        Raises SourceError (UpstreamBusy included) when the source cannot answer now.
        The default: the source has no directory."""
        return []

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""
