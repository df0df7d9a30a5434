"""The WebSocket opening handshake, answered from httptools' parse of the request.

uvicorn hands an upgrade to its WebSocket protocol by writing the request that httptools
has just parsed back out as bytes, which websockets then parses a second time, validates,
answers with a `Response` object, amends and serialises: in a connect storm, a large share
of the server's time per connection (docs/performance.md). Here the request is
checked once, from the headers httptools already split, and the 101 is built as bytes.

Only a plain, valid version-13 upgrade takes this path, and it is answered byte for byte
as websockets + uvicorn would answer it. Anything else (another method or HTTP version,
a missing, repeated or malformed key or version, a URL that is not a plain origin-form
path) goes the ordinary way, so every refusal keeps the status and message websockets
gives it; so does every request while per-message deflate (which websockets negotiates)
or debug logging (websockets logs each handshake line) is on. The exception is a request
over websockets' size limits: websockets refuses it while parsing, and uvicorn never
sends that refusal (the client waits on an open connection), so `over_limits` answers
it first, on either path.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence

from websockets import http11
from websockets.utils import accept_key

# websockets refuses longer request lines and header lines (414 / 431) and more than
# this many headers: leave such requests to it.
_MAX_LINE = 8192
_MAX_HEADERS = 128

_STATUS_AND_UPGRADE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
)


def accept_value(
    method: str, http_version: str, url: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> str | None:
    """`Sec-WebSocket-Accept` for a request that may skip websockets' parser, else None.

    `headers` are httptools' (name lowercased, value as sent); uvicorn has already
    checked that the last `Connection` header asks for an upgrade to `websocket`."""
    if method != "GET" or http_version != "1.1" or len(headers) > _MAX_HEADERS:
        return None
    if len(url) >= _MAX_LINE or url[:1] != b"/" or not url.isascii() or b"#" in url:
        return None
    key: bytes | None = None
    version: bytes | None = None
    upgrades = 0
    for name, value in headers:
        if len(name) + len(value) >= _MAX_LINE:
            return None
        if name == b"sec-websocket-key":
            if key is not None:
                return None
            key = value
        elif name == b"sec-websocket-version":
            if version is not None:
                return None
            version = value
        elif name == b"upgrade":
            upgrades += 1
            if value.lower() != b"websocket":
                return None
    if key is None or version != b"13" or upgrades != 1:
        return None
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    return accept_key(key.decode("ascii"))


class _WebSocketsLimits:
    """websockets' parser limits (environment variables of its own), read when used."""

    @property
    def max_line(self) -> int:
        """Longest request or header line websockets reads, CRLF included."""
        return http11.MAX_LINE_LENGTH

    @property
    def max_headers(self) -> int:
        return http11.MAX_NUM_HEADERS


LIMITS = _WebSocketsLimits()


def over_limits(
    method: str, url: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> tuple[int, str, str] | None:
    """(status, code, message) for an upgrade request that websockets would refuse for
    its size, as uvicorn hands it over (`METHOD URL HTTP/1.1` and `name: value` lines)."""
    max_line = LIMITS.max_line
    if len(method) + len(url) + 12 > max_line:
        return 414, "uri_too_long", f"a WebSocket request line is at most {max_line} bytes"
    if len(headers) > LIMITS.max_headers:
        return (
            431,
            "headers_too_large",
            f"a WebSocket handshake has at most {LIMITS.max_headers} header fields",
        )
    for name, value in headers:
        if len(name) + len(value) + 4 > max_line:
            return (
                431,
                "headers_too_large",
                f"a WebSocket handshake header line is at most {max_line} bytes",
            )
    return None


def subprotocols(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The subprotocols a client offered, as uvicorn puts them in the ASGI scope."""
    offered: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            offered.extend(token.strip() for token in value.decode("latin-1").split(","))
    return offered


def switching_protocols(
    accept: str,
    default_headers: Iterable[tuple[bytes, bytes]],
    app_headers: Iterable[tuple[bytes, bytes]],
    subprotocol: str | None,
) -> bytes:
    """The 101 response, with the same headers in the same order as uvicorn's."""
    parts = [_STATUS_AND_UPGRADE, b"Sec-WebSocket-Accept: ", accept.encode("ascii"), b"\r\n"]
    for headers in (default_headers, app_headers):
        for name, value in headers:
            parts += [name.lower(), b": ", value, b"\r\n"]
    if subprotocol:
        parts += [b"Sec-WebSocket-Protocol: ", subprotocol.encode("latin-1"), b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)
