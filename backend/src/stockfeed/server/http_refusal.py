"""How the HTTP edges answer: a status, a JSON error body, `Connection: close`, then a
close that lets the client read the answer.

Written straight to the transport (the request never reaches the app), in the shape
every other error of the API has: `{"error":{"code","message"}}`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Iterable

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

# After a refusal the server stops writing but reads (and drops) what the client still
# sends for this long: closing with unread bytes makes the kernel send a reset, which can
# destroy the answer in the client's buffer before it reads it.
REFUSAL_LINGER = 2.0

# Seconds a refused client is told to wait (a connection cap frees up within a
# keep-alive timeout or two).
RETRY_AFTER = {429: 5, 503: 5}

Refusal = tuple[int, str, str]  # (status, code, message)


def error_response(refusal: Refusal, default_headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The whole answer, head and body."""
    status, code, message = refusal
    error = {"error": {"code": code, "message": message}}
    body = json.dumps(error, separators=(",", ":")).encode()
    out = [STATUS_LINE[status]]
    for name, value in default_headers:
        out += [name, b": ", value, b"\r\n"]
    retry_after = RETRY_AFTER.get(status)
    if retry_after is not None:
        out.append(b"retry-after: %d\r\n" % retry_after)
    out += [
        b"content-type: application/json\r\ncontent-length: ",
        str(len(body)).encode(),
        b"\r\nconnection: close\r\n\r\n",
        body,
    ]
    return b"".join(out)


def answer_and_linger(
    loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, answer: bytes
) -> asyncio.TimerHandle | None:
    """Write `answer` (after what is buffered), send FIN once it is out and keep reading
    (the protocol drops what comes) for `REFUSAL_LINGER`, then abort. Returns that timer
    (cancel it when the connection goes first), or None when the transport cannot
    half-close (closed at once)."""
    if answer:
        transport.write(answer)
    if transport.can_write_eof():
        transport.write_eof()
        return loop.call_later(REFUSAL_LINGER, transport.abort)
    transport.close()
    return None


_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST


def drop(transport: asyncio.WriteTransport) -> None:
    """Close now with a reset, for a client that does not read: a plain abort closes the
    socket with a FIN queued behind everything still unsent, and the kernel then keeps
    that (megabytes for a client that never reads) for minutes of retransmissions."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        except OSError:
            pass  # already gone
    transport.abort()
