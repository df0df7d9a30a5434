"""The WebSocket entry applies X-Forwarded-* itself (uvicorn's proxy_headers is off)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from stockfeed.server.asgi import AsgiEntry


def scope(client: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "websocket", "client": (client, 5000), "scheme": "ws", "headers": list(headers)}


def test_forwarded_headers_only_from_trusted_proxies() -> None:
    entry = AsgiEntry(FastAPI(), trusted="10.0.0.1")
    trusted = scope(
        "10.0.0.1", (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")
    )
    entry._forwarded(trusted)
    assert trusted["client"] == ("203.0.113.7", 0) and trusted["scheme"] == "wss"
    # Anyone else claiming to be someone else is not believed.
    spoofed = scope("198.51.100.9", (b"x-forwarded-for", b"203.0.113.7"))
    entry._forwarded(spoofed)
    assert spoofed["client"] == ("198.51.100.9", 5000) and spoofed["scheme"] == "ws"
    # A chain: the client is the last address not of a trusted proxy.
    chain = scope("10.0.0.1", (b"x-forwarded-for", b"203.0.113.7, 198.51.100.9"))
    entry._forwarded(chain)
    assert chain["client"][0] == "198.51.100.9"
    # Junk in the proto header leaves the scheme alone.
    junk = scope("10.0.0.1", (b"x-forwarded-proto", b"gopher"))
    entry._forwarded(junk)
    assert junk["scheme"] == "ws"
