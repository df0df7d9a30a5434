"""Every HTTP connection must make progress, on a real `stockfeed serve` over raw sockets
(docs/protocol.md#http-limits): a request body has a deadline, pipelined requests are
read one at a time and answered in order, a client that does not read its answers is
dropped, an idle kept-alive connection is closed, and one client address can hold only
so many HTTP connections.

The deadlines are set to a second or two so that the tests take seconds; what is
asserted is that the server let go (or answered) long before a client that keeps going
would stop, never how fast.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from tests.httputil import (
    Responses,
    connect_from,
    exchange,
    get,
    read_all,
    refusal,
    rss_kib,
    wait_closed,
)
from tests.servers import Server

pytestmark = pytest.mark.process

ATTACKER = "127.0.0.2"  # not in the default exempt list (loopback 127.0.0.1 and ::1)
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
)
PHASES = {
    "STOCKFEED_HTTP_HEADER_TIMEOUT": "2",
    "STOCKFEED_HTTP_BODY_TIMEOUT": "1",
    "STOCKFEED_HTTP_WRITE_TIMEOUT": "1",
    "STOCKFEED_HTTP_KEEPALIVE_TIMEOUT": "1",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("progress"), "--source", "none", env=PHASES)
    try:
        yield running.wait_ready()
    finally:
        running.stop()


def still_serves(server: Server) -> None:
    assert httpx.get(server.base + "/api/ws/health", timeout=5).status_code == 200


def post(target: bytes, length: int, extra: bytes = b"") -> bytes:
    return (
        b"POST "
        + target
        + b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n" % length
        + extra
        + b"\r\n"
    )


def quotes(n: int) -> bytes:
    """A request whose answer names its ticker: `{"Tn": null}` on a relay-only server."""
    return get(b"/api/quotes?tickers=T%d" % n)


def read_responses(sock: socket.socket, count: int, timeout: float = 10.0) -> Responses:
    responses = Responses()
    sock.settimeout(timeout)
    while len(responses.done) < count:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(responses.done)} of {count} answers"
        responses.feed(chunk)
    return responses


# -- the body ----------------------------------------------------------------------------


def test_a_body_sent_too_slowly_is_cut_off_after_its_answer(server: Server) -> None:
    """The attack of issue 20: a head with Content-Length 1,000,000, then a body byte at a
    time. No route reads a body, so the answer (405) comes at once; the connection is
    then closed at the body deadline (1 s here) although the client keeps sending."""
    with connect_from(server.port) as sock:
        sock.sendall(post(b"/api/ws/health", 1_000_000))
        started = time.monotonic()
        sock.settimeout(0.2)
        reply = b""
        closed_after = None
        while time.monotonic() - started < 15:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                chunk = None
            except OSError:
                closed_after = time.monotonic() - started
                break
            if chunk == b"":
                closed_after = time.monotonic() - started
                break
            if chunk:
                reply += chunk
            with contextlib.suppress(OSError):
                sock.sendall(b"a")
    print(f"slow body closed after {closed_after} s (deadline 1 s)")
    assert reply.startswith(b"HTTP/1.1 405 "), reply[:80]
    assert closed_after is not None, "still open after 15 s of a byte every 0.2 s"
    still_serves(server)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_in_time_keeps_the_connection(server: Server, chunked: bool) -> None:
    """A body that arrives in pieces within the deadline: answered, and the same
    connection serves the next request (which came right behind the body)."""
    if chunked:
        head = (
            b"POST /api/ws/health HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        body = [b"5\r\nhel", b"lo\r\n3\r\nabc\r\n", b"0\r\n\r\n"]
    else:
        head = post(b"/api/ws/health", 8)
        body = [b"hel", b"lo", b"abc"]
    with connect_from(server.port) as sock:
        sock.sendall(head + body[0])
        for piece in body[1:-1]:
            time.sleep(0.2)
            sock.sendall(piece)
        time.sleep(0.2)
        sock.sendall(body[-1] + quotes(1))  # the next request follows the body at once
        responses = read_responses(sock, 2)
    assert [status for status, _ in responses.done] == [405, 200]
    assert responses.done[1][1] == b'{"T1":null}'


# -- one request at a time ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "rcvbuf", "pause"),
    [(600, None, 0.0), (2000, 16384, 0.6)],
    ids=["read-at-once", "read-after-a-pause"],
)
def test_pipelined_requests_are_answered_in_order(
    server: Server, count: int, rcvbuf: int | None, pause: float
) -> None:
    """Hundreds of requests in one write, bodies among them: every one answered, in the
    order sent, on the one connection. Read after a pause (shorter than the write
    timeout) by a client with a small buffer, the answers (health reports of ~1 KB
    among them) pass what a pipelining client may leave unread (256 KiB): the server
    waits for it to read, then goes on."""
    requests = []
    for n in range(count):
        if n % 100 == 50:
            requests.append(post(b"/api/ws/health", 5) + b"12345")
        elif n % 2:
            requests.append(get(b"/api/ws/health"))
        else:
            requests.append(quotes(n))
    with connect_from(server.port, rcvbuf=rcvbuf, timeout=10) as sock:
        sender = threading.Thread(target=sock.sendall, args=(b"".join(requests),), daemon=True)
        sender.start()
        time.sleep(pause)
        responses = read_responses(sock, len(requests))
        sender.join(5)
    for n, (status, body) in enumerate(responses.done):
        if n % 100 == 50:
            assert status == 405, (n, status, body)
        elif n % 2:
            assert status == 200 and body.startswith(b'{"status":'), (n, body[:40])
        else:
            assert (status, body) == (200, b'{"T%d":null}' % n), n


def tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of `sock` (tcpi_state: 1 established, 7 closed), read
    without reading from it: a client that never reads can still see a reset."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


ESTABLISHED = 1


def test_a_pipelined_flood_that_is_never_read_is_held_to_one_read_and_dropped(
    server: Server,
) -> None:
    """The attack of issue 20: three sockets each write 3 MB of pipelined GETs and never
    read an answer. The server reads one request at a time, so what it holds does not
    grow with what is sent (the rest waits in the kernel's buffers); once the client's
    buffers are full its answers wait, and after the write timeout (1 s) without the
    client reading, the connection is dropped."""
    request = b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n"
    flood = request * (3_000_000 // len(request))
    for _ in range(5):
        still_serves(server)
    time.sleep(0.3)
    before = rss_kib(server.proc.pid)
    peak = before

    def attack(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the server drops it: reset or broken pipe
            sock.sendall(flood)

    socks = []
    for _ in range(3):
        socks.append(connect_from(server.port, ATTACKER, timeout=60, rcvbuf=4096))
    threads = [threading.Thread(target=attack, args=(sock,), daemon=True) for sock in socks]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while any(tcp_state(sock) == ESTABLISHED for sock in socks) and time.monotonic() - started < 45:
        peak = max(peak, rss_kib(server.proc.pid))
        time.sleep(0.1)
    took = time.monotonic() - started
    states = [tcp_state(sock) for sock in socks]
    for sock in socks:
        sock.close()
    grown = (peak - before) / 1024
    answered = server.log().count('"GET /nope HTTP/1.1" 404')
    print(
        f"3 x 3 MB pipelined, never read: RSS +{grown:.1f} MiB, {answered} answered, "
        f"dropped after {took:.1f} s"
    )
    assert ESTABLISHED not in states, "the server kept a connection that never reads"
    assert grown < 8, f"RSS grew {grown:.1f} MiB for 9 MB of requests nobody read"
    assert "did not read" in server.log()
    still_serves(server)


def test_an_idle_kept_alive_connection_is_closed(server: Server) -> None:
    with connect_from(server.port) as sock:
        sock.sendall(quotes(7))
        responses = read_responses(sock, 1)
        assert responses.done == [(200, b'{"T7":null}')]
        after = wait_closed(sock, 15)
    print(f"idle kept-alive connection closed after {after} s (keep-alive 1 s)")
    assert after is not None


# -- open HTTP connections per client address ------------------------------------------


def test_http_connections_per_address_are_capped(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = {"STOCKFEED_MAX_HTTP_CONNECTIONS_PER_IP": "4", "STOCKFEED_HTTP_HEADER_TIMEOUT": "30"}
    running = Server(tmp_path_factory.mktemp("per-ip"), "--source", "none", env=env)
    try:
        running.wait_ready()
        idle = [connect_from(running.port, ATTACKER) for _ in range(4)]
        try:
            time.sleep(0.3)
            for request in (get(b"/api/ws/health"), get(b"/ws", UPGRADE)):
                reply, closed = exchange(running.port, request, source=ATTACKER)
                status, headers, body = refusal(reply)
                assert (status, body["error"]["code"]) == (429, "too_many_connections"), body
                assert headers["retry-after"] == "5" and closed
            # One past the cap gets 1 s for its head, then the same answer.
            with connect_from(running.port, ATTACKER) as sock:
                sock.sendall(b"GET /api/ws/health HTTP/1.1\r\nHost: localhost\r\n")
                reply, closed = read_all(sock, 5)
            status, _, body = refusal(reply)
            assert (status, body["error"]["code"]) == (429, "too_many_connections") and closed
            # Another address of the same machine, and the exempt loopback, are not held.
            reply, _ = exchange(running.port, get(b"/api/ws/health"), source="127.0.0.3")
            assert reply.startswith(b"HTTP/1.1 200 "), reply[:80]
            loopback = [connect_from(running.port) for _ in range(12)]
            for sock in loopback:
                sock.sendall(get(b"/api/ws/health"))
            for sock in loopback:
                assert read_responses(sock, 1).done[0][0] == 200
                sock.close()
            # A connection that closes gives its place back.
            idle.pop().close()
            time.sleep(0.3)
            reply, _ = exchange(running.port, get(b"/api/ws/health"), source=ATTACKER)
            assert reply.startswith(b"HTTP/1.1 200 "), reply[:80]
        finally:
            for sock in idle:
                sock.close()
        # A WebSocket is counted by the WebSocket cap (STOCKFEED_MAX_CONNECTIONS_PER_IP)
        # once upgraded, not by this one: four open WebSockets leave room for HTTP.
        time.sleep(0.3)
        with contextlib.ExitStack() as stack:
            for _ in range(4):
                stack.enter_context(
                    connect(running.ws + "/ws", sock=connect_from(running.port, ATTACKER))
                )
            reply, _ = exchange(running.port, get(b"/api/ws/health"), source=ATTACKER)
            assert reply.startswith(b"HTTP/1.1 200 "), reply[:80]
        assert "STOCKFEED_MAX_HTTP_CONNECTIONS_PER_IP" in running.log()
    finally:
        running.stop()


def test_the_deadlines_leave_a_normal_client_alone(server: Server) -> None:
    """Keep-alive across requests spaced under the keep-alive timeout, a request head in
    two writes, and a read of the answer after a pause shorter than the write timeout."""
    with connect_from(server.port) as sock:
        for n in range(3):
            sock.sendall(quotes(n)[:20])
            time.sleep(0.1)
            sock.sendall(quotes(n)[20:])
            assert read_responses(sock, 1).done == [(200, b'{"T%d":null}' % n)]
            time.sleep(0.5)
        sock.sendall(quotes(9) * 50)
        time.sleep(0.5)
        assert len(read_responses(sock, 50).done) == 50
        sock.sendall(get(b"/api/ws/health", b"Connection: close\r\n"))
        reply, closed = read_all(sock, 5)
        assert reply.startswith(b"HTTP/1.1 200 ") and closed
