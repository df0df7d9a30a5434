"""The HTTP edges on a real server over raw sockets: slow heads, oversized requests, the
open-connection cap, and what idle sockets cost (docs/protocol.md#http-limits).

Every refusal is read as a client reads it: the status line, the JSON body, then the
server's close; and each test ends with a normal request that still works.
"""

from __future__ import annotations

import contextlib
import inspect
import resource
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.http11 import Request
from websockets.streams import StreamReader
from websockets.sync.client import connect

from stockfeed.server import handshake
from tests.httputil import exchange, get, read_all, refusal, rss_kib
from tests.servers import Server

pytestmark = pytest.mark.process

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
)
EDGES = {
    "STOCKFEED_HTTP_HEADER_TIMEOUT": "1",
    "STOCKFEED_MAX_URL_BYTES": "2048",
    "STOCKFEED_MAX_HEADER_BYTES": "4096",
    "STOCKFEED_MAX_HEADER_COUNT": "20",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("edges"), "--source", "none", env=EDGES)
    try:
        yield running.wait_ready()
    finally:
        running.stop()


def head_of_reply(server: Server, request: bytes) -> bytes:
    """The status line and headers the server answers with (the connection may stay)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply and (chunk := sock.recv(65536)):
            reply += chunk
        return reply


def still_serves(server: Server) -> None:
    assert httpx.get(server.base + "/api/ws/health", timeout=5).status_code == 200


def test_uvicorn_still_has_what_the_edges_lean_on() -> None:
    """FastHttpProtocol replaces uvicorn's `data_received`, parser callbacks, response
    completion and write flow control, reads its request cycles' state and lightens
    `pipeline` and the flow control's event: fail loudly when uvicorn moves."""
    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

    for name in (
        "data_received",
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_message_complete",
        "on_response_complete",
        "connection_made",
        "connection_lost",
        "pause_writing",
        "resume_writing",
        "_start_asgi_task",
        "_unset_keepalive_if_required",
        "_should_upgrade",
        "_unsupported_upgrade_warning",
        "send_400_response",
    ):
        assert callable(getattr(HttpToolsProtocol, name, None)), name
    flow = vars(FlowControl(transport=None))  # type: ignore[arg-type]
    assert {"_is_writable_event", "read_paused", "write_paused"} <= set(flow)
    source = inspect.getsource(HttpToolsProtocol)
    assert "self.pipeline.appendleft(" in source and "self.pipeline.pop()" in source
    assert "self.timeout_keep_alive = config.timeout_keep_alive" in source
    cycle = inspect.getsource(RequestResponseCycle)
    for attribute in ("response_started", "response_complete", "disconnected", "message_event"):
        assert f"self.{attribute} = " in cycle, attribute
    # The cycle reports a complete response through `on_response` (our
    # on_response_complete) and closes first when the connection is not kept alive.
    assert cycle.index("self.transport.close()\n                self.on_response()") > 0


# -- slow heads ------------------------------------------------------------------------


def test_a_socket_that_sends_nothing_is_closed(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        started = time.monotonic()
        reply, closed = read_all(sock, 10)
    print(f"silent socket closed after {time.monotonic() - started:.2f} s (timeout 1 s)")
    assert closed and reply == b"", "closed without an answer: there was no request"
    still_serves(server)


@pytest.mark.parametrize("upgrade", [False, True], ids=["http", "websocket"])
def test_a_head_sent_byte_by_byte_gets_408(server: Server, upgrade: bool) -> None:
    head = get(b"/ws" if upgrade else b"/api/ws/health", UPGRADE if upgrade else b"")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        started = time.monotonic()
        sock.settimeout(0.2)
        reply = b""
        for i in range(len(head) - 2):  # never the final CRLF
            with contextlib.suppress(TimeoutError):
                reply = sock.recv(4096)
            if reply or time.monotonic() - started > 10:
                break
            sock.sendall(head[i : i + 1])
        rest, closed = read_all(sock, 5)
    print(f"trickled head answered after {time.monotonic() - started:.2f} s (timeout 1 s)")
    status, _, body = refusal(reply + rest)
    assert (status, body["error"]["code"]) == (408, "request_timeout")
    assert closed
    still_serves(server)


def test_the_deadline_starts_again_for_the_next_request_on_a_kept_alive_connection(
    server: Server,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(5)
        sock.sendall(get(b"/api/ws/health"))
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 "), first
        time.sleep(1.5)  # longer than the header timeout, shorter than keep-alive (5 s)
        sock.sendall(b"GET /api/ws/health HTTP/1.1\r\nHost: localhost\r\n")  # and no more
        reply, closed = read_all(sock, 5)
    status, _, body = refusal(reply)
    assert (status, body["error"]["code"]) == (408, "request_timeout") and closed
    still_serves(server)


# -- oversized requests ----------------------------------------------------------------


@pytest.mark.parametrize("upgrade", [False, True], ids=["http", "websocket"])
def test_a_url_over_the_limit_gets_414(server: Server, upgrade: bool) -> None:
    path = b"/ws?x=" if upgrade else b"/api/ws/health?x="
    extra = UPGRADE if upgrade else b""
    at_limit = path + b"a" * (2048 - len(path))
    ok = head_of_reply(server, get(at_limit, extra))
    assert ok.startswith(b"HTTP/1.1 101 " if upgrade else b"HTTP/1.1 200 "), ok[:80]
    for size in (2049, 1_000_000):
        reply, closed = exchange(server.port, get(path + b"a" * (size - len(path)), extra))
        status, _, body = refusal(reply)
        assert (status, body["error"]["code"]) == (414, "uri_too_long"), body
        assert closed
    still_serves(server)


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Big: " + b"v" * 5000 + b"\r\n",  # one header over the total
        b"".join(b"X-%d: " % i + b"v" * 900 + b"\r\n" for i in range(5)),  # together over it
        b"".join(b"X-%d: v\r\n" % i for i in range(25)),  # too many
        b"X-Huge: " + b"v" * 4_000_000 + b"\r\n",  # never ends within the bound
    ],
    ids=["one-big", "sum", "count", "4MB"],
)
@pytest.mark.parametrize("upgrade", [False, True], ids=["http", "websocket"])
def test_headers_over_the_limit_get_431(server: Server, headers: bytes, upgrade: bool) -> None:
    target = b"/ws" if upgrade else b"/api/ws/health"
    reply, closed = exchange(server.port, get(target, (UPGRADE if upgrade else b"") + headers))
    status, _, body = refusal(reply)
    assert (status, body["error"]["code"]) == (431, "headers_too_large"), body
    assert closed
    still_serves(server)


def test_headers_within_the_limits_pass(server: Server) -> None:
    headers = b"".join(b"X-%d: " % i + b"v" * 150 + b"\r\n" for i in range(18))  # ~2.9 KB
    reply = head_of_reply(server, get(b"/api/ws/health", headers))
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:80]


@pytest.mark.parametrize(
    ("url", "headers", "status"),
    [
        (b"/" + b"a" * (8192 - 16), [], None),  # GET + URL + HTTP/1.1 + CRLF = 8192
        (b"/" + b"a" * (8192 - 15), [], 414),
        (b"/", [(b"x-a", b"v" * (8192 - 7))], None),  # `x-a: v...\r\n` = 8192
        (b"/", [(b"x-a", b"v" * (8192 - 6))], 431),
        (b"/", [(b"x-%d" % i, b"v") for i in range(128)], None),
        (b"/", [(b"x-%d" % i, b"v") for i in range(129)], 431),
    ],
)
def test_websocket_size_refusals_match_websockets(
    url: bytes, headers: list[tuple[bytes, bytes]], status: int | None
) -> None:
    """`handshake.over_limits` refuses exactly what websockets' parser would (and uvicorn
    would never send that refusal), for the request as uvicorn hands it over."""
    raw = b"GET " + url + b" HTTP/1.1\r\n"
    raw += b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"
    reader = StreamReader()
    reader.feed_data(raw)
    parser = Request.parse(reader.read_line)
    try:
        next(parser)
        raise AssertionError("incomplete request")
    except StopIteration:
        websockets_refuses = False
    except Exception:
        websockets_refuses = True
    ours = handshake.over_limits("GET", url, headers)
    assert websockets_refuses == (status is not None)
    assert (ours[0] if ours else None) == status


def test_a_websocket_request_line_over_websockets_limit_gets_414(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Our URL limit above websockets' line limit: still a 414, never a silent hang."""
    env = {"STOCKFEED_MAX_URL_BYTES": "65536", "STOCKFEED_MAX_HEADER_BYTES": "65536"}
    running = Server(tmp_path_factory.mktemp("wide"), "--source", "none", env=env)
    try:
        running.wait_ready()
        reply, closed = exchange(running.port, get(b"/ws?x=" + b"a" * 9000, UPGRADE), timeout=5)
        status, _, body = refusal(reply)
        assert (status, body["error"]["code"]) == (414, "uri_too_long") and closed
        big = b"X-Big: " + b"v" * 9000 + b"\r\n"
        reply, closed = exchange(running.port, get(b"/ws", UPGRADE + big), timeout=5)
        assert refusal(reply)[0] == 431 and closed
        reply = head_of_reply(running, get(b"/api/ws/health?x=" + b"a" * 9000))
        assert reply.startswith(b"HTTP/1.1 200 "), "plain HTTP takes our limit only"
    finally:
        running.stop()


# -- the open-connection cap -----------------------------------------------------------


def test_connections_past_the_cap_get_503(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"STOCKFEED_MAX_OPEN_CONNECTIONS": "12", "STOCKFEED_HTTP_HEADER_TIMEOUT": "30"}
    running = Server(tmp_path_factory.mktemp("cap"), "--source", "none", env=env)
    try:
        running.wait_ready()
        with connect(running.ws + "/ws") as ws:
            # 1 WebSocket + 11 idle sockets = the cap: WebSockets count too.
            idle = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(11)]
            time.sleep(0.3)
            try:
                for request in (get(b"/api/ws/health"), get(b"/ws", UPGRADE)):
                    started = time.monotonic()
                    reply, closed = exchange(running.port, request)
                    status, headers, body = refusal(reply)
                    assert (status, body["error"]["code"]) == (503, "server_busy"), body
                    assert headers["retry-after"] == "5" and closed
                    assert time.monotonic() - started < 2
                # One past the cap that says nothing is closed after 1 s, not 30.
                with socket.create_connection(("127.0.0.1", running.port)) as sock:
                    started = time.monotonic()
                    assert read_all(sock, 5) == (b"", True)
                    assert time.monotonic() - started < 3
            finally:
                for sock in idle:
                    sock.close()
            time.sleep(0.5)
            assert ws.ping().wait(5), "the WebSocket inside the cap is untouched"
        still_serves(running)
        with connect(running.ws + "/ws") as again:
            assert again.ping().wait(5)
        assert "cap 12" in running.log()
    finally:
        running.stop()


def test_the_stock_protocol_gets_uvicorns_503(tmp_path_factory: pytest.TempPathFactory) -> None:
    """STOCKFEED_FAST_PATH=false: only uvicorn's own `limit_concurrency` applies (a plain
    text 503 to HTTP requests past the cap; docs/protocol.md#http-limits)."""
    env = {"STOCKFEED_FAST_PATH": "false", "STOCKFEED_MAX_OPEN_CONNECTIONS": "5"}
    running = Server(tmp_path_factory.mktemp("stock"), "--source", "none", env=env)
    try:
        running.wait_ready()
        idle = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(5)]
        try:
            time.sleep(0.3)
            reply, _ = exchange(running.port, get(b"/api/ws/health"))
            assert reply.startswith(b"HTTP/1.1 503 "), reply[:80]
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.3)
        still_serves(running)
    finally:
        running.stop()


# -- what idle sockets cost ------------------------------------------------------------


def test_idle_sockets_cost_little_and_are_closed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Prints RSS per idle socket (a figure to read, not asserted), then checks every
    one of them was closed by the header timeout."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2000 + 100
    if soft < wanted and (hard == resource.RLIM_INFINITY or hard >= wanted):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    count = min(2000, soft - 100)
    half = b"GET /api/ws/health HTTP/1.1\r\nHost: localhost\r\nX-Partial: "
    for kind, first_bytes in (("nothing sent", b""), ("half a request", half)):
        # A server each: memory the first batch freed would flatter the second.
        _idle_sockets(tmp_path_factory, count, kind, first_bytes)


def _idle_sockets(
    tmp_path_factory: pytest.TempPathFactory, count: int, kind: str, first_bytes: bytes
) -> None:
    env = {"STOCKFEED_HTTP_HEADER_TIMEOUT": "3"}
    running = Server(tmp_path_factory.mktemp("idle"), "--source", "none", env=env)
    try:
        running.wait_ready()
        for _ in range(20):
            still_serves(running)
        time.sleep(0.5)
        before = rss_kib(running.proc.pid)
        socks = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(count)]
        for sock in socks:
            if first_bytes:
                sock.sendall(first_bytes)
        time.sleep(1)
        grown = rss_kib(running.proc.pid) - before
        print(f"{count} idle sockets, {kind}: RSS +{grown} KiB, {grown * 1024 / count:.0f} B each")
        time.sleep(3.5)  # past the header timeout (3 s) and its clock's tick
        open_left = 0
        for sock in socks:
            reply, closed = read_all(sock, 0.01)
            open_left += not closed
            if first_bytes:
                assert refusal(reply)[0] == 408
            sock.close()
        assert open_left == 0, f"{open_left} of {count} still open after the timeout"
        still_serves(running)
    finally:
        running.stop()
