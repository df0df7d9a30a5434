"""The opening handshake answered from httptools' parse (stockfeed.handshake).

It must never accept what websockets would refuse, and what it sends and puts in the
ASGI scope must be what the ordinary path (websockets parsing the request again) gives.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import sys
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.server import ServerProtocol

from stockfeed.server import handshake
from tests.server.inloop import lifespan, serve_in_loop
from tests.servers import StartServer

pytestmark = pytest.mark.process

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

BASE: list[tuple[bytes, bytes]] = [
    (b"host", b"example"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", KEY),
    (b"sec-websocket-version", b"13"),
]


def _with(**changes: bytes | None) -> list[tuple[bytes, bytes]]:
    """BASE with headers replaced (None removes them)."""
    names = {k.replace("_", "-").encode(): v for k, v in changes.items()}
    out = [(n, names[n]) for n, _ in BASE if n in names and names[n] is not None]
    out += [(n, v) for n, v in BASE if n not in names]
    return [(n, v) for n, v in out if v is not None]  # type: ignore[misc]


# (method, version, url, headers): requests that websockets parses and judges itself.
SLOW_WAY: dict[str, tuple[str, str, bytes, list[tuple[bytes, bytes]]]] = {
    "post": ("POST", "1.1", b"/ws", BASE),
    "http/1.0": ("GET", "1.0", b"/ws", BASE),
    "no key": ("GET", "1.1", b"/ws", _with(sec_websocket_key=None)),
    "two keys": ("GET", "1.1", b"/ws", [*BASE, (b"sec-websocket-key", KEY)]),
    "short key": ("GET", "1.1", b"/ws", _with(sec_websocket_key=base64.b64encode(b"x" * 15))),
    "long key": ("GET", "1.1", b"/ws", _with(sec_websocket_key=base64.b64encode(b"x" * 17))),
    "key not base64": ("GET", "1.1", b"/ws", _with(sec_websocket_key=b"!" * 24)),
    "key with spaces": ("GET", "1.1", b"/ws", _with(sec_websocket_key=b" " + KEY)),
    "version 8": ("GET", "1.1", b"/ws", _with(sec_websocket_version=b"8")),
    "no version": ("GET", "1.1", b"/ws", _with(sec_websocket_version=None)),
    "two versions": ("GET", "1.1", b"/ws", [*BASE, (b"sec-websocket-version", b"13")]),
    "two upgrades": ("GET", "1.1", b"/ws", [*BASE, (b"upgrade", b"websocket")]),
    "upgrade list": ("GET", "1.1", b"/ws", _with(upgrade=b"websocket, h2c")),
    "absolute url": ("GET", "1.1", b"http://example/ws", BASE),
    "asterisk": ("GET", "1.1", b"*", BASE),
    "fragment": ("GET", "1.1", b"/ws#frag", BASE),
    "non-ascii url": ("GET", "1.1", "/ws/\u00e9".encode(), BASE),
    "long url": ("GET", "1.1", b"/" + b"a" * 8200, BASE),
    "many headers": ("GET", "1.1", b"/ws", BASE + [(b"x-%d" % i, b"v") for i in range(124)]),
    "long header": ("GET", "1.1", b"/ws", [*BASE, (b"x-big", b"v" * 8200)]),
}


def test_rfc_6455_example_is_accepted() -> None:
    assert handshake.accept_value("GET", "1.1", b"/ws/stocks/AAPL?x=1", BASE) == ACCEPT


def test_header_case_in_values_does_not_matter() -> None:
    assert handshake.accept_value("GET", "1.1", b"/", _with(upgrade=b"WebSocket")) == ACCEPT


@pytest.mark.parametrize("case", sorted(SLOW_WAY))
def test_anything_unusual_goes_the_ordinary_way(case: str) -> None:
    assert handshake.accept_value(*SLOW_WAY[case]) is None


def _websockets_verdict(
    method: str, version: str, url: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, str | None]:
    request = Request(
        url.decode("latin-1"),
        Headers([(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]),
        method=method,
        protocol=f"HTTP/{version}",
    )
    response = ServerProtocol().accept(request)
    return response.status_code, response.headers.get("Sec-WebSocket-Accept")


@pytest.mark.parametrize("case", ["valid", *sorted(SLOW_WAY)])
def test_never_accepts_what_websockets_refuses(case: str) -> None:
    request = SLOW_WAY.get(case, ("GET", "1.1", b"/ws/stocks/AAPL", BASE))
    ours = handshake.accept_value(*request)
    if ours is not None:
        assert _websockets_verdict(*request) == (101, ours)


def test_subprotocols_are_split_like_uvicorn() -> None:
    headers = [
        *BASE,
        (b"sec-websocket-protocol", b"bearer, abc.def"),
        (b"sec-websocket-protocol", b" x "),
    ]
    assert handshake.subprotocols(headers) == ["bearer", "abc.def", "x"]


# -- the two paths side by side, in one uvicorn server with stockfeed's protocols ----


protocols: list[Any] = []  # each connection's FastWebSocketProtocol, in order


async def _handshake_and_scope(
    monkeypatch: pytest.MonkeyPatch, ordinary: bool, request: bytes
) -> tuple[bytes, dict[str, Any]]:
    if ordinary:
        monkeypatch.setattr(handshake, "accept_value", lambda *a: None)
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if await lifespan(scope, receive, send):
            return
        scopes.append(dict(scope))
        protocols.append(scope["extensions"]["stockfeed.sink"]._protocol)
        await receive()
        await send(
            {"type": "websocket.accept", "subprotocol": "bearer", "headers": [(b"X-A", b"1")]}
        )
        await send({"type": "websocket.send", "text": "hello"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with serve_in_loop(app, ws_per_message_deflate=False) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        frame = await asyncio.wait_for(reader.readexactly(7), 5)
        assert frame == b"\x81\x05hello"
        writer.close()
    (scope,) = scopes
    return head, scope


REQUEST = (
    b"GET /ws/stocks/a%20b?token=x&y=%C3%A9 HTTP/1.1\r\nHost: example\r\n"
    b"Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: bearer, abc\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
    b"Origin: http://example\r\n\r\n"
)


async def test_both_paths_send_the_same_response_and_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast_head, fast_scope = await _handshake_and_scope(monkeypatch, False, REQUEST)
    slow_head, slow_scope = await _handshake_and_scope(monkeypatch, True, REQUEST)

    def without_date(head: bytes) -> list[bytes]:
        return [line for line in head.split(b"\r\n") if not line.startswith(b"date:")]

    assert without_date(fast_head) == without_date(slow_head)
    assert b"Sec-WebSocket-Accept: " + ACCEPT.encode() in fast_head
    assert b"Sec-WebSocket-Protocol: bearer\r\n" in fast_head
    for scope in (fast_scope, slow_scope):
        assert "stockfeed.sink" in scope.pop("extensions")
        del scope["server"], scope["client"]  # the ports differ
    assert fast_scope == slow_scope
    assert fast_scope["path"] == "/ws/stocks/a b"
    assert fast_scope["query_string"] == b"token=x&y=%C3%A9"


async def test_connections_keep_the_compact_attribute_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FastWebSocketProtocol.__slots__: CPython 3.11 shares one key table among a class's
    instances only up to 29 attributes added in the same order; past that every
    connection carries a dict of its own (~1.2 KiB, `bench conn`). A connection from
    either handshake path, in either order, must stay under the limit."""
    protocols.clear()
    await _handshake_and_scope(monkeypatch, True, REQUEST)
    monkeypatch.undo()
    await _handshake_and_scope(monkeypatch, False, REQUEST)
    await _handshake_and_scope(monkeypatch, True, REQUEST)
    assert len(protocols) == 3
    for protocol in protocols:
        attributes = vars(protocol)
        assert len(attributes) <= 29, sorted(attributes)
        assert sys.getsizeof(attributes) < 1024, "a dict of its own, not the shared table"


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        (b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n", b"Sec-WebSocket-Key"),
        (b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 8\r\n", b"Version header: 8"),
        (b"Sec-WebSocket-Version: 13\r\n", b"missing Sec-WebSocket-Key"),
    ],
)
def test_a_running_server_still_refuses_bad_handshakes(
    start_server: StartServer, lines: bytes, says: bytes
) -> None:
    """websockets' own refusals (400 with its reason), not a silent close or a 101."""
    server = start_server("--source", "none")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"GET /ws/stocks/AAPL HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n" + lines + b"\r\n"
        )
        reply = sock.recv(4096)
    assert reply.split(b" ", 2)[1] == b"400", reply
    assert b"Failed to open a WebSocket connection" in reply and says in reply, reply
    assert server.health()["status"] == "ok"
