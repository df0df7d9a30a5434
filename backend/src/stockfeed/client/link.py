"""One WebSocket connection of a `StockfeedClient` (stockfeed.client.core) and its life:
open, subscribe to what the client says this connection holds, read frames into the
client's queue, ping, and reconnect after a drop.

A client has one, the main connection (`key == ""`), and, against a deployment split into
ticker groups (docs/protocol.md, "Ticker groups"), one more per route key a `wrong_group`
refusal named (`/ws?route=KEY`). What tickers a connection holds, seqs and epochs belong
to the client (`LinkOwner`); what belongs to the connection itself is here: its state,
its reconnect schedule (a `Backoff` of its own), its pings and latency, what its server
says it holds, and the server's `retry_after_ms` hint.

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
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from stockfeed import __version__
from stockfeed.client.backoff import Backoff
from stockfeed.client.errors import AuthError, ConnectError, describe
from stockfeed.client.messages import (
    Message,
    Pong,
    ProtocolError,
    ServerShutdown,
    Subscribed,
    Unsubscribed,
    parse_message,
)
from stockfeed.protocol.codes import CloseCode

log = logging.getLogger(__name__)

# Close codes after which retrying cannot help (docs/protocol.md "Close codes").
AUTH_CLOSE_CODES: dict[int, str] = {
    CloseCode.UNAUTHORIZED: "unauthenticated or token expired",
    CloseCode.FORBIDDEN: "ticker not allowed",
}

Frame = dict[str, object]


class ConnectionState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class LinkOwner(Protocol):
    """What a connection asks of its client (the settings are read when used)."""

    @property
    def ping_interval(self) -> float: ...
    @property
    def ping_timeout(self) -> float: ...
    @property
    def open_timeout(self) -> float: ...
    @property
    def reconnect(self) -> bool: ...
    @property
    def max_reconnect_attempts(self) -> int | None: ...
    @property
    def max_message_bytes(self) -> int: ...

    def opening_frames(self, link: Link) -> list[Frame]:
        """The connection (re)opened: the subscribe frames it sends first (resuming), after
        which its `asked` must say what they ask for."""
        ...

    def accept(self, link: Link, msg: Message, now: float) -> bool:
        """A message read on `link`: update the client; False drops it."""
        ...

    def link_ended(self, link: Link, error: BaseException | None) -> None:
        """The connection's task ended: closed, cancelled, or given up with `error`."""
        ...


class Link:
    """One connection: `start()` runs it until `close()` (or until it gives up)."""

    def __init__(
        self,
        owner: LinkOwner,
        key: str,
        url: str,
        connect_url: str,
        backoff: Backoff,
        queue: asyncio.Queue[Message],
    ) -> None:
        self.owner = owner
        self.key = key  # "" for the main connection, else its route key
        self.url = url  # what is shown and logged: no token
        self.backoff = backoff
        self.state = ConnectionState.CLOSED
        self.latency_ms: float | None = None  # round trip of the last answered ping
        self.held: tuple[str, ...] = ()  # what its server says it holds
        # The tickers subscribed on the current connection, in order (None while not
        # connected): the client sends only the difference from what this one should hold.
        self.asked: dict[str, None] | None = None
        self.connects = 0
        self.reconnects = 0
        self.malformed = 0  # frames that broke the protocol (skipped)
        self.last_error: str | None = None  # why the last attempt or connection failed
        self.retry_at: float | None = None  # loop time of the next attempt, while waiting
        self.ws: ClientConnection | None = None
        self._connect_url = connect_url
        self._queue = queue
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._shutdown_hint: float | None = None
        self._close_reason: str | None = None
        self._pending_pings: dict[str, float] = {}
        self._ping_counter = 0
        self._last_heard = 0.0
        self._blocked = False  # the reader waits for the caller (not the network)

    @property
    def started(self) -> bool:
        return self._task is not None

    def start(self, ws: ClientConnection | None) -> None:
        """Run the connection: on `ws` when already open, else opening it (at once the
        first time, after the backoff after that)."""
        self.ws = ws  # so that a close() before the task runs still closes it
        name = f"stockfeed-client{'-' + self.key if self.key else ''}"
        self._task = asyncio.create_task(self._run(ws), name=name)

    async def close(self) -> None:
        """Close (1000) and stop reconnecting."""
        self._closing = True
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.state = ConnectionState.CLOSED

    def abort(self) -> None:
        """Stop now, without a closing handshake (the client gave up)."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()

    async def send(self, frames: list[Frame]) -> None:
        """Send now when connected; a drop in between is fine (the reconnect asks again)."""
        ws = self.ws
        if ws is None:
            return
        with contextlib.suppress(ConnectionClosed):
            for frame in frames:
                await ws.send(json.dumps(frame, separators=(",", ":")))

    # -- connecting ----------------------------------------------------------------------

    async def open(self) -> ClientConnection:
        try:
            ws = await connect(
                self._connect_url,
                open_timeout=self.owner.open_timeout,
                ping_interval=None,  # our own pings, see the module docstring
                close_timeout=2,
                max_size=self.owner.max_message_bytes,
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
        error: BaseException | None = None
        try:
            while True:
                if ws is None:
                    ws = await self._reconnect_loop()
                code = await self._serve(ws)
                ws = None
                if self._closing:
                    return
                if code in AUTH_CLOSE_CODES:
                    why = self._close_reason or AUTH_CLOSE_CODES[code]
                    raise AuthError(f"{self.url}: closed {code}: {why}")
                if not self.owner.reconnect:
                    raise ConnectError(f"{self.url}: connection closed ({code})")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            error = exc
        finally:
            self.ws = None
            self.asked = None
            self.state = ConnectionState.CLOSED
            self.retry_at = None
            self.owner.link_ended(self, error)

    async def _reconnect_loop(self) -> ClientConnection:
        """Wait (hint or backoff), try, repeat; raise when out of attempts or refused."""
        self.state = ConnectionState.RECONNECTING if self.connects else ConnectionState.CONNECTING
        hint, self._shutdown_hint = self._shutdown_hint, None
        failures = 0
        limit = self.owner.max_reconnect_attempts
        while True:
            delay = self.backoff.after_hint(hint) if hint is not None else self.backoff.next_delay()
            hint = None
            if self.connects or failures:
                self.retry_at = asyncio.get_running_loop().time() + delay
                await asyncio.sleep(delay)
            self.retry_at = None
            try:
                ws = await self.open()
            except AuthError:
                raise
            except ConnectError as exc:
                failures += 1
                self.last_error = exc.reason
                log.info("stockfeed client: %s", exc)
                if limit is not None and failures >= limit:
                    raise
                continue
            if self.connects > 1:
                self.reconnects += 1
            return ws

    async def _serve(self, ws: ClientConnection) -> int:
        """Subscribe (resuming), read until the connection ends; return its close code."""
        loop = asyncio.get_running_loop()
        self.ws = ws
        self.state = ConnectionState.CONNECTED
        self._pending_pings.clear()
        self._last_heard = loop.time()
        self._blocked = False
        frames = self.owner.opening_frames(self)
        reader = asyncio.create_task(self._read(ws), name="stockfeed-client-read")
        pinger = asyncio.create_task(self._ping_loop(ws), name="stockfeed-client-ping")
        try:
            for frame in frames:
                await ws.send(json.dumps(frame, separators=(",", ":")))
            await asyncio.wait({reader, pinger}, return_when=asyncio.FIRST_COMPLETED)
        except ConnectionClosed:
            pass
        finally:
            for task in (reader, pinger):
                task.cancel()
            await asyncio.gather(reader, pinger, return_exceptions=True)
            self.ws = None
            self.asked = None
            if not ws.close_code:
                ws.transport.abort()
        if self.state == ConnectionState.CONNECTED and not self._closing:
            self.state = ConnectionState.RECONNECTING
        self._close_reason = ws.close_reason or None
        return ws.close_code or 1006

    # -- reading -------------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self._last_heard = loop.time()
                try:
                    msg = parse_message(raw)
                except ProtocolError as exc:
                    self.malformed += 1
                    log.warning("stockfeed client: skipped a frame: %s", exc)
                    continue
                now = loop.time()
                if not self._take(msg, now) or not self.owner.accept(self, msg, now):
                    continue
                if queue.full():
                    self._blocked = True
                    await queue.put(msg)
                    self._blocked = False
                    self._last_heard = loop.time()
                else:
                    queue.put_nowait(msg)

    def _take(self, msg: Message, now: float) -> bool:
        """What a message says about this connection; False drops it (our own pong)."""
        if isinstance(msg, Pong) and isinstance(msg.id, str):
            sent = self._pending_pings.pop(msg.id, None)
            if sent is not None:
                self.latency_ms = (now - sent) * 1000.0
                return False  # the answer to our own heartbeat ping
        elif isinstance(msg, Subscribed):
            self.held = msg.tickers
            # The server took our subscription: a healthy connection, so the next outage
            # starts with short delays again. (Not on mere connect: a server that accepts
            # and closes at once, e.g. 4429, must still be backed off from.)
            self.backoff.reset()
        elif isinstance(msg, Unsubscribed):
            self.held = msg.tickers
        elif isinstance(msg, ServerShutdown):
            self._shutdown_hint = msg.retry_after_ms / 1000.0
        return True

    async def _ping_loop(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            while True:
                interval = self.owner.ping_interval
                self._ping_counter += 1
                key = f"hb{self._ping_counter}"
                self._pending_pings[key] = loop.time()
                await ws.send(json.dumps({"type": "ping", "id": key}, separators=(",", ":")))
                await asyncio.sleep(interval)
                now = loop.time()
                limit = interval + self.owner.ping_timeout
                for old in [k for k, t in self._pending_pings.items() if now - t > limit]:
                    del self._pending_pings[old]
                if not self._blocked and now - self._last_heard > limit:
                    self.last_error = f"no answer from the server in {limit:.0f} s"
                    log.warning("stockfeed client: %s; reconnecting", self.last_error)
                    ws.transport.abort()
                    return
