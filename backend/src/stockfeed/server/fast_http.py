"""The HTTP side of the fast path: uvicorn's httptools protocol, with the HTTP edges.

`FastHttpProtocol` answers a plain WebSocket upgrade from httptools' parse (handshake.py),
hands the transport to `FastWebSocketProtocol` (fast_websocket.py) and then frees itself
at once. It also holds the HTTP edges (`EdgeLimits`): a deadline for the request head,
byte and count limits on the URL and headers checked while httptools parses, and a
process-wide cap on open connections, each answered with a status and a JSON body. They
live on the connection-setup and request-parse path only; nothing of them runs per
broadcast message.

This leans on uvicorn internals (pinned in pyproject.toml);
tests/server/test_fast_http.py fails loudly when an upgrade breaks it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from stockfeed.server import handshake
from stockfeed.server.fast_websocket import FastWebSocketProtocol, _Flag

if TYPE_CHECKING:
    from stockfeed.config import Settings

log = logging.getLogger(__name__)


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
