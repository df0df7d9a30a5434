"""The HTTP side of the fast path: uvicorn's httptools protocol, with the HTTP edges.

`FastHttpProtocol` answers a plain WebSocket upgrade from httptools' parse (handshake.py),
hands the transport to `FastWebSocketProtocol` (fast_websocket.py) and then frees itself
at once. It also holds the HTTP edges (`EdgeLimits`, edge_limits.py), built on one rule:
every connection must make progress, and what it can make the server hold is bounded.

- Every phase of a connection has a deadline, kept by one clock per event loop
  (deadlines.py), not a timer per connection: the head, the body, a response the client
  does not read, the idle time between requests (uvicorn's keep-alive timeout, moved onto
  the same clock), a close whose answer is not read, and the WebSocket upgrade
  (upgrade_deadline.py).
- One request at a time: the parser is fed up to the end of a request and no further
  until its response is complete; the bytes after it wait unparsed (one socket read at
  most, with reading paused). uvicorn would parse every pipelined request it is sent and
  queue one request object (scope, headers, task) per request.
- Byte and count limits on the URL and headers, checked while httptools parses.
- A process-wide cap on open connections and a per-client cap on open HTTP connections
  (http_peers.py), each answered with a status and a JSON body (http_refusal.py).

They live on the connection-setup and request-parse path only; nothing of them runs per
broadcast message.

This leans on uvicorn internals (pinned in pyproject.toml);
tests/server/test_fast_http.py fails loudly when an upgrade breaks it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import struct
import termios
import time
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from stockfeed.protocol.codes import ErrorCode
from stockfeed.server import handshake, upgrade_deadline
from stockfeed.server.deadlines import DeadlineClock, PerLoop
from stockfeed.server.edge_limits import EdgeLimits, edges, peers
from stockfeed.server.fast_websocket import FastWebSocketProtocol, _Flag
from stockfeed.server.http_refusal import Refusal, answer_and_linger, drop, error_response

log = logging.getLogger(__name__)


class _Pipeline(list[Any]):
    """What uvicorn uses of the deque of pipelined requests (appendleft, pop, truth), as
    an empty list (56 bytes) instead of an empty deque (~0.6 KiB) on every connection."""

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


class _Refused(Exception):
    """Raised from a parser callback to stop httptools; the answer is in `_refusal`."""


# A connection accepted past a cap gets this long to send its request (then refused).
OVER_CAP_FUSE = 1.0
# Bytes received while a request waits for its answer are kept unparsed; reading is
# paused, so that is one socket read (uvloop reads up to 250 KB). Reads that still come
# (uvicorn resumes reading for a request body) are added until this, then the
# connection is dropped.
HELD_CAP = 1024 * 1024

# The phases of a connection (`_phase`); each but RESPONSE has a deadline on the clock.
FIRST = 0  # connected, no request yet: the head deadline runs from the connect
IDLE = 1  # between requests on a kept-alive connection: the keep-alive timeout
HEAD = 2  # a request head is arriving: `header_timeout`
BODY = 3  # its body is arriving: `body_timeout` from the end of the head
RESPONSE = 4  # the request is in, the app answers (its work has no deadline here) and
# the answer goes out: `write_timeout` while the client takes none of it (the
# transport's buffer above its high-water mark)
CLOSING = 5  # closed with an answer still unsent: `write_timeout` for it to drain
DRAIN = 6  # answered, the next request already received: it waits (unparsed) until the
# client has taken all but PIPELINE_UNREAD of the answers, checked every tick; dropped
# after `write_timeout` in which the client took nothing

# What a pipelining client may leave unread (in our buffer and the kernel's) and still
# have its next request read. Without it, a client that never reads gets answered until
# the kernel's buffers are full (megabytes: tens of thousands of small answers, each
# one a request the server works on) before it is seen not to read.
PIPELINE_UNREAD = 256 * 1024

_warned: dict[str, float] = {}


def _warn(what: str, text: str, *args: object) -> None:
    """One warning a minute at most per kind: a flood would otherwise be a line per socket."""
    now = time.monotonic()
    if now - _warned.get(what, -60.0) >= 60.0:
        _warned[what] = now
        log.warning(text, *args)


def _too_many_header_bytes(limits: EdgeLimits) -> Refusal:
    return (
        431,
        ErrorCode.HEADERS_TOO_LARGE.value,
        f"the header fields are longer than {limits.max_header_bytes} bytes",
    )


def _expired(protocol: FastHttpProtocol) -> None:
    protocol.deadline_passed()


_clocks: PerLoop[DeadlineClock[FastHttpProtocol]] = PerLoop(
    lambda loop: DeadlineClock(loop, _expired, name="HTTP")
)


def _unread_bytes(transport: asyncio.WriteTransport) -> int:
    """Bytes written for the client that it has not taken yet: the transport's buffer
    plus what the kernel holds unacknowledged (TIOCOUTQ). The kernel's share matters:
    a client that reads slowly frees room in the kernel's buffer long before the
    transport gets to write into it (a third of a buffer of megabytes), so the
    transport's buffer alone would look stuck for seconds while the client reads."""
    buffered = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is None:
        return buffered
    try:
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):  # gone, or not a socket that can say
        return buffered
    return buffered + int(struct.unpack("i", queued)[0])


def _body_length(headers: list[tuple[bytes, bytes]]) -> int:
    """What the parser is fed per step in the body: the Content-Length, 0 for no body,
    or -1 (line by line) for a chunked body or a length we do not read as httptools does
    (httptools then decides; line by line, a message never ends inside a step)."""
    length = 0
    for name, value in headers:
        if name == b"transfer-encoding":
            return -1
        if name == b"content-length":
            length = int(value) if value.isdigit() else -1
    return length


class FastHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP protocol, minus the garbage it leaves per WebSocket, with
    the HTTP edges (docs/protocol.md#http-limits).

    On an upgrade uvicorn hands the transport to the WebSocket protocol and drops this
    object, but the object and its request parser point at each other (the parser calls
    back into its protocol's bound methods), so it lives on as cyclic garbage, ~4 KiB with
    the request's scope and headers, until a collector pass finds it. In a connect storm
    that is thousands of them: more collector work while handshakes wait, and (freed late,
    in between live connections' objects) memory that does not come back. Cutting the
    parser loose when the upgrade is done lets reference counting free it at once.

    The edges: the request head must be complete within `header_timeout` of the connect
    (or of the first byte of a later request on a kept-alive connection), else 408 (or a
    plain close when nothing was sent at all); its body within `body_timeout` of the end
    of the head, else 408 (a close when the answer has begun); a response the client does
    not read (the write buffer above its high-water mark and not shrinking for
    `write_timeout`) drops the connection, as does a close whose answer is not read; a
    kept-alive connection idle for uvicorn's keep-alive timeout is closed. A URL over
    `max_url` gets 414 and headers over `max_header_bytes` / `max_headers` get 431,
    checked as httptools hands the parts over; a connection accepted with
    `max_connections` already open gets 503, and one whose client already holds
    `max_per_ip` HTTP connections gets 429, to its request. Each answer has a JSON body
    and `Connection: close`.

    Bytes held per connection: the request head (`head_cap`), the unparsed bytes after a
    request that waits for its answer (one socket read), uvicorn's request body buffer
    (64 KiB and one read, then it stops reading until the app takes it) and one response.
    """

    # Slots, so that uvicorn's 28 attributes keep the shared key table (see
    # FastWebSocketProtocol.__slots__): an idle socket costs no dict of its own.
    __slots__ = (
        "_body_left",
        "_clock",
        "_head_bytes",
        "_header_bytes",
        "_held",
        "_in_head",
        "_linger",
        "_message_done",
        "_over_cap",
        "_peer_key",
        "_phase",
        "_refusal",
        "_stalled_at",
        "_unread",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = _clocks(self.loop)  # keeps every phase's deadline
        self._phase = FIRST
        self._linger: asyncio.TimerHandle | None = None  # after a refusal
        self._in_head = False  # a request has begun and its head is not complete
        self._head_bytes = 0  # raw bytes of that head so far (see `_parse`)
        self._header_bytes = 0  # its header fields so far, as `name: value\r\n`
        # Body bytes still to feed the parser (Content-Length), -1: line by line, 0: none.
        self._body_left = 0
        self._message_done = False  # the parser is at the end of a request
        # Bytes received after a request that waits for its answer, not parsed yet, and
        # where in them to start: (data, offset), or None.
        self._held: tuple[bytes, int] | None = None
        # Bytes the client had not taken (`_unread_bytes`) when it was last seen not
        # reading (RESPONSE and CLOSING: the deadline passes only if none were taken since).
        self._unread = 0
        self._stalled_at = 0.0  # DRAIN: loop.time() the client last took some
        self._over_cap: Refusal | None = None  # the answer for a connection past a cap
        self._peer_key: str | None = None  # counted in http_peers under this key
        self._refusal: Refusal | None = None  # once set, it is answered
        self.pipeline = _Pipeline()  # type: ignore[assignment]

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # An asyncio.Event holds a deque (~0.6 KiB) for the waiters it almost never has.
        self.flow._is_writable_event = _Flag(True)  # type: ignore[assignment]
        limits = edges()
        timeout = limits.header_timeout
        if limits.max_connections and len(self.connections) > limits.max_connections:
            self._over_cap = (
                503,
                ErrorCode.SERVER_BUSY.value,
                "the server has too many open connections: retry later",
            )
            _warn(
                "cap",
                "%d connections open, cap %d (STOCKFEED_MAX_OPEN_CONNECTIONS): new ones get 503",
                len(self.connections),
                limits.max_connections,
            )
        elif self.client is not None:
            key, over = peers().acquire(self.client[0])
            self._peer_key = key
            if over:
                self._over_cap = (
                    429,
                    ErrorCode.TOO_MANY_CONNECTIONS.value,
                    f"at most {limits.max_per_ip} open HTTP connections per address: retry later",
                )
                _warn(
                    "per-ip",
                    "%s holds %d open HTTP connections (STOCKFEED_MAX_HTTP_CONNECTIONS_PER_IP):"
                    " new ones get 429",
                    self.client[0],
                    limits.max_per_ip,
                )
        if self._over_cap is not None:
            timeout = min(timeout, OVER_CAP_FUSE)
        self._clock.arm(self, timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._clock.disarm(self)
        self._release_peer()
        self._held = None
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)

    def _release_peer(self) -> None:
        if self._peer_key is not None:
            peers().release(self._peer_key)
            self._peer_key = None

    # -- reading: one request at a time ------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """uvicorn's, fed one request at a time, plus the refusals and the bound on an
        unfinished head."""
        if self._refusal is not None:
            return  # answered: drop what the client still sends (see REFUSAL_LINGER)
        held = self._held
        if held is not None:
            # Reading was paused for a request that waits for its answer, and uvicorn
            # resumed it (its request body flow control): keep these too, pause again.
            kept, at = held
            merged = kept[at:] + data
            size = len(merged)
            if size > HELD_CAP:
                log.info("client %s sent %d bytes ahead of an answer: dropped", self.client, size)
                self.transport.abort()
                return
            self._held = (merged, 0)
            self.transport.pause_reading()
            return
        self._feed(data, 0)

    def _waiting(self) -> bool:
        """The parser is at the end of a request whose answer is not complete."""
        cycle = self.cycle
        return self._message_done and cycle is not None and not cycle.response_complete

    def _feed(self, data: bytes, at: int) -> None:
        """Feed `data[at:]` to the parser in steps that end where a request can end, and
        stop (holding the rest, reading paused) at the end of one that waits for its
        answer. A head ends at its blank line, a body after Content-Length bytes or at
        the end of a line (chunked), so a step never runs into the next request."""
        size = len(data)
        view: memoryview | None = None
        # A head that began in an earlier read may end in the first bytes of this one
        # (its blank line split across reads): step over those alone, byte by byte.
        split_until = 3 if self._in_head else 0
        while at < size:
            if self._waiting():
                self._held = (data, at)
                self.transport.pause_reading()
                return
            left = self._body_left
            if left > 0:
                step = min(left, size - at)
                self._body_left = left - step
            elif left < 0:
                end = data.find(b"\n", at)
                step = size - at if end < 0 else end + 1 - at
            elif at < split_until and self._in_head:
                step = 1
            else:
                end = data.find(b"\r\n\r\n", at)
                step = size - at if end < 0 else end + 4 - at
            if step == size:
                piece: bytes | memoryview = data
            else:
                if view is None:
                    view = memoryview(data)
                piece = view[at : at + step]
            at += step
            if not self._parse(piece):
                return

    def _parse(self, piece: bytes | memoryview) -> bool:
        """Feed one step; False when the connection is no longer ours to read (an
        upgrade, an error, a refusal)."""
        was_in_head = self._in_head
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                return False
            self._unsupported_upgrade_warning()
            return True
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._send_refusal()
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return False
        if self._in_head:
            # Bytes of a head that began in this very step are not all the head's (the
            # end of the previous request may come first): count what the parser handed.
            if was_in_head:
                self._head_bytes += len(piece)
            else:
                self._head_bytes = len(self.url) + self._header_bytes
            limits = edges()
            if self._head_bytes > limits.head_cap:
                self._refusal = _too_many_header_bytes(limits)
                self._send_refusal()
                return False
        return True

    def _resume_held(self) -> None:
        """The answer is out: go on with what the client sent after that request."""
        held = self._held
        if held is None or self.transport.is_closing() or self._waiting():
            return
        self._held = None
        self._feed(*held)
        if self._held is None and not self.transport.is_closing() and not self.flow.read_paused:
            self.transport.resume_reading()

    # -- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._message_done = False
        self._head_bytes = 0
        self._header_bytes = 0
        if self._phase == FIRST:
            self._clock.arm_once(self, edges().header_timeout)  # running since the connect
        else:
            self._clock.arm(self, edges().header_timeout)
        self._phase = HEAD

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
        self._clock.disarm(self)
        if self._over_cap is not None:
            self._refuse(*self._over_cap)
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            return  # handle_websocket_upgrade takes it from here
        self._body_left = _body_length(self.headers)
        if self._body_left:
            self._phase = BODY
            self._clock.arm(self, edges().body_timeout)
        else:
            self._phase = RESPONSE  # on_message_complete follows at once

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade() and self._should_upgrade():
            return
        super().on_message_complete()
        self._message_done = True
        self._body_left = 0
        if self.cycle.response_complete:  # answered before the body was all in
            self._answered()
        else:
            self._phase = RESPONSE
            if self.flow.write_paused:
                self._watch_unread()
            else:
                self._clock.disarm(self)

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive timeout on the clock and the bytes held after
        the request fed once it is answered."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            self._closing()
            return
        # uvicorn pauses reading for a request body the app has not taken.
        self.flow.resume_reading()
        if self.pipeline:  # requests uvicorn queued (none when fed one at a time)
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        if self._phase == BODY:
            return  # answered early; the body still has its deadline
        self._answered()

    def _answered(self) -> None:
        """The request is in and its answer complete. Once the answer is out of our
        buffer (below its high-water mark), idle until the next request and read it:
        the next request is not read while this answer waits for the client."""
        if self.flow.write_paused:
            self._phase = RESPONSE  # resume_writing comes back here
            if self._clock.remaining(self) is None:
                self._watch_unread()
            return
        if self._held is not None:  # pipelined: has the client taken the answers?
            unread = _unread_bytes(self.transport)
            if unread > PIPELINE_UNREAD:
                if self._phase != DRAIN:
                    self._phase = DRAIN
                    self._unread = unread
                    self._stalled_at = self.loop.time()
                self._clock.arm(self, self._clock.tick)  # deadline_passed comes back here
                return
        self._phase = IDLE
        self._clock.arm(self, self.timeout_keep_alive)
        if self._held is not None:
            # Not from inside the app's `send`: the next request starts on its own turn.
            self.loop.call_soon(self._resume_held)

    # -- writing: a client that does not read ------------------------------------------

    def pause_writing(self) -> None:
        self.flow.pause_writing()
        if self._phase == RESPONSE:
            self._watch_unread()

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        if self._phase == RESPONSE:
            self._clock.disarm(self)
            cycle = self.cycle
            if self._message_done and cycle is not None and cycle.response_complete:
                self._answered()

    def _watch_unread(self) -> None:
        self._unread = _unread_bytes(self.transport)
        self._clock.arm(self, edges().write_timeout)

    def _closing(self) -> None:
        """The transport is closing: if an answer is still unsent, give it
        `write_timeout` to drain (a closing transport otherwise waits forever)."""
        if self.transport.get_write_buffer_size():
            self._phase = CLOSING
            self._watch_unread()
        else:
            self._clock.disarm(self)

    def _close(self) -> None:
        self.transport.close()
        self._closing()

    # -- deadlines -----------------------------------------------------------------------

    def deadline_passed(self) -> None:
        """The current phase's deadline passed (the clock, deadlines.py)."""
        phase = self._phase
        transport = self.transport
        if phase == DRAIN:
            self._drain_check()
            return
        if phase in (RESPONSE, CLOSING):
            if not transport.get_write_buffer_size() or (
                phase == RESPONSE and not self.flow.write_paused
            ):
                return  # drained meanwhile (what the kernel holds is the kernel's)
            unread = _unread_bytes(transport)
            if unread < self._unread:  # the client reads, slowly: give it another period
                self._unread = unread
                self._clock.arm(self, edges().write_timeout)
                return
            self._drop_unread(unread)
            return
        if transport.is_closing() or self._refusal is not None:
            return
        if phase in (FIRST, IDLE):  # not a byte of a request: nothing to answer
            log.debug("client %s sent no request in time: closed", self.client)
            self._close()
        elif phase == HEAD:
            # Past a cap the head had OVER_CAP_FUSE only: the cap is the reason to give.
            self._refusal = self._over_cap or (
                408,
                ErrorCode.REQUEST_TIMEOUT.value,
                f"the request head did not arrive within {edges().header_timeout:g} s",
            )
            self._send_refusal()
        elif phase == BODY:
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                # The app gets `http.disconnect`; whatever it sends now goes nowhere.
                cycle.disconnected = True
                cycle.message_event.set()
            self._refusal = (
                408,
                ErrorCode.REQUEST_TIMEOUT.value,
                f"the request body did not arrive within {edges().body_timeout:g} s",
            )
            if cycle is None or not cycle.response_started:
                self._send_refusal()
            else:  # an answer has begun (or is done): a second one cannot follow
                log.debug("client %s sent its request body too slowly: closed", self.client)
                self._linger_close(b"")

    def _drain_check(self) -> None:
        """DRAIN, a tick later: read on if the client took the answers, drop it if it
        took nothing for `write_timeout`, else look again next tick."""
        if self.transport.is_closing():
            return
        unread = _unread_bytes(self.transport)
        if unread <= PIPELINE_UNREAD:
            self._answered()
            return
        now = self.loop.time()
        if unread < self._unread:
            self._unread = unread
            self._stalled_at = now
        elif now - self._stalled_at >= edges().write_timeout:
            self._drop_unread(unread)
            return
        self._clock.arm(self, self._clock.tick)

    def _drop_unread(self, unread: int) -> None:
        log.info(
            "client %s did not read %d bytes of its answers in %g s: dropped",
            self.client,
            unread,
            edges().write_timeout,
        )
        drop(self.transport)

    # -- refusals ------------------------------------------------------------------------

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._refusal = (status, code, message)
        raise _Refused

    def _send_refusal(self) -> None:
        """The refusal as a response with a JSON body, then close, lingering a moment."""
        assert self._refusal is not None
        status, code, message = self._refusal
        log.debug("HTTP %d %s to %s: %s", status, code, self.client, message)
        self._linger_close(error_response(self._refusal, self.server_state.default_headers))

    def _linger_close(self, answer: bytes) -> None:
        """Write `answer` (if any), then close without destroying it: FIN after it,
        what the client still sends read and dropped (`_refusal` is set) until
        REFUSAL_LINGER, then abort."""
        self._in_head = False
        self._held = None
        self._phase = CLOSING
        self._clock.disarm(self)
        self._linger = answer_and_linger(self.loop, self.transport, answer)
        if self._linger is None:
            self._closing()

    # -- the WebSocket upgrade -----------------------------------------------------------

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
        # From here the connection is a WebSocket: the gate counts it (per IP), and the
        # upgrade deadline watches the app's answer.
        self._clock.disarm(self)
        self._release_peer()
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
            upgraded = self.transport.get_protocol()
        else:
            self.connections.discard(self)
            protocol: FastWebSocketProtocol = ws_class(
                config=self.config, server_state=self.server_state, app_state=self.app_state
            )
            protocol.adopt(self)
            protocol.open_upgraded(self.url, self.headers, accept)
            self.transport.set_protocol(protocol)
            upgraded = protocol
        if upgraded is not self:
            upgrade_deadline.watch(upgraded, edges().upgrade_timeout)
        self.parser = None  # type: ignore[assignment]
        self.scope = None  # type: ignore[assignment]
        self.headers = None  # type: ignore[assignment]
