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

`FastHttpProtocol` also holds the HTTP edges (`EdgeLimits`): a deadline for the request
head, byte and count limits on the URL and headers checked while httptools parses, and
a process-wide cap on open connections, each answered with a status and a JSON body.
They live on the connection-setup and request-parse path only; nothing of them runs per
broadcast message.

This leans on uvicorn internals (pinned in pyproject.toml). `tests/test_fastpath.py`
fails loudly when an upgrade breaks it, and without the extension (another server,
the test client) the app falls back to ordinary `send_text` through a bounded queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import ClientDisconnected, get_client_addr, get_path_with_query_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN

from stockfeed import handshake

if TYPE_CHECKING:
    from stockfeed.config import Settings

log = logging.getLogger(__name__)

SINK_EXTENSION = "stockfeed.sink"

_HEADER_SMALL = struct.Struct("!BB")
_HEADER_MEDIUM = struct.Struct("!BBH")
_HEADER_LARGE = struct.Struct("!BBQ")
_FIN_TEXT = 0x81


def close_frame(code: int, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:120]
    return _HEADER_SMALL.pack(0x88, len(payload)) + payload


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked server->client text frame (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        return _HEADER_SMALL.pack(_FIN_TEXT, n) + payload
    if n < 65536:
        return _HEADER_MEDIUM.pack(_FIN_TEXT, 126, n) + payload
    return _HEADER_LARGE.pack(_FIN_TEXT, 127, n) + payload


class _Flusher:
    """Writes every dirty sink once per loop turn, resting after a long flush.

    Almost all of a busy server's time goes to the kernel, one `write` per client per
    flush (loopback or not, each is a TCP segment and a wake-up of the reader). When a
    flush itself took long (thousands of clients), the next one waits as long again:
    the updates that arrive meanwhile join the same writes, so overload buys bigger
    writes instead of more of them. Under light load a flush takes well under
    `REST_AFTER` and nothing waits."""

    __slots__ = ("dirty", "loop", "rest_until", "scheduled")

    # A flush shorter than this is followed by the next at once (the latency a client
    # sees under light load is untouched); a longer one by a rest as long as it took.
    # 5 ms is about a thousand writes. With 2 ms a server at a quarter of its capacity
    # sometimes fell into resting for good (each rest makes the next flush longer):
    # p99 at 50,000 msg/s 2-30 ms from run to run, against 2-8 ms with 5 ms.
    REST_AFTER = 0.005

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dirty: list[Sink] = []
        self.scheduled = False
        self.rest_until = 0.0  # time.monotonic() before which no flush starts

    def mark(self, sink: Sink) -> None:
        self.dirty.append(sink)
        if not self.scheduled:
            self.scheduled = True
            rest = self.rest_until - time.monotonic()
            if rest > 0:
                self.loop.call_later(rest, self.flush)
            else:
                self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        dirty, self.dirty = self.dirty, []
        started = time.monotonic()
        for sink in dirty:
            sink.flush()
        ended = time.monotonic()
        took = ended - started
        self.rest_until = ended + took if took > self.REST_AFTER else 0.0


_flushers: dict[asyncio.AbstractEventLoop, _Flusher] = {}


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        _flushers.clear()  # a new loop (tests): the old one is gone
        flusher = _flushers[loop] = _Flusher(loop)
    return flusher


class Sink:
    """Where the app writes pre-framed bytes for one connection. Never blocks."""

    __slots__ = ("_flusher", "_pending", "_protocol", "closed", "on_drain", "paused")

    def __init__(self, protocol: FastWebSocketProtocol) -> None:
        self._protocol = protocol
        self._flusher = _flusher(protocol.loop)
        self._pending: list[bytes] = []
        self.closed = False
        # The transport asked us to stop writing (its buffer passed the high mark); kept
        # as a plain attribute because the broadcast reads it for every client.
        self.paused = False
        # Called when the transport's buffer drained below its low-water mark.
        self.on_drain: Callable[[], None] | None = None

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        if not self._pending:
            self._flusher.mark(self)
        self._pending.append(frame)

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self.closed:
            return
        transport = self._protocol.transport
        if transport.is_closing():
            return
        transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def backlog(self) -> tuple[int, int]:
        """(frames not yet handed to the transport, bytes in the transport's buffer)."""
        transport = self._protocol.transport
        buffered = 0 if transport.is_closing() else transport.get_write_buffer_size()
        return len(self._pending), buffered

    def close(self, code: int, reason: str, grace: float = 5.0) -> None:
        """Send a close frame behind what is buffered, then drop the connection after
        `grace` seconds: a client that is stuck cannot hold our memory any longer."""
        if self.closed:
            return
        self.write(close_frame(code, reason))
        self.flush()
        self.closed = True
        self._protocol.close_sent = True  # uvicorn must not send anything after it
        self._protocol.loop.call_later(grace, self._protocol.transport.abort)


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
            # A refused handshake (guard.py: 401/403/429 with a JSON body) is complete
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
        super().pause_writing()
        if self.sink is not None:
            self.sink.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        sink = self.sink
        if sink is not None:
            sink.paused = False
            if sink.on_drain is not None:
                sink.on_drain()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sink is not None:
            self.sink.closed = True
            self.sink.on_drain = None
        super().connection_lost(exc)


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """The HTTP edges (config.py `http_header_timeout` ... `max_open_connections`)."""

    header_timeout: float = 10.0
    max_url: int = 8192
    max_header_bytes: int = 16384
    max_headers: int = 100
    max_connections: int = 0  # 0: no cap

    @property
    def head_cap(self) -> int:
        """Raw bytes of a request head still unfinished past which it cannot be within
        the limits. httptools keeps a header line it has not seen the end of to itself
        (`on_header` comes with the whole line), so this is what bounds that."""
        return self.max_url + self.max_header_bytes + 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            header_timeout=settings.http_header_timeout,
            max_url=settings.max_url_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_header_count,
            max_connections=connection_cap(settings.max_open_connections),
        )


def connection_cap(wanted: int) -> int:
    """`max_open_connections` (0: none), lowered to 90 % of this process's open-files
    limit: past that limit the kernel's accept fails and the client only sees a reset,
    and the connections refused with 503 need descriptors too."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    room = max(1, soft - max(128, soft // 10))
    return room if wanted == 0 or wanted > room else wanted


_edges: EdgeLimits | None = None


def configure_edges(limits: EdgeLimits) -> None:
    """Set by `stockfeed serve` before uvicorn starts; a worker process reads its
    settings from the environment the parent filled in (cli.py) instead."""
    global _edges
    _edges = limits


def edges() -> EdgeLimits:
    global _edges
    if _edges is None:
        from stockfeed.config import Settings

        _edges = EdgeLimits.from_settings(Settings())
    return _edges


class _Pipeline(list[Any]):
    """What uvicorn uses of the deque of pipelined requests (appendleft, pop, truth), as
    an empty list (56 bytes) instead of an empty deque (~0.6 KiB) on every connection."""

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


class _Refused(Exception):
    """Raised from a parser callback to stop httptools; the answer is in `_refusal`."""


# A connection accepted past the cap gets this long to send its request (answered 503).
OVER_CAP_FUSE = 1.0
# After a refusal the server stops writing but reads (and drops) what the client still
# sends for this long: closing with unread bytes makes the kernel send a reset, which can
# destroy the answer in the client's buffer before it reads it.
REFUSAL_LINGER = 2.0
_cap_warned = 0.0


class _HeadClock:
    """The head deadlines of one event loop's connections, checked `TICK` times a second
    by one timer while any is pending, instead of a timer per connection (uvloop's timer,
    its handle and context cost ~0.6 KiB per idle socket, measured)."""

    __slots__ = ("handle", "loop", "pending")

    TICK = 0.25  # a deadline is acted on at most this late

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: dict[FastHttpProtocol, float] = {}  # -> loop.time() deadline
        self.handle: asyncio.TimerHandle | None = None

    def arm(self, protocol: FastHttpProtocol, seconds: float) -> None:
        """Start `protocol`'s deadline unless one is already running."""
        if protocol not in self.pending:
            self.pending[protocol] = self.loop.time() + seconds
            if self.handle is None:
                self.handle = self.loop.call_later(self.TICK, self.sweep)

    def sweep(self) -> None:
        self.handle = None
        now = self.loop.time()
        expired = [protocol for protocol, at in self.pending.items() if at <= now]
        for protocol in expired:
            del self.pending[protocol]
            try:
                protocol.head_timeout()
            except Exception:  # one connection must not stop the clock for the rest
                log.exception("closing %s after its header timeout failed", protocol.client)
        if self.pending:
            self.handle = self.loop.call_later(self.TICK, self.sweep)


_clocks: dict[asyncio.AbstractEventLoop, _HeadClock] = {}


def _head_clock(loop: asyncio.AbstractEventLoop) -> _HeadClock:
    clock = _clocks.get(loop)
    if clock is None:
        _clocks.clear()  # a new loop (tests): the old one is gone
        clock = _clocks[loop] = _HeadClock(loop)
    return clock


def _too_many_header_bytes(limits: EdgeLimits) -> tuple[int, str, str]:
    return (
        431,
        "headers_too_large",
        f"the header fields are longer than {limits.max_header_bytes} bytes",
    )


def _warn_cap(open_now: int, cap: int) -> None:
    """One warning a minute at most: a flood would otherwise be a line per socket."""
    global _cap_warned
    now = time.monotonic()
    if now - _cap_warned >= 60.0:
        _cap_warned = now
        log.warning(
            "%d connections open, cap %d (STOCKFEED_MAX_OPEN_CONNECTIONS): new ones get 503",
            open_now,
            cap,
        )


class FastHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP protocol, minus the garbage it leaves per WebSocket.

    On an upgrade uvicorn hands the transport to the WebSocket protocol and drops this
    object, but the object and its request parser point at each other (the parser calls
    back into its protocol's bound methods), so it lives on as cyclic garbage, ~4 KiB with
    the request's scope and headers, until a collector pass finds it. In a connect storm
    that is thousands of them: more collector work while handshakes wait, and (freed late,
    in between live connections' objects) memory that does not come back. Cutting the
    parser loose when the upgrade is done lets reference counting free it at once.

    It also keeps the HTTP edges (`EdgeLimits`, docs/protocol.md#http-limits): the request
    head must be complete within `header_timeout` of the connect (or of the first byte of
    a later request on a kept-alive connection: between requests uvicorn's keep-alive
    timeout applies), else 408 (or a plain close when nothing was sent at all); a URL
    over `max_url` gets 414 and headers over `max_header_bytes` / `max_headers` get 431,
    checked as httptools hands the parts over, so no more than the limit plus one socket
    read is ever held; a connection accepted with `max_connections` already open gets 503
    to its request. Each answer has a JSON body and `Connection: close`.
    """

    # Slots, so that uvicorn's 28 attributes keep the shared key table (see
    # FastWebSocketProtocol.__slots__): an idle socket costs no dict of its own.
    __slots__ = (
        "_clock",
        "_head_bytes",
        "_header_bytes",
        "_in_head",
        "_linger",
        "_over_cap",
        "_refusal",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = _head_clock(self.loop)  # keeps the request head's deadline
        self._linger: asyncio.TimerHandle | None = None  # after a refusal
        self._in_head = False  # a request has begun and its head is not complete
        self._head_bytes = 0  # raw bytes of that head so far (see data_received)
        self._header_bytes = 0  # its header fields so far, as `name: value\r\n`
        self._over_cap = False
        self._refusal: tuple[int, str, str] | None = None  # once set, it is answered
        self.pipeline = _Pipeline()  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # An asyncio.Event holds a deque (~0.6 KiB) for the waiters it almost never has.
        self.flow._is_writable_event = _Flag(True)  # type: ignore[assignment]
        limits = edges()
        timeout = limits.header_timeout
        if limits.max_connections and len(self.connections) > limits.max_connections:
            self._over_cap = True
            timeout = min(timeout, OVER_CAP_FUSE)
            _warn_cap(len(self.connections), limits.max_connections)
        self._clock.arm(self, timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._clock.pending.pop(self, None)
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, plus the refusals and the bound on an unfinished head."""
        if self._refusal is not None:
            return  # answered: drop what the client still sends (see REFUSAL_LINGER)
        self._unset_keepalive_if_required()
        was_in_head = self._in_head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._send_refusal()
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        if self._in_head:
            # Bytes of a head that began in this very read are not all the head's (a
            # pipelined request may come first): count what the parser handed over.
            if was_in_head:
                self._head_bytes += len(data)
            else:
                self._head_bytes = len(self.url) + self._header_bytes
            limits = edges()
            if self._head_bytes > limits.head_cap:
                self._refusal = _too_many_header_bytes(limits)
                self._send_refusal()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._header_bytes = 0
        # Running since the connect, or else a later request on a kept-alive connection.
        self._clock.arm(self, edges().header_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url
        limits = edges()
        if len(self.url) > limits.max_url:
            self._refuse(414, "uri_too_long", f"the URL is longer than {limits.max_url} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        limits = edges()
        if len(self.headers) >= limits.max_headers:
            self._refuse(431, "headers_too_large", f"more than {limits.max_headers} header fields")
        if self._header_bytes > limits.max_header_bytes:
            self._refuse(*_too_many_header_bytes(limits))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._clock.pending.pop(self, None)
        if self._over_cap:
            self._refuse(
                503, "server_busy", "the server has too many open connections: retry later"
            )
        super().on_headers_complete()

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._refusal = (status, code, message)
        raise _Refused

    def head_timeout(self) -> None:
        """The request head's deadline passed (`_HeadClock`)."""
        if self.transport.is_closing():
            return
        if not self._in_head:  # not a byte of a request: nothing to answer
            log.debug("client %s sent no request within the header timeout: closed", self.client)
            self.transport.close()
            return
        seconds = OVER_CAP_FUSE if self._over_cap else edges().header_timeout
        self._refusal = (
            408,
            "request_timeout",
            f"the request head did not arrive within {seconds:g} s",
        )
        self._send_refusal()

    def _send_refusal(self) -> None:
        """The refusal as a response with a JSON body, then close, lingering a moment."""
        assert self._refusal is not None
        status, code, message = self._refusal
        log.debug("HTTP %d %s to %s: %s", status, code, self.client, message)
        self._in_head = False
        self._clock.pending.pop(self, None)
        error = {"error": {"code": code, "message": message}}
        body = json.dumps(error, separators=(",", ":")).encode()
        out = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            out += [name, b": ", value, b"\r\n"]
        if status == 503:
            out.append(b"retry-after: 5\r\n")
        out += [
            b"content-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
        transport = self.transport
        transport.write(b"".join(out))
        if transport.can_write_eof():
            transport.write_eof()  # FIN once it is out; reading goes on (and drops)
            self._linger = self.loop.call_later(REFUSAL_LINGER, transport.abort)
        else:
            transport.close()

    def handle_websocket_upgrade(self) -> None:
        limits = handshake.LIMITS
        if (
            len(self.url) + 20 > limits.max_line
            or self._header_bytes > limits.max_line
            or len(self.headers) > limits.max_headers
        ):
            # websockets would refuse it and uvicorn would never send that refusal.
            refusal = handshake.over_limits(self.scope["method"], self.url, self.headers)
            if refusal is not None:
                self._refusal = refusal
                self._send_refusal()
                return
        ws_class: Any = self.ws_protocol_class
        accept = None
        if (
            isinstance(ws_class, type)
            and issubclass(ws_class, FastWebSocketProtocol)
            and not self.config.ws_per_message_deflate
            # At debug level websockets logs each handshake's lines (redacted by
            # logs.SecretFilter): keep that for whoever is debugging.
            and not self.logger.isEnabledFor(logging.DEBUG)
        ):
            accept = handshake.accept_value(
                self.scope["method"], self.scope["http_version"], self.url, self.headers
            )
        if accept is None:
            super().handle_websocket_upgrade()
        else:
            self.connections.discard(self)
            protocol: FastWebSocketProtocol = ws_class(
                config=self.config, server_state=self.server_state, app_state=self.app_state
            )
            protocol.adopt(self)
            protocol.open_upgraded(self.url, self.headers, accept)
            self.transport.set_protocol(protocol)
        self.parser = None  # type: ignore[assignment]
        self.scope = None  # type: ignore[assignment]
        self.headers = None  # type: ignore[assignment]
