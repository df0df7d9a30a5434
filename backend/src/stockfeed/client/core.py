"""`StockfeedClient`: an async client of the multiplexed `/ws` endpoint that stays connected.

    async with StockfeedClient("ws://127.0.0.1:8000", tickers=["AAPL"]) as feed:
        async for msg in feed:
            ...

One background task owns the connection. It reads frames into a bounded queue that the
caller drains by iterating; when the caller is slow the queue fills, the task stops
reading, and TCP pushes back to the server, which conflates (and says so) instead of
buffering without bound.

When the connection drops it reconnects by itself: after the server's `retry_after_ms`
when it announced a shutdown, otherwise after an exponential backoff with jitter. It
then subscribes again with `resume: {TICKER: {"seq": last_seq, "epoch": epoch}}`, so the
server replays what was missed; where it cannot, a `snapshot` with `gap=True` comes
through to the caller. Duplicates (a `seq` at or below the last one seen in the same
epoch) are dropped here, so the caller sees every `seq` of a ticker at most once and in
increasing order, except after a gap snapshot that opens a new epoch (a new seq space).

With `bars=["1m", ...]` every subscribe (the first and each resume) asks for candles too:
`Bars` and `Bar` messages, merged by `time` into `candles(ticker, interval)`. The server
sends `bars` afresh after a resume or a gap, so the merged bars end as the server's.

Application-level pings (`{"type":"ping"}`) measure `latency_ms` and detect a dead
connection: no frame for `ping_interval + ping_timeout` while we are reading closes it
and reconnects. The websockets library's own keepalive is off, because it would also
fire while the caller, not the network, is the slow side.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from stockfeed import __version__
from stockfeed.client.backoff import Backoff
from stockfeed.client.messages import (
    Bar,
    BarData,
    Bars,
    ErrorMessage,
    Message,
    Pong,
    PriceUpdate,
    ProtocolError,
    ServerShutdown,
    Snapshot,
    Subscribed,
    Unsubscribed,
    parse_message,
)
from stockfeed.protocol.codes import CloseCode
from stockfeed.sources.base import INTERVALS

log = logging.getLogger(__name__)

# Close codes after which retrying cannot help (docs/protocol.md "Close codes").
_AUTH_CLOSE_CODES: dict[int, str] = {
    CloseCode.UNAUTHORIZED: "unauthenticated or token expired",
    CloseCode.FORBIDDEN: "ticker not allowed",
}
# Per-ticker errors that mean "stop asking for this ticker" (also after a reconnect).
_REFUSED_TICKER_CODES = {
    "invalid_ticker",
    "unknown_ticker",
    "subscription_limit",
    "forbidden_ticker",
}
# A subscribe frame must stay under the server's 4096-byte limit, resume points included.
_TICKERS_PER_SUBSCRIBE = 25
# Bars kept per ticker and interval by `candles()` (the oldest go first).
MAX_CANDLES = 5000


class ConnectionState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class StockfeedError(Exception):
    """Base of the client's errors; the message is meant for a user as is."""


class ConnectError(StockfeedError):
    """Could not connect (the first time, or not again within the allowed attempts)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message  # the short why, without the URL


class AuthError(StockfeedError):
    """The server refused the token (HTTP 401/403 or close 4401/4403): retrying won't help."""


def ws_url(url: str, token: str | None = None) -> str:
    """The `/ws` endpoint for `url` (`ws://host:port`, `http://…` or a full `/ws` URL),
    with the token as the `access_token` query parameter when one is given."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"not a WebSocket URL: {url!r} (expected ws://HOST:PORT)")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "access_token"]
    if token:
        query.append(("access_token", token))
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def _normalize(ticker: str) -> str:
    if not isinstance(ticker, str):
        raise TypeError(f"tickers are strings, got {ticker!r}")
    return ticker.strip().upper()


def describe(exc: BaseException) -> str:
    """A short human reason for a failed connection attempt."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} from the server"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class StockfeedClient:
    def __init__(
        self,
        url: str = "ws://127.0.0.1:8000",
        tickers: Iterable[str] = (),
        *,
        token: str | None = None,
        ping_interval: float = 10.0,
        ping_timeout: float = 10.0,
        open_timeout: float = 10.0,
        reconnect: bool = True,
        max_reconnect_attempts: int | None = None,
        retry_first_connect: bool = False,
        backoff: Backoff | None = None,
        queue_size: int = 1024,
        max_message_bytes: int = 1 << 20,
        bars: Iterable[str] = (),
    ) -> None:
        """`retry_first_connect=False` makes entering the client fail at once with
        `ConnectError` when the server cannot be reached (a wrong URL shows up right away);
        drops after that are always retried, `max_reconnect_attempts` times in a row at most
        (None: forever), unless `reconnect=False`. `bars` (intervals: "1m", "5m", "15m",
        "1h", "1d") asks for candles of every ticker: `Bars` / `Bar` messages, merged by
        time into `candles(ticker, interval)`."""
        self.bar_intervals = tuple(dict.fromkeys(bars))
        unknown = [i for i in self.bar_intervals if i not in INTERVALS]
        if unknown:
            raise ValueError(f"bars: unknown interval {unknown[0]!r}: use {', '.join(INTERVALS)}")
        self.url = ws_url(url)
        self._connect_url = ws_url(url, token)
        self._wanted: dict[str, None] = dict.fromkeys(_normalize(t) for t in tickers)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.retry_first_connect = retry_first_connect
        self.backoff = backoff or Backoff()
        self.max_message_bytes = max_message_bytes
        self.state = ConnectionState.CLOSED
        self.latency_ms: float | None = None  # round trip of the last answered ping
        self.last_seq: dict[str, int] = {}  # per ticker, the newest seq passed on
        self.epochs: dict[str, str] = {}  # per ticker, the seq space last_seq belongs to
        self.held: tuple[str, ...] = ()  # what the server says this connection holds
        self.connects = 0
        self.reconnects = 0
        self.duplicates = 0  # messages dropped because their seq was already seen
        self.malformed = 0  # frames that broke the protocol (skipped)
        self.last_error: str | None = None  # why the last attempt or connection failed
        self._retry_at: float | None = None  # loop time of the next attempt, while waiting
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=queue_size)
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._finished = asyncio.Event()
        self._error: BaseException | None = None
        self._closing = False
        self._shutdown_hint: float | None = None
        self._close_reason: str | None = None
        self._pending_pings: dict[str, float] = {}
        self._ping_counter = 0
        self._last_heard = 0.0
        self._blocked = False  # the reader waits for the caller (not the network)
        self._candles: dict[tuple[str, str], dict[int, BarData]] = {}

    # -- public API ----------------------------------------------------------------------

    @property
    def retry_in(self) -> float | None:
        """Seconds until the next connection attempt, while waiting for it."""
        if self._retry_at is None:
            return None
        return max(0.0, self._retry_at - asyncio.get_running_loop().time())

    def candles(self, ticker: str, interval: str) -> list[BarData]:
        """The bars received so far for a ticker and interval, oldest first: each `Bars`
        and `Bar` merged by `time` (a later one replaces an earlier one of the same time)."""
        book = self._candles.get((_normalize(ticker), interval), {})
        return [book[t] for t in sorted(book)]

    @property
    def tickers(self) -> tuple[str, ...]:
        """The tickers asked for (minus those the server refused), in order."""
        return tuple(self._wanted)

    async def __aenter__(self) -> StockfeedClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect and subscribe; ConnectError/AuthError when the first attempt fails
        (unless `retry_first_connect`)."""
        if self._task is not None:
            raise RuntimeError("the client is already started")
        self.state = ConnectionState.CONNECTING
        ws: ClientConnection | None = None
        if not self.retry_first_connect:
            try:
                ws = await self._open()
            except BaseException:
                self.state = ConnectionState.CLOSED
                raise
            self.state = ConnectionState.CONNECTED
            self._ws = ws  # so that a close() before the task runs still closes it
        self._task = asyncio.create_task(self._run(ws), name="stockfeed-client")

    async def close(self) -> None:
        """Close the connection (1000) and stop reconnecting. Queued messages can still be
        read; then iteration ends."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.state = ConnectionState.CLOSED
        self._finished.set()

    async def subscribe(self, *tickers: str) -> None:
        """Add tickers. The answer (`subscribed`, or an `error` per refused ticker) comes
        through the message stream; while disconnected they are sent on reconnect."""
        new = [t for t in map(_normalize, tickers) if t not in self._wanted]
        self._wanted.update(dict.fromkeys(new))
        if new:
            await self._send_quietly(self._subscribe_frames(new, resume=False))

    async def unsubscribe(self, *tickers: str) -> None:
        """Remove tickers; their updates still in flight are dropped, not passed on."""
        gone = [t for t in map(_normalize, tickers) if t in self._wanted]
        for ticker in gone:
            del self._wanted[ticker]
            self.last_seq.pop(ticker, None)
            self.epochs.pop(ticker, None)
            for interval in self.bar_intervals:
                self._candles.pop((ticker, interval), None)
        if gone:
            await self._send_quietly([{"action": "unsubscribe", "tickers": gone}])

    def __aiter__(self) -> StockfeedClient:
        return self

    async def __anext__(self) -> Message:
        while True:
            if not self._queue.empty():
                msg = self._queue.get_nowait()
                if self._unwanted(msg):
                    continue
                return msg
            if self._finished.is_set():
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            getter = asyncio.ensure_future(self._queue.get())
            finished = asyncio.ensure_future(self._finished.wait())
            try:
                await asyncio.wait({getter, finished}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                finished.cancel()
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled():
                msg = getter.result()
                if not self._unwanted(msg):
                    return msg

    def _unwanted(self, msg: Message) -> bool:
        # Queued before an unsubscribe: the caller no longer wants it.
        return (
            isinstance(msg, PriceUpdate | Snapshot | Bars | Bar) and msg.ticker not in self._wanted
        )

    async def recv(self) -> Message:
        """The next message (StopAsyncIteration once the client is closed, the client's
        error when it gave up); wrap in `asyncio.timeout()` to bound the wait."""
        return await self.__anext__()

    # -- connection lifecycle ------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        try:
            ws = await connect(
                self._connect_url,
                open_timeout=self.open_timeout,
                ping_interval=None,  # our own pings, see the module docstring
                close_timeout=2,
                max_size=self.max_message_bytes,
                compression=None,  # the server sends uncompressed frames
                user_agent_header=f"stockfeed-client/{__version__}",
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 401:
                raise AuthError(f"{self.url}: the server wants a valid token (HTTP 401)") from None
            if status == 403:
                raise AuthError(
                    f"{self.url}: the server refused the connection (HTTP 403): a bad token "
                    "or origin, or no stockfeed WebSocket at this path"
                ) from None
            if status == 404:
                raise ConnectError(f"{self.url}: no stockfeed WebSocket there (HTTP 404)") from None
            reason = describe(exc)
            raise ConnectError(f"cannot connect to {self.url}: {reason}", reason) from exc
        except InvalidURI as exc:
            raise ConnectError(f"{self.url}: {exc}") from None
        except Exception as exc:  # refused, DNS, timeout, bad handshake: all retryable
            reason = describe(exc)
            raise ConnectError(f"cannot connect to {self.url}: {reason}", reason) from exc
        self.connects += 1
        self.last_error = None
        return ws

    async def _run(self, ws: ClientConnection | None) -> None:
        try:
            while True:
                if ws is None:
                    ws = await self._reconnect_loop()
                code = await self._serve(ws)
                ws = None
                if self._closing:
                    return
                if code in _AUTH_CLOSE_CODES:
                    why = self._close_reason or _AUTH_CLOSE_CODES[code]
                    raise AuthError(f"{self.url}: closed {code}: {why}")
                if not self.reconnect:
                    raise ConnectError(f"{self.url}: connection closed ({code})")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._error = exc
        finally:
            self._ws = None
            self.state = ConnectionState.CLOSED
            self._retry_at = None
            self._finished.set()

    async def _reconnect_loop(self) -> ClientConnection:
        """Wait (hint or backoff), try, repeat; raise when out of attempts or refused."""
        self.state = ConnectionState.RECONNECTING if self.connects else ConnectionState.CONNECTING
        hint, self._shutdown_hint = self._shutdown_hint, None
        failures = 0
        while True:
            delay = self.backoff.after_hint(hint) if hint is not None else self.backoff.next_delay()
            hint = None
            if self.connects or failures:
                self._retry_at = asyncio.get_running_loop().time() + delay
                await asyncio.sleep(delay)
            self._retry_at = None
            try:
                ws = await self._open()
            except AuthError:
                raise
            except ConnectError as exc:
                failures += 1
                self.last_error = exc.reason
                log.info("stockfeed client: %s", exc)
                if (
                    self.max_reconnect_attempts is not None
                    and failures >= self.max_reconnect_attempts
                ):
                    raise
                continue
            if self.connects > 1:
                self.reconnects += 1
            return ws

    async def _serve(self, ws: ClientConnection) -> int:
        """Subscribe (resuming), read until the connection ends; return its close code."""
        loop = asyncio.get_running_loop()
        self._ws = ws
        self.state = ConnectionState.CONNECTED
        self._pending_pings.clear()
        self._last_heard = loop.time()
        self._blocked = False
        reader = asyncio.create_task(self._read(ws), name="stockfeed-client-read")
        pinger = asyncio.create_task(self._ping_loop(ws), name="stockfeed-client-ping")
        try:
            for frame in self._subscribe_frames(list(self._wanted), resume=True):
                await ws.send(json.dumps(frame, separators=(",", ":")))
            await asyncio.wait({reader, pinger}, return_when=asyncio.FIRST_COMPLETED)
        except ConnectionClosed:
            pass
        finally:
            for task in (reader, pinger):
                task.cancel()
            await asyncio.gather(reader, pinger, return_exceptions=True)
            self._ws = None
            if not ws.close_code:
                ws.transport.abort()
        if self.state == ConnectionState.CONNECTED and not self._closing:
            self.state = ConnectionState.RECONNECTING
        self._close_reason = ws.close_reason or None
        return ws.close_code or 1006

    def _subscribe_frames(self, tickers: list[str], *, resume: bool) -> list[dict[str, object]]:
        frames: list[dict[str, object]] = []
        for start in range(0, len(tickers), _TICKERS_PER_SUBSCRIBE):
            chunk = tickers[start : start + _TICKERS_PER_SUBSCRIBE]
            frame: dict[str, object] = {"action": "subscribe", "tickers": chunk}
            if self.bar_intervals:
                frame["bars"] = list(self.bar_intervals)
            points: dict[str, object] = {}
            for ticker in chunk if resume else ():
                seq = self.last_seq.get(ticker)
                if seq is None:
                    continue
                epoch = self.epochs.get(ticker)
                points[ticker] = seq if epoch is None else {"seq": seq, "epoch": epoch}
            if points:
                frame["resume"] = points
            frames.append(frame)
        return frames

    async def _send_quietly(self, frames: list[dict[str, object]]) -> None:
        """Send now when connected; a drop in between is fine (resubscribe covers it)."""
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(ConnectionClosed):
            for frame in frames:
                await ws.send(json.dumps(frame, separators=(",", ":")))

    # -- reading -------------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self._last_heard = loop.time()
                try:
                    msg = parse_message(raw)
                except ProtocolError as exc:
                    self.malformed += 1
                    log.warning("stockfeed client: skipped a frame: %s", exc)
                    continue
                if not self._accept(msg, loop.time()):
                    continue
                if self._queue.full():
                    self._blocked = True
                    await self._queue.put(msg)
                    self._blocked = False
                    self._last_heard = loop.time()
                else:
                    self._queue.put_nowait(msg)

    def _accept(self, msg: Message, now: float) -> bool:
        """Update the client's state from a message; False drops it (duplicate, ours)."""
        if isinstance(msg, PriceUpdate):
            if msg.ticker not in self._wanted:
                return False  # unsubscribed while it was in flight
            last = self.last_seq.get(msg.ticker)
            if last is not None and msg.seq <= last:
                self.duplicates += 1
                return False
            self.last_seq[msg.ticker] = msg.seq
            return True
        if isinstance(msg, Snapshot):
            return self._accept_snapshot(msg)
        if isinstance(msg, Bars | Bar):
            if msg.ticker not in self._wanted:
                return False
            book = self._candles.setdefault((msg.ticker, msg.interval), {})
            for bar in msg.bars if isinstance(msg, Bars) else (msg.bar,):
                book[bar.time] = bar
            while len(book) > MAX_CANDLES:
                del book[min(book)]
            return True
        if isinstance(msg, Pong) and isinstance(msg.id, str):
            sent = self._pending_pings.pop(msg.id, None)
            if sent is not None:
                self.latency_ms = (now - sent) * 1000.0
                return False  # the answer to our own heartbeat ping
            return True
        if isinstance(msg, Subscribed):
            for ticker, epoch in msg.epochs.items():
                if self.epochs.get(ticker, epoch) != epoch:
                    # A new seq space (server restarted without shared state): the old
                    # last_seq means nothing there. The gap snapshot follows.
                    self.last_seq.pop(ticker, None)
                self.epochs[ticker] = epoch
            self.held = msg.tickers
            # The server took our subscription: a healthy connection, so the next outage
            # starts with short delays again. (Not on mere connect: a server that accepts
            # and closes at once, e.g. 4429, must still be backed off from.)
            self.backoff.reset()
        elif isinstance(msg, Unsubscribed):
            self.held = msg.tickers
        elif isinstance(msg, ServerShutdown):
            self._shutdown_hint = msg.retry_after_ms / 1000.0
        elif isinstance(msg, ErrorMessage) and msg.ticker and msg.code in _REFUSED_TICKER_CODES:
            for ticker in [t for t in self._wanted if t[:32] == msg.ticker.upper()]:
                del self._wanted[ticker]  # not asked again after a reconnect
        return True

    def _accept_snapshot(self, msg: Snapshot) -> bool:
        ticker = msg.ticker
        if ticker not in self._wanted:
            return False
        last = self.last_seq.get(ticker)
        same_epoch = msg.epoch == self.epochs.get(ticker, msg.epoch)
        if not msg.gap and last is not None and msg.seq <= last and same_epoch:
            self.duplicates += 1
            return False
        # A gap snapshot is always passed on: it tells the caller history broke here.
        self.last_seq[ticker] = msg.seq
        self.epochs[ticker] = msg.epoch
        return True

    async def _ping_loop(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            while True:
                self._ping_counter += 1
                key = f"hb{self._ping_counter}"
                self._pending_pings[key] = loop.time()
                await ws.send(json.dumps({"type": "ping", "id": key}, separators=(",", ":")))
                await asyncio.sleep(self.ping_interval)
                now = loop.time()
                limit = self.ping_interval + self.ping_timeout
                for old in [k for k, t in self._pending_pings.items() if now - t > limit]:
                    del self._pending_pings[old]
                if not self._blocked and now - self._last_heard > limit:
                    self.last_error = f"no answer from the server in {limit:.0f} s"
                    log.warning("stockfeed client: %s; reconnecting", self.last_error)
                    ws.transport.abort()
                    return
