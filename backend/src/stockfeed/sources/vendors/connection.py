"""One vendor socket, kept alive: the loop every vendor plugin shares.

A plugin describes its endpoint's protocol as a `Dialect` (the URL, the handshake, how to
subscribe, how to read a frame); `VendorConnection` runs it:

- It connects only while it has tickers to carry (an idle socket is a wasted one, and
  Coinbase closes a socket that subscribes to nothing within 5 s), at most one socket at
  a time: a key's one connection (Alpaca answers a second with 406) is never doubled.
- After the handshake it subscribes the whole wanted set, then follows `wanted()` with
  additions and removals (checked every `check_interval`).
- Errors go by class (errors.py): a fatal one stops this connection and says so; a
  capacity one waits for the one connection (406) or leaves tickers out (the dialect
  names them); everything else (a transient error frame, a dropped socket, a clean close,
  HTTP 429/5xx at the upgrade, a mute socket) reconnects after a capped, jittered backoff
  (equal jitter: half the step plus up to the other half at random, so a deployment's
  processes and a vendor's many clients do not come back in waves), honouring a
  Retry-After. The backoff starts again from its first step only once a connection has
  delivered data: a vendor that accepts and then drops at once (a 429 storm) meets
  longer and longer waits.
- After a break, once data flows again, it reports the `Gap`: the tickers, from the last
  frame before the break to the reconnect.
- Liveness is per ticker and knows market hours: a subscribed ticker whose market is open
  and that has sent nothing for `mute_after` seconds is stale (a chain may fail it over);
  when every open ticker of a connected socket is stale and the socket has delivered no
  data for that long, the socket itself is mute, and it is replaced.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from stockfeed.client.backoff import Backoff
from stockfeed.logs import redact
from stockfeed.market_hours import MarketClock
from stockfeed.sources.base import Emit, Wanted
from stockfeed.sources.events import Event, Gap, SourceState, Status, Summary, Trade, VendorBar
from stockfeed.sources.events import Quote as QuoteEvent
from stockfeed.sources.vendors.errors import Capacity, FatalConfig, Transient, VendorError
from stockfeed.sources.vendors.http import USER_AGENT

log = logging.getLogger(__name__)
# The sockets' own logger (websockets logs every frame at DEBUG, an auth message with its
# key included): held at INFO whatever --log-level says, so a key never reaches a log.
_wire_log = logging.getLogger("stockfeed.sources.vendors.wire")
_wire_log.setLevel(logging.INFO)

# Seconds a handshake (connect, upgrade, auth) may take before it counts as failed.
OPEN_TIMEOUT = 10.0
# Biggest frame read (a vendor's batch of trades); more is a protocol error.
MAX_FRAME = 16 * 1024 * 1024
# The wait after a capacity refusal of the connection itself (Alpaca 406: another holder
# of the key's one connection, such as a process that lost the updater lock a moment ago).
CAPACITY_WAIT = 15.0
# A connection counts as proven (its backoff starts again) after this long up, even
# without data (a quiet night).
PROVEN_AFTER = 30.0

ConnState = Literal["idle", "connecting", "open", "waiting", "failed"]
_DATA = (Trade, QuoteEvent, VendorBar, Summary, Status)


class Dialect(abc.ABC):
    """One endpoint's protocol. `subscribed` and `limited` are the dialect's own record of
    what the vendor confirmed and what it refused (ticker -> why)."""

    label: str  # for logs and health: "alpaca iex", "coinbase"

    def __init__(self) -> None:
        self.subscribed: set[str] = set()
        self.limited: dict[str, str] = {}
        # Set by `read` when what the vendor said calls for a new `sync` (a refusal of
        # some symbols: subscribe the rest differently).
        self.resync = False

    @abc.abstractmethod
    def url(self) -> str: ...

    def headers(self) -> dict[str, str]:
        return {}

    @abc.abstractmethod
    def serves(self, ticker: str) -> bool:
        """Whether this endpoint can carry the ticker at all (its asset class, spelling)."""

    @abc.abstractmethod
    async def open(self, ws: ClientConnection) -> None:
        """The handshake after the upgrade (a welcome, an auth). Raises VendorError."""

    @abc.abstractmethod
    async def sync(self, ws: ClientConnection, wanted: frozenset[str]) -> None:
        """Send what brings the subscriptions to `wanted` (less what the vendor refused)."""

    @abc.abstractmethod
    def read(self, frame: str | bytes) -> list[Event]:
        """The events of one frame; control frames update the dialect. Raises VendorError
        for an error frame that ends the connection (a capacity refusal of some symbols
        is recorded in `limited` instead, and the frame's events are [])."""

    def reset(self) -> None:
        """A new connection: nothing is subscribed on it yet."""
        self.subscribed.clear()

    def closed(self, code: int, reason: str, frames: int) -> VendorError | None:
        """The vendor closed the socket after `frames` frames: what that means for this
        vendor, when it means more than a reconnect (None: a transient break). Finnhub
        drops a second connection of a key at once, before it sends anything."""
        return None

    def http_error(self, status: int, retry_after: float | None) -> VendorError:
        """The upgrade was refused with an HTTP status: what that means for this vendor."""
        if status == 429 or status >= 500:
            return Transient(f"{self.label} answered HTTP {status}", retry_after=retry_after)
        if status in (401, 403, 404, 451):
            return FatalConfig(
                f"{self.label} refused the connection (HTTP {status}): check the URL and key"
            )
        return Transient(f"{self.label} answered HTTP {status}", retry_after=retry_after)


class VendorConnection:
    def __init__(
        self,
        dialect: Dialect,
        *,
        clock: MarketClock,
        mute_after: float = 60.0,
        backoff: Backoff | None = None,
        check_interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.dialect = dialect
        self.clock = clock
        self.mute_after = mute_after
        self.backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self.check_interval = check_interval
        self.capacity_wait = CAPACITY_WAIT
        self._monotonic = monotonic
        self._sleep = sleep
        self.state: ConnState = "idle"
        self.authorised = False
        self.fatal: str | None = None
        self.last_error: str | None = None
        self.attempts = 0  # connection attempts (health, tests)
        self.delays: list[float] = []  # the recent reconnect delays chosen (health, tests)
        self.wanted_here: frozenset[str] = frozenset()
        self.stale: frozenset[str] = frozenset()
        self._watching: dict[str, float] = {}  # ticker -> monotonic when first wanted here
        self._last_data: dict[str, float] = {}  # ticker -> monotonic of its last event
        self._socket_data = 0.0  # monotonic of the socket's last data event
        self._opened = 0.0
        self._gap_since_ns: int | None = None  # wall time of the last data before a break
        self._gap_tickers: frozenset[str] = frozenset()
        self._gap_reason = ""
        self._last_data_ns: int | None = None
        self._ws: ClientConnection | None = None
        self._mute = False
        self._frames = 0  # frames read on the current socket

    # -- what the source reads ---------------------------------------------------------

    def describe(self) -> dict[str, object]:
        return {
            "endpoint": self.dialect.label,
            "state": self.state,
            "authorised": self.authorised,
            "subscribed": len(self.dialect.subscribed),
            "limited": sorted(self.dialect.limited),
            "stale": sorted(self.stale),
            "attempts": self.attempts,
            "last_error": _shown(self.fatal or self.last_error),
        }

    # -- the loop ----------------------------------------------------------------------

    async def run(self, wanted: Wanted, emit: Emit, changed: Callable[[], Awaitable[None]]) -> None:
        """Keep the socket for as long as the source streams. Returns after a fatal error
        (the source reports it); never raises for anything else."""
        watch = asyncio.create_task(
            self._watch(wanted, changed), name=f"{self.dialect.label}-watch"
        )
        try:
            await self._socket_loop(wanted, emit, changed)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    def _wanted(self, wanted: Wanted) -> frozenset[str]:
        here = frozenset(t for t in wanted() if self.dialect.serves(t))
        now = self._monotonic()
        for ticker in here - self.wanted_here:
            self._watching.setdefault(ticker, now)
        for ticker in self.wanted_here - here:
            self._watching.pop(ticker, None)
            self._last_data.pop(ticker, None)
        self.wanted_here = here
        return here

    async def _socket_loop(
        self, wanted: Wanted, emit: Emit, changed: Callable[[], Awaitable[None]]
    ) -> None:
        while True:
            if not self._wanted(wanted):
                if self.state != "idle":
                    self.state = "idle"
                    await changed()
                await self._sleep(self.check_interval)
                continue
            delay: float
            try:
                await self._session(wanted, emit, changed)
                delay = 0.0  # the socket went idle: nothing left to carry
                self.state = "idle"
            except FatalConfig as exc:
                self.fatal = exc.message
                self.state = "failed"
                self.authorised = False
                log.error("%s: %s (not retrying)", self.dialect.label, exc.message)
                await changed()
                return
            except Capacity as exc:
                self.last_error = exc.message
                delay = max(self.capacity_wait, self.backoff.next_delay())
                log.warning(
                    "%s: %s; waiting %.0f s for the one connection", self.dialect.label, exc, delay
                )
            except Transient as exc:
                self.last_error = exc.message
                delay = self._delay(exc.retry_after)
                log.warning("%s: %s; reconnecting in %.1f s", self.dialect.label, exc, delay)
            except InvalidStatus as exc:
                status = exc.response.status_code
                retry = _retry_after(exc.response.headers.get("Retry-After"))
                problem = self.dialect.http_error(status, retry)
                if isinstance(problem, FatalConfig):
                    self.fatal = problem.message
                    self.state = "failed"
                    log.error("%s: %s (not retrying)", self.dialect.label, problem.message)
                    await changed()
                    return
                self.last_error = problem.message
                delay = self._delay(retry)
                log.warning("%s: %s; reconnecting in %.1f s", self.dialect.label, problem, delay)
            except ConnectionClosed as exc:
                # A clean close (1000/1001) too: the vendor restarting a server is not an
                # end of the feed.
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                reason = exc.rcvd.reason if exc.rcvd is not None else ""
                meaning = self.dialect.closed(code, reason, self._frames)
                if isinstance(meaning, Capacity):
                    self.last_error = meaning.message
                    delay = max(self.capacity_wait, self.backoff.next_delay())
                    log.warning(
                        "%s: %s; waiting %.0f s for the one connection",
                        self.dialect.label,
                        meaning.message,
                        delay,
                    )
                else:
                    self.last_error = f"closed by the vendor ({code} {reason})".strip()
                    delay = self._delay(None)
                    log.warning(
                        "%s: %s; reconnecting in %.1f s", self.dialect.label, self.last_error, delay
                    )
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                self.last_error = f"cannot connect ({type(exc).__name__}: {exc})"
                delay = self._delay(None)
                log.warning(
                    "%s: %s; retrying in %.1f s", self.dialect.label, self.last_error, delay
                )
            self._ws = None
            self.authorised = False
            self.note_break()
            if delay > 0:
                self.state = "waiting"
                await changed()
                await self._sleep(delay)

    def _delay(self, retry_after: float | None) -> float:
        step = self.backoff.next_delay()
        delay = max(step, self.backoff.after_hint(retry_after)) if retry_after else step
        self.delays.append(round(delay, 3))
        del self.delays[:-20]
        return delay

    async def _session(
        self, wanted: Wanted, emit: Emit, changed: Callable[[], Awaitable[None]]
    ) -> None:
        """One connection, until it breaks (raises) or has nothing to carry (returns)."""
        self.attempts += 1
        self.state = "connecting"
        self._frames = 0
        self.dialect.reset()
        async with connect(
            self.dialect.url(),
            additional_headers=self.dialect.headers(),
            user_agent_header=USER_AGENT,
            open_timeout=OPEN_TIMEOUT,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            max_size=MAX_FRAME,
            max_queue=64,
            logger=_wire_log,
        ) as ws:
            self._ws = ws
            self._mute = False
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the awaited call completes, and the source would not stop.
            async with asyncio.timeout(OPEN_TIMEOUT):
                await self.dialect.open(ws)
            self.state = "open"
            self.authorised = True
            self._opened = self._socket_data = self._monotonic()
            current = self._wanted(wanted)
            await self.dialect.sync(ws, current)
            await changed()
            proven = False
            while True:
                frame: str | bytes | None = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.check_interval):
                        frame = await ws.recv()  # safe to cancel: nothing is lost
                if frame is not None:
                    self._frames += 1
                    data = False
                    for event in self.dialect.read(frame):
                        data = self._note(event) or data
                        await emit(event)
                    if data:
                        if not proven:
                            proven = True
                            self.backoff.reset()
                        await self._report_gap(emit)
                if self._mute:
                    raise Transient(
                        f"mute socket: no data for {self.mute_after:.0f} s from any open ticker"
                    )
                if not proven and self._monotonic() - self._opened > PROVEN_AFTER:
                    proven = True
                    self.backoff.reset()
                latest = self._wanted(wanted)
                if not latest:
                    return
                if latest != current or self.dialect.resync:
                    current = latest
                    self.dialect.resync = False
                    await self.dialect.sync(ws, current)
                    await changed()

    def _note(self, event: Event) -> bool:
        """Record an event's arrival; True for market data (not heartbeats or state)."""
        if not isinstance(event, _DATA):
            return False
        now = self._monotonic()
        self._last_data[event.ticker] = now
        self._socket_data = now
        self._last_data_ns = time.time_ns()
        return True

    async def _report_gap(self, emit: Emit) -> None:
        if self._gap_since_ns is None:
            return
        gap = Gap(self._gap_tickers, self._gap_since_ns, time.time_ns(), self._gap_reason)
        self._gap_since_ns = None
        await emit(gap)

    def note_break(self) -> None:
        """The socket broke (or never came up): the data since its last frame may be lost."""
        if self.state == "idle":
            return  # it closed because nothing was wanted: nothing was missed
        if self._gap_since_ns is None and self._last_data_ns is not None:
            self._gap_since_ns = self._last_data_ns
            self._gap_tickers = frozenset(self.wanted_here)
            self._gap_reason = self.last_error or "reconnect"

    # -- liveness ------------------------------------------------------------------------

    async def _watch(self, wanted: Wanted, changed: Callable[[], Awaitable[None]]) -> None:
        while True:
            await self._sleep(self.check_interval)
            stale = self._stale_now()
            if self.state == "open" and self._socket_is_mute(stale):
                self._mute = True
            if stale != self.stale:
                self.stale = stale
                await changed()

    def _stale_now(self) -> frozenset[str]:
        now = self._monotonic()
        stale: set[str] = set()
        for ticker in self.wanted_here:
            if ticker in self.dialect.limited:
                continue
            try:
                is_open = self.clock.status(ticker).is_open
            except Exception:  # a calendar failure must not make a ticker stale
                log.exception("market status of %s failed", ticker)
                continue
            if not is_open:
                continue
            since = max(self._last_data.get(ticker, 0.0), self._watching.get(ticker, now))
            if now - since > self.mute_after:
                stale.add(ticker)
        return frozenset(stale)

    def _socket_is_mute(self, stale: frozenset[str]) -> bool:
        """Every open ticker is silent, and so has the socket been, for `mute_after`."""
        if not stale or self._monotonic() - self._socket_data <= self.mute_after:
            return False
        for ticker in self.wanted_here - stale:
            if ticker in self.dialect.limited:
                continue
            with contextlib.suppress(Exception):
                if self.clock.status(ticker).is_open:
                    return False  # an open ticker is fine: the socket is not mute
        return True

    def source_state(self) -> SourceState:
        """This connection's part of the source's state."""
        return SourceState(
            connected=self.state == "open",
            authorised=self.authorised,
            limited=frozenset(self.dialect.limited),
            stale=self.stale,
            fatal=_shown(self.fatal),
            message=_shown(self.fatal or self.last_error),
        )


def _shown(text: str | None) -> str | None:
    """A message as health shows it: a key in a URL (Finnhub's `?token=`) masked."""
    return None if text is None else redact(text)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
