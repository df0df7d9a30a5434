"""The fast fan-out path: pre-framed bytes, one write per client per loop turn.

uvicorn takes its WebSocket protocol as a class. Ours subclasses uvicorn's
websockets-sansio protocol and, once a handshake is accepted, offers the app a `Sink`
through the ASGI scope's `extensions` (the standard way for a server to offer extra
abilities). The hub builds each server->client text frame once (unmasked, so the same
bytes are valid for every client) and hands the same bytes to every sink. A sink only
appends to a list; one `call_soon` callback per loop turn writes every dirty
connection's frames with a single `transport.write`, so a burst costs one syscall per
client, not one per message. After a flush that took long, the next one waits as long
(`_Flusher`), so overload degrades into bigger writes instead of more of them and
seconds of queued latency.

The opening handshake itself is answered from httptools' parse of the request
(`handshake.py`, `FastHttpProtocol.handle_websocket_upgrade`) instead of websockets
parsing the same request a second time; unusual requests still go uvicorn's way.

This leans on uvicorn internals (pinned in pyproject.toml); tests/server/
test_fast_websocket.py fails loudly when an upgrade breaks it, and without the extension
(another server, the test client) the app falls back to ordinary `send_text` through a
bounded queue (fanout.connections.QueuedConnection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from starlette.websockets import WebSocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import ClientDisconnected, get_client_addr, get_path_with_query_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN

from stockfeed.fanout.connections import DEFAULT_BUDGET, SINK_EXTENSION, Limiter
from stockfeed.fanout.frames import close_frame
from stockfeed.server import handshake
from stockfeed.server.sink_connection import FLUSH_AT, SinkConnection

log = logging.getLogger(__name__)


class _Flusher:
    """Writes every dirty sink once per loop turn, resting after a long flush.

    Almost all of a busy server's time goes to the kernel, one `write` per client per
    flush (loopback or not, each is a TCP segment and a wake-up of the reader). When a
    flush itself took long (thousands of clients), the next one waits as long again:
    the updates that arrive meanwhile join the same writes, so overload buys bigger
    writes instead of more of them. Under light load a flush takes well under
    `REST_AFTER` and nothing waits.

    A rest buys bigger writes only when a client gets another update while it lasts:
    with a few clients per ticker (a whole market, each client a few updates a second)
    it would only add latency, so it is taken when the clients of this loop get, on
    average, at least `WORTH` more frames each over the rest."""

    __slots__ = ("batching", "dirty", "last_end", "loop", "rest_until", "scheduled", "sinks")

    # A flush shorter than this is followed by the next at once (the latency a client
    # sees under light load is untouched); a longer one by a rest as long as it took.
    # 5 ms is about a thousand writes. Much shorter, and a server at a quarter of its
    # capacity can fall into resting for good, since each rest makes the next flush
    # longer (docs/performance.md has the runs that chose it).
    REST_AFTER = 0.005
    # Frames the average client would get during a rest for the rest to be worth it. At
    # 150k msg/s to 1,000 clients a 5 ms rest brings each 0.75 more; at 40k msg/s to
    # 2,000 clients one each, 0.1.
    WORTH = 0.5

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dirty: list[Sink] = []
        self.scheduled = False
        self.rest_until = 0.0  # time.monotonic() before which no flush starts
        self.sinks = 0  # the open connections' sinks on this loop
        self.last_end = 0.0  # when the last flush ended
        # Inside a read from the broker (begin_batch..end_batch): its end flushes, so no
        # callback is scheduled for what it marks.
        self.batching = False

    def mark(self, sink: Sink) -> None:
        self.dirty.append(sink)
        if not self.scheduled and not self.batching:
            self._schedule()

    def _schedule(self) -> None:
        self.scheduled = True
        rest = self.rest_until - time.monotonic()
        if rest > 0:
            self.loop.call_later(rest, self.flush)
        else:
            self.loop.call_soon(self.flush)

    def begin_batch(self) -> None:
        self.batching = True

    def end_batch(self) -> None:
        """The read is over: write what it marked now (no loop turn, no callback), or,
        resting after a long flush, when the rest is over, as `mark` would have."""
        self.batching = False
        if not self.dirty or self.scheduled:
            return  # nothing, or a flush is already on its way for what was marked
        if self.rest_until > time.monotonic():
            self._schedule()
        else:
            self._write_out()

    def flush(self) -> None:
        self.scheduled = False
        self._write_out()

    def _write_out(self) -> None:
        dirty, self.dirty = self.dirty, []
        started = time.monotonic()
        frames = 0
        for sink in dirty:
            frames += sink.flush()
        ended = time.monotonic()
        took = ended - started
        rest = False
        if took > self.REST_AFTER:
            # Frames a second per client since the last flush ended (this one's included).
            per_client = frames / (ended - self.last_end) / max(1, self.sinks)
            rest = per_client * took >= self.WORTH
        self.last_end = ended
        self.rest_until = ended + took if rest else 0.0


_flushers: dict[asyncio.AbstractEventLoop, _Flusher] = {}


def broker_batch_hooks() -> tuple[Callable[[], None], Callable[[], None]]:
    """The broker's batch hooks (Broker.set_batch_hooks) for the running loop's flusher:
    the writes a read from Redis causes go out at its end, in the same loop turn, with no
    callback scheduled per read. Bound once: looking the loop up on every read cost two
    getpid() system calls a read."""
    flusher = _flusher(asyncio.get_running_loop())
    return flusher.begin_batch, flusher.end_batch


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        _flushers.clear()  # a new loop (tests): the old one is gone
        flusher = _flushers[loop] = _Flusher(loop)
    return flusher


class Sink:
    """Where the app writes pre-framed bytes for one connection. Never blocks.

    Its owner (the connection the app made of it, server/sink_connection.py) appends
    with `write`, or on the broadcast's hot path straight to `pending` (marking the sink
    with `flusher` when it was empty, counting `pending_bytes`, flushing past
    `FLUSH_AT`), and hears of the transport through `on_pause`, `on_drain` and
    `on_ping`."""

    __slots__ = (
        "_protocol",
        "closed",
        "flusher",
        "on_drain",
        "on_pause",
        "on_ping",
        "paused",
        "pending",
        "pending_bytes",
    )

    def __init__(self, protocol: FastWebSocketProtocol) -> None:
        self._protocol = protocol
        self.flusher = _flusher(protocol.loop)
        self.flusher.sinks += 1  # until the connection is lost
        self.pending: list[bytes] = []
        self.pending_bytes = 0  # of `pending`, kept by whoever appends (see `write`)
        self.closed = False
        # The transport asked us to stop writing (its buffer passed the high mark); kept
        # as a plain attribute because the broadcast reads it for every client.
        self.paused = False
        # Called when the transport's buffer passed its high-water mark, and when it
        # drained below its low-water mark.
        self.on_pause: Callable[[], None] | None = None
        self.on_drain: Callable[[], None] | None = None
        # Called for every WebSocket ping the client sends; False: over its message
        # rate (the owner closes the connection), the ping goes unanswered.
        self.on_ping: Callable[[], bool] | None = None

    def connection(
        self,
        websocket: WebSocket,
        *,
        stuck_timeout: float,
        budget: int = DEFAULT_BUDGET,
        limiter: Limiter | None = None,
    ) -> SinkConnection:
        """The hub's view of this connection (fanout.connections.make_connection asks
        the sink it finds in the scope's extensions for it)."""
        return SinkConnection(
            websocket, self, stuck_timeout=stuck_timeout, budget=budget, limiter=limiter
        )

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        if not self.pending:
            self.flusher.mark(self)
        self.pending.append(frame)
        self.pending_bytes += len(frame)
        if self.pending_bytes > FLUSH_AT:
            self.flush()

    def flush(self) -> int:
        """Hand the pending frames to the transport in one write; how many there were."""
        pending = self.pending
        if not pending:
            return 0
        self.pending = []
        self.pending_bytes = 0
        if self.closed:
            return 0
        transport = self._protocol.transport
        if transport.is_closing():
            return 0
        transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
        return len(pending)

    def held_bytes(self) -> int:
        """Bytes written for this client and not yet taken by the kernel: the frames
        not yet handed to the transport plus the transport's buffer."""
        transport = self._protocol.transport
        buffered = 0 if transport.is_closing() else transport.get_write_buffer_size()
        return buffered + self.pending_bytes

    def backlog(self) -> tuple[int, int]:
        """(frames not yet handed to the transport, bytes in the transport's buffer)."""
        transport = self._protocol.transport
        buffered = 0 if transport.is_closing() else transport.get_write_buffer_size()
        return len(self.pending), buffered

    def close(self, code: int, reason: str, grace: float = 5.0) -> None:
        """Send a close frame behind what is buffered, then drop the connection after
        `grace` seconds: a client that is stuck cannot hold our memory any longer."""
        if self.closed:
            return
        self.write(close_frame(code, reason))
        self.flush()
        self.closed = True
        protocol = self._protocol
        protocol.close_sent = True  # uvicorn must not send anything after it
        if not protocol.transport.is_closing():
            protocol.transport.resume_reading()  # for the peer's close reply (or its end)
        protocol.loop.call_later(grace, protocol.transport.abort)


class _Inbox:
    """What uvicorn uses of an asyncio.Queue (put_nowait/get/empty), in ~150 bytes
    instead of ~2.4 KiB: one per connection, and it almost always holds nothing."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class _Flag:
    """What uvicorn uses of an asyncio.Event (set/clear/is_set/wait), without the deque."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> None:
        if self._value:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter


class FastWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sansio WebSocket protocol plus the `stockfeed.sink` extension, with
    lighter per-connection state (see _Inbox, _Flag, `send` and `__slots__`)."""

    # uvicorn's protocol sets 34 attributes per connection. CPython 3.11 keeps an
    # instance's attributes in a compact table whose keys are shared by the whole class,
    # but only up to 29 keys (or while every instance adds them in the same order):
    # past that each connection gets a dict of its own, ~1.2 KiB more. Slots for the
    # per-server settings uvicorn copies onto every connection, and for the attributes
    # that the two handshake paths set in different orders, keep the rest shared.
    __slots__ = (
        "_accept",
        "app",
        "app_state",
        "asgi_version",
        "close_timeout",
        "config",
        "connections",
        "default_headers",
        "logger",
        "loop",
        "ping_interval",
        "ping_timeout",
        "request",
        "response",
        "root_path",
        "scope",
        "sink",
        "tasks",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag(True)  # type: ignore[assignment]
        self.sink: Sink | None = None
        # Set while a handshake taken from httptools' parse (see `open_upgraded`) waits
        # for the app's accept: the Sec-WebSocket-Accept value to answer with.
        self._accept: str | None = None

    # Past `WRITE_HIGH` buffered bytes the transport pauses us and the client's updates
    # are conflated until it drains below `WRITE_LOW`: a stuck client costs at most this.
    WRITE_HIGH = 64 * 1024
    WRITE_LOW = 16 * 1024

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=self.WRITE_HIGH, low=self.WRITE_LOW)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.close_sent:
            self.sink = Sink(self)
            scope["extensions"][SINK_EXTENSION] = self.sink

    def adopt(self, http: HttpToolsProtocol) -> None:
        """`connection_made` with the addresses the HTTP protocol already asked the
        socket for (each costs a system call and a few objects)."""
        self.connections.add(self)
        self.transport = http.transport
        self.server = http.server
        self.client = http.client
        self.scheme = "wss" if http.scheme == "https" else "ws"
        self.transport.set_write_buffer_limits(high=self.WRITE_HIGH, low=self.WRITE_LOW)

    def open_upgraded(self, url: bytes, headers: list[tuple[bytes, bytes]], accept: str) -> None:
        """`handle_connect` for a request httptools parsed and `handshake.accept_value`
        passed: the same ASGI scope, without websockets parsing the request again."""
        # The request is consumed: websockets' parser starts at the first frame.
        conn = self.conn
        conn.state = OPEN
        conn.parser = conn.parse()
        next(conn.parser)
        self._accept = accept
        self.handshake_initiated = True
        raw_path, _, query_string = url.partition(b"?")
        self.sink = Sink(self)
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            "path": self.root_path + unquote(raw_path.decode("ascii")),
            "raw_path": self.root_path.encode("ascii") + raw_path,
            "query_string": query_string,
            "headers": headers,
            "subprotocols": handshake.subprotocols(headers),
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        # The ASGI scope type only knows the standard extensions.
        self.scope["extensions"][SINK_EXTENSION] = self.sink  # type: ignore[assignment]
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    async def _send_accept(self, message: Any, accept: str) -> None:
        """uvicorn's answer to `websocket.accept`, as bytes from `handshake`."""
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        self.logger.info(
            '%s - "WebSocket %s" [accepted]',
            get_client_addr(self.scope),
            get_path_with_query_string(self.scope),
        )
        self._accept = None
        if not self.transport.is_closing():
            self.handshake_complete = True
            self.transport.write(
                handshake.switching_protocols(
                    accept,
                    self.default_headers,
                    message.get("headers", ()),
                    message.get("subprotocol"),
                )
            )
            self.start_keepalive()

    async def send(self, message: Any) -> None:
        accept = self._accept
        if (
            accept is not None
            and message["type"] == "websocket.accept"
            and not self.handshake_complete
            and self.initial_response is None
        ):
            await self._send_accept(message, accept)
            return
        # The app's own send/close must not overtake frames still pending in the sink.
        sink = self.sink
        if sink is not None and self.handshake_complete:
            sink.flush()
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            # A refused handshake (admission/gate.py: 401/403/429, a JSON body) is complete
            # once its body is out; uvicorn does not mark it so and would log "returned
            # without completing handshake" at error level for every refusal.
            self.handshake_complete = True
        if message["type"] == "websocket.accept":
            # The handshake's request and response objects (headers and all, ~2 KiB)
            # are not used once the connection is open. websockets' parser generator
            # keeps the request alive in its frame, so empty its headers too.
            self.request.headers.clear()
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]

    def handle_text(self, event: Any) -> None:
        # uvicorn answers a text frame that is not UTF-8 with 1007, as it should, but
        # logs a full traceback at error level each time: any client could fill the
        # log with them. Check first (client frames are small and few) and say it in
        # one line instead.
        if event.fin and not self.close_sent:
            try:
                bytes(event.data).decode()
            except UnicodeDecodeError:
                log.info("client %s sent a text frame that is not UTF-8: closing 1007", self.client)
                self.frames = []
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        super().handle_text(event)

    def pause_writing(self) -> None:
        """The client is not taking what it is sent: stop reading it too, so nothing it
        sends (messages, pings) makes more replies until it drains. The stuck watch
        closes it if it never does."""
        super().pause_writing()
        sink = self.sink
        if sink is not None:
            sink.paused = True
            if not self.transport.is_closing():
                self.transport.pause_reading()
            if sink.on_pause is not None:
                sink.on_pause()

    def resume_writing(self) -> None:
        super().resume_writing()
        sink = self.sink
        if sink is not None:
            sink.paused = False
            # uvicorn keeps reading paused while a message waits for the app (read_paused).
            if not self.read_paused and not self.transport.is_closing():
                self.transport.resume_reading()
            if sink.on_drain is not None:
                sink.on_drain()

    async def receive(self) -> Any:
        """uvicorn's, minus resuming reading while our writes are paused."""
        message = await self.queue.get()
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            sink = self.sink
            if sink is None or not sink.paused:
                self.transport.resume_reading()
        return message

    def handle_ping(self) -> None:
        """A ping counts against the client's message rate, and is not answered while
        its writes are paused (the pong would only add to what it does not read)."""
        output = self.conn.data_to_send()
        sink = self.sink
        if sink is not None:
            if sink.on_ping is not None and not sink.on_ping():
                return
            if sink.paused or sink.closed:
                return
        self.transport.write(b"".join(output))

    def connection_lost(self, exc: Exception | None) -> None:
        sink = self.sink
        if sink is not None:
            sink.flusher.sinks -= 1
            sink.closed = True
            sink.paused = False
            on_drain, sink.on_drain, sink.on_pause, sink.on_ping = sink.on_drain, None, None, None
            if on_drain is not None:
                on_drain()  # wakes whoever waits for the client to drain: it never will
        super().connection_lost(exc)
