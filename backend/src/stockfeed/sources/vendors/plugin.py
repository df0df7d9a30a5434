"""What every vendor plugin shares besides the socket loop: its connections run together
and reported as one state, its symbol directory, its previous closes, its REST calls.

A plugin subclasses `VendorSource` and gives:

- `name`, `capabilities`, and `__init__` building its `connections` (one
  `VendorConnection` per endpoint: Alpaca has one for stocks and one for crypto);
- `fetch_directory()` (blocking, on a thread): its instruments, for /api/symbols and
  `can_quote`;
- `fetch_history(ticker, interval, range_)` (blocking): bars for /api/history;
- optionally `fetch_prev_close(ticker)` (blocking): the previous session's close, fetched
  once per ticker and session so that `change` means what it means everywhere.

REST calls made for clients (history, search, lookups) go through the process's client
budget (sources/budget.py); the plugin's own (the directory, previous closes) do not.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TypeVar

from stockfeed.market_hours import MarketClock
from stockfeed.models import Bar, SourceHealth, now_ms
from stockfeed.sources.base import (
    Deliver,
    Emit,
    Provenance,
    Source,
    SourceError,
    UnknownTicker,
    Wanted,
)
from stockfeed.sources.budget import UpstreamBudget
from stockfeed.sources.events import Event, Gap, SourceState, Summary
from stockfeed.sources.last_price import day_key
from stockfeed.sources.symbols import Directory, Listing, SymbolInfo
from stockfeed.sources.vendors.connection import VendorConnection
from stockfeed.sources.vendors.http import HttpError
from stockfeed.tickers import InvalidTicker, normalize_ticker

log = logging.getLogger(__name__)

# A directory is fetched again after this long (new listings, delistings).
DIRECTORY_TTL = 6 * 3600.0
# After a failed directory fetch, the next try waits this long (no hammering).
DIRECTORY_RETRY = 60.0
# Previous closes fetched one after another this far apart (vendors' REST rate limits).
PREV_CLOSE_SPACING = 0.2

R = TypeVar("R")


class VendorSource(Source):
    connections: Sequence[VendorConnection]
    # The hours the plugin's tickers follow (set by plugins): a trading day starts with
    # its pre-market, so a previous close is fetched again then, not at midnight.
    clock: MarketClock | None = None

    def __init__(self, *, client_budget: UpstreamBudget | None = None) -> None:
        super().__init__()
        self.client_budget = client_budget or UpstreamBudget()
        self._directory: Directory | None = None
        self._directory_at = 0.0
        self._directory_failed_at = -DIRECTORY_RETRY
        self._directory_task: asyncio.Task[Directory | None] | None = None
        self._prev_close_day: dict[str, str] = {}
        self._state: SourceState | None = None
        self._emit: Emit | None = None

    # -- what a plugin gives -----------------------------------------------------------

    @abc.abstractmethod
    def fetch_directory(self) -> list[SymbolInfo]:
        """Every instrument the vendor streams (blocking; raises HttpError)."""

    @abc.abstractmethod
    def fetch_history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        """Bars, oldest first (blocking; raises HttpError, UnknownTicker)."""

    def fetch_prev_close(self, ticker: str) -> Decimal | None:
        """The regular close of the session before the current trading day (the day in
        progress, or the last one at night: `trading_date`), never an after-hours price
        (blocking; raises HttpError). None: unknown."""
        return None

    def trading_date(self, ticker: str, now: float) -> str:
        """The ISO date of the trading day `now` belongs to: the one in progress, else the
        last one (at night, on a weekend or a holiday)."""
        if self.clock is not None:
            day = self.clock.current_day(self.clock.schedule(ticker), now)
            if day is not None:
                return day.date.isoformat()
        return day_key(ticker, now)

    # -- the stream ----------------------------------------------------------------------

    def provenance_of(self, conn: VendorConnection) -> Provenance:
        """Where a connection's events come from (a plugin with endpoints of different
        feeds says so per endpoint: Alpaca's crypto is not its stock feed)."""
        return self.provenance

    async def stream(self, wanted: Wanted, emit: Emit) -> None:
        async def deliver(_: Provenance, event: Event) -> None:
            await emit(event)

        await self.run(wanted, deliver)

    async def run(self, wanted: Wanted, deliver: Deliver) -> None:
        own = self.provenance

        async def emit_own(event: Event) -> None:
            await deliver(own, event)

        self._emit = emit_own
        try:
            async with asyncio.TaskGroup() as tasks:
                for conn in self.connections:
                    tasks.create_task(
                        conn.run(
                            wanted,
                            _emitter(deliver, self.provenance_of(conn), self.health),
                            self._changed,
                        )
                    )
                tasks.create_task(self._prev_closes(wanted, deliver))
                tasks.create_task(self._fatal_watch())
        except* _AllFailed:
            pass  # reported: every endpoint hit a fatal error; the stream ends

    async def _fatal_watch(self) -> None:
        """Ends the stream (the updater disables the source) once every endpoint that was
        asked for something failed for good: a bad key, a plan without the feed."""
        while True:
            await asyncio.sleep(0.5)
            used = [c for c in self.connections if c.attempts > 0]
            if used and all(c.fatal for c in used):
                raise _AllFailed

    async def _changed(self) -> None:
        """A connection's state changed: report the source's if that changed it."""
        state = self.source_state()
        if state == self._state or self._emit is None:
            return
        self._state = state
        if state.fatal or not state.connected:
            self.health.failed(state.message or "not connected")
        elif state.stale:
            self.health.stale = True
        else:
            self.health.ok()
        await self._emit(state)

    def source_state(self) -> SourceState:
        """The connections' states as one: a ticker is limited, stale or failed when its
        connection says so; the source is fatal when every connection in use is."""
        used = [c for c in self.connections if c.attempts > 0 or c.wanted_here]
        fatal = [c.fatal for c in used if c.fatal]
        all_fatal = bool(used) and len(fatal) == len(used)
        failed: set[str] = set()
        for conn in used:
            if conn.fatal:
                failed |= conn.wanted_here
        messages = [c.fatal or c.last_error for c in used if c.fatal or c.last_error]
        return SourceState(
            connected=bool(used) and all(c.state in ("open", "idle") for c in used),
            authorised=bool(used) and all(c.authorised or c.state == "idle" for c in used),
            limited=frozenset().union(*(frozenset(c.dialect.limited) for c in used)),
            stale=frozenset().union(*(c.stale for c in used)) | frozenset(failed),
            fatal=fatal[0] if all_fatal else None,
            message="; ".join(dict.fromkeys(m for m in messages if m)) or None,
        )

    def describe_state(self) -> dict[str, object]:
        return {"endpoints": [c.describe() for c in self.connections]}

    async def _prev_closes(self, wanted: Wanted, deliver: Deliver) -> None:
        """The previous close of each wanted ticker, once per ticker and trading day."""
        while True:
            now = time.time()
            for ticker in sorted(wanted()):
                conn = next((c for c in self.connections if c.dialect.serves(ticker)), None)
                if conn is None:
                    continue
                day = self.trading_date(ticker, now)
                if self._prev_close_day.get(ticker) == day:
                    continue
                try:
                    close = await asyncio.to_thread(self.fetch_prev_close, ticker)
                except (HttpError, UnknownTicker, SourceError) as exc:
                    log.info("%s: no previous close for %s (%s)", self.name, ticker, exc)
                    close = None
                except Exception:
                    log.exception("%s: previous close of %s failed", self.name, ticker)
                    close = None
                self._prev_close_day[ticker] = day  # one try per session, found or not
                if close is not None:
                    summary = Summary(ticker, time.time_ns(), prev_close=close)
                    await deliver(self.provenance_of(conn), summary)
                await asyncio.sleep(PREV_CLOSE_SPACING)
            await asyncio.sleep(5.0)

    # -- directory, search, history ------------------------------------------------------

    async def directory(self) -> Directory | None:
        """The vendor's instruments (fetched once, then every DIRECTORY_TTL); None while it
        cannot be had."""
        now = time.monotonic()
        if self._directory is not None and now - self._directory_at < DIRECTORY_TTL:
            return self._directory
        if now - self._directory_failed_at < DIRECTORY_RETRY:
            return self._directory
        if self._directory_task is None or self._directory_task.done():
            self._directory_task = asyncio.create_task(self._load_directory())
        return await asyncio.shield(self._directory_task)

    async def _load_directory(self) -> Directory | None:
        try:
            infos = await asyncio.to_thread(self.fetch_directory)
        except HttpError as exc:
            log.warning("%s: symbol directory unavailable (%s)", self.name, exc)
            self._directory_failed_at = time.monotonic()
            return self._directory
        self._directory = Directory(Listing(info, 0.0, 0, rank) for rank, info in enumerate(infos))
        self._directory_at = time.monotonic()
        log.info("%s: %d instruments in its directory", self.name, len(self._directory))
        return self._directory

    async def search_symbols(self, query: str, limit: int) -> list[SymbolInfo]:
        directory = await self.directory()
        if directory is None:
            raise SourceError(f"{self.name}'s symbol directory is unavailable right now")
        return directory.search(query, limit)

    async def can_quote(self, ticker: str) -> bool | None:
        try:
            ticker = normalize_ticker(ticker)
        except InvalidTicker:
            return False
        if not any(c.dialect.serves(ticker) for c in self.connections):
            return False
        directory = await self.directory()
        if directory is None:
            return None
        return ticker in directory

    async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        job = self.client_budget.start(
            f"history of {ticker}", self.fetch_history, ticker, interval, range_
        )
        try:
            bars = await job
        except HttpError as exc:
            if exc.status == 429:
                raise self.client_budget.refuse(
                    f"rate limited by {self.name}: history is unavailable for a while",
                    exc.retry_after or 30.0,
                ) from None
            raise SourceError(
                f"could not get history for {ticker} from {self.name} ({exc})"
            ) from None
        if not bars:
            raise SourceError(f"no history from {self.name} for {ticker} ({interval}, {range_})")
        return bars

    async def close(self) -> None:
        if self._directory_task is not None:
            self._directory_task.cancel()
            with contextlib.suppress(BaseException):
                await self._directory_task
        self.client_budget.close()


def _emitter(deliver: Deliver, provenance: Provenance, health: SourceHealth) -> Emit:
    async def emit(event: Event) -> None:
        if not isinstance(event, SourceState | Gap):
            health.last_tick_ms = now_ms()  # the source's freshness (health, /metrics)
        await deliver(provenance, event)

    return emit


class _AllFailed(Exception):
    """Every endpoint in use failed for good (internal: ends the stream's task group)."""
