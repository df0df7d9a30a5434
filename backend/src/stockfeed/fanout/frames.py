"""Server->client WebSocket frames, built once and shared by every client.

A server's frames are unmasked (RFC 6455 5.1), so the same bytes are valid on every
connection: the hub frames each update once and hands those bytes to every subscriber.
Pure bytes work, nothing of any server: the fan-out core and the uvicorn-level fast
path both use it.
"""

from __future__ import annotations

import struct

_HEADER_SMALL = struct.Struct("!BB")
_HEADER_MEDIUM = struct.Struct("!BBH")
_HEADER_LARGE = struct.Struct("!BBQ")
_FIN_TEXT = 0x81
_FIN_CLOSE = 0x88


# The two-byte headers of every text frame shorter than 126 bytes, built once.
_SMALL_TEXT = [_HEADER_SMALL.pack(_FIN_TEXT, n) for n in range(126)]


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked server->client text frame (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        return _SMALL_TEXT[n] + payload
    if n < 65536:
        return _HEADER_MEDIUM.pack(_FIN_TEXT, 126, n) + payload
    return _HEADER_LARGE.pack(_FIN_TEXT, 127, n) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:120]
    return _HEADER_SMALL.pack(_FIN_CLOSE, len(payload)) + payload


def frame_payload(frame: bytes) -> bytes:
    """The payload of an unmasked frame built by `text_frame`."""
    length = frame[1] & 0x7F
    start = 2 if length < 126 else 4 if length == 126 else 10
    return frame[start:]
