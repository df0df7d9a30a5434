"""The deadlines that depend on what the app does, over real sockets to a real uvicorn
running FastHttpProtocol in this process, with apps made to stall where stockfeed's never
do: one that reads a request body (no stockfeed route takes one), one that never answers
a WebSocket handshake, one that sends a large answer (docs/protocol.md#http-limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from stockfeed.server.edge_limits import EdgeLimits, configure_edges
from tests.server.inloop import lifespan, serve_in_loop

App = Callable[[Any, Any, Any], Awaitable[None]]
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE_REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
LIMITS = EdgeLimits(header_timeout=5, body_timeout=0.5, write_timeout=0.5, upgrade_timeout=0.5)


@pytest.fixture(autouse=True)
def short_deadlines() -> Iterator[None]:
    configure_edges(LIMITS)
    yield
    configure_edges(None)  # the next user reads the settings again


@contextlib.asynccontextmanager
async def serving(app: App, *, deflate: bool = False) -> AsyncIterator[int]:
    async def with_lifespan(scope: Any, receive: Any, send: Any) -> None:
        if not await lifespan(scope, receive, send):
            await app(scope, receive, send)

    # Deflate on: WebSocket handshakes take uvicorn's own path instead of handshake.py's.
    async with serve_in_loop(
        with_lifespan, ws_per_message_deflate=deflate, timeout_graceful_shutdown=1
    ) as port:
        yield port


async def read_until_closed(reader: asyncio.StreamReader, within: float) -> tuple[bytes, bool]:
    out = b""
    try:
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                out += chunk
    except TimeoutError:
        return out, False
    except ConnectionResetError:
        pass
    return out, True


def error_of(reply: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"\r\nconnection: close\r\n" in head.lower() + b"\r\n", head
    parsed: dict[str, Any] = json.loads(body)
    return int(head.split(b" ")[1]), parsed["error"]


async def test_a_body_the_app_waits_for_gets_408_at_its_deadline() -> None:
    seen: list[dict[str, Any]] = []

    async def reads_the_body(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        if seen[-1]["type"] == "http.request":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"got it"})

    async with serving(reads_the_body) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789"
        )
        reply, closed = await read_until_closed(reader, 5)
        writer.close()
        status, error = error_of(reply)
        assert (status, error["code"]) == (408, "request_timeout") and closed
        assert "body" in error["message"]
        assert seen[-1]["type"] == "http.disconnect", "the app learns the client is gone"

        # The same app, a body in time: answered.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n01234")
        await asyncio.sleep(0.2)
        writer.write(b"56789")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ")
        writer.close()


@pytest.mark.parametrize("deflate", [False, True], ids=["handshake.py", "uvicorn"])
async def test_a_websocket_handshake_the_app_never_answers_gets_503(deflate: bool) -> None:
    calls: list[str] = []
    late: list[BaseException | None] = []
    release = asyncio.Event()

    async def stalls(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])
        await release.wait()  # stuck until the deadline has passed
        try:
            await send({"type": "websocket.accept"})
            late.append(None)
        except Exception as exc:  # uvicorn says the client is gone
            late.append(exc)

    async with serving(stalls, deflate=deflate) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(UPGRADE_REQUEST)
        reply, closed = await read_until_closed(reader, 5)
        status, error = error_of(reply)
        assert (status, error["code"]) == (503, "server_busy") and closed
        assert b"retry-after: 5" in reply.lower()
        assert calls == ["websocket"]
        release.set()
        await asyncio.sleep(0.1)
        writer.close()
    # A late accept writes nothing after the 503 (the client read until the close).
    assert b"101 Switching" not in reply


async def test_an_answer_the_client_reads_slowly_is_not_cut_but_one_it_never_reads_is() -> None:
    # More than the kernel's socket buffers take (4 MB on loopback): the rest waits in
    # the server's process, which is what a client that does not read could pin there.
    body = b"x" * (16 * 1024 * 1024)

    async def large(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    loop = asyncio.get_running_loop()

    async def client(port: int, read_pause: float | None) -> tuple[int, bool]:
        """Bytes received and whether the server closed; reads 256 KiB per `read_pause`
        (a plain socket: nothing reads ahead), or, with None, nothing for 3 s."""
        sock = socket.socket()
        if read_pause is None:  # and holds as little as it can in its own kernel
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            if read_pause is None:
                await asyncio.sleep(3)
            got = 0
            async with asyncio.timeout(30):
                while got < len(body):
                    try:
                        chunk = await loop.sock_recv(sock, 256 * 1024)
                    except ConnectionResetError:
                        return got, True
                    if not chunk:
                        return got, True
                    got += len(chunk)
                    if read_pause:
                        await asyncio.sleep(read_pause)
            return got, False
        finally:
            sock.close()

    async with serving(large) as port:
        # ~5 MB/s: far slower than the server writes, never 0.5 s (the write timeout) idle.
        slow, never = await asyncio.gather(client(port, 0.05), client(port, None))
    assert slow[0] >= len(body), f"a slow reader got {slow[0]} of {len(body)} bytes"
    assert never[1] and never[0] < len(body), f"a client that never read got {never}"
