"""The entry applies X-Forwarded-* itself (uvicorn's proxy_headers is off), from configured
proxies only, and a forwarded client is never exempt from the per-IP limits."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from stockfeed.admission.identity import ClientIdentity, ProxiedAddress
from stockfeed.config import Settings
from stockfeed.server.asgi import AsgiEntry
from stockfeed.server.forwarded import TrustedProxies


def scope(client: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "websocket", "client": (client, 5000), "scheme": "ws", "headers": list(headers)}


def test_forwarded_headers_only_from_trusted_proxies() -> None:
    proxies = TrustedProxies(["10.0.0.1"])
    trusted = scope(
        "10.0.0.1", (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")
    )
    proxies.apply(trusted)
    assert trusted["client"] == ("203.0.113.7", 0) and trusted["scheme"] == "wss"
    assert isinstance(trusted["client"][0], ProxiedAddress)
    # Anyone else claiming to be someone else is not believed.
    spoofed = scope("198.51.100.9", (b"x-forwarded-for", b"203.0.113.7"))
    proxies.apply(spoofed)
    assert spoofed["client"] == ("198.51.100.9", 5000) and spoofed["scheme"] == "ws"
    assert not isinstance(spoofed["client"][0], ProxiedAddress)
    # A chain: the client is the last address not of a trusted proxy.
    chain = scope("10.0.0.1", (b"x-forwarded-for", b"203.0.113.7, 198.51.100.9"))
    proxies.apply(chain)
    assert chain["client"][0] == "198.51.100.9"
    # Junk in the proto header leaves the scheme alone.
    junk = scope("10.0.0.1", (b"x-forwarded-proto", b"gopher"))
    proxies.apply(junk)
    assert junk["scheme"] == "ws"


def test_nothing_is_trusted_by_default() -> None:
    entry = AsgiEntry(FastAPI(), Settings())
    assert not entry.proxies
    local = scope("127.0.0.1", (b"x-forwarded-for", b"203.0.113.7"))
    entry.proxies.apply(local)
    assert local["client"] == ("127.0.0.1", 5000)


def test_chains_ports_networks_and_malformed_entries() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "::1"])
    # Our own proxies in a row: the client is the first address not one of them.
    row = scope("10.1.2.3", (b"x-forwarded-for", b"198.51.100.4:5123, 10.9.9.9"))
    proxies.apply(row)
    assert row["client"][0] == "198.51.100.4"
    v6 = scope("::1", (b"x-forwarded-for", b"[2001:db8::7]:443"))
    proxies.apply(v6)
    assert v6["client"][0] == "2001:db8::7"
    # Two header lines are one list.
    split = scope("10.0.0.1", (b"x-forwarded-for", b"192.0.2.1"), (b"x-forwarded-for", b"10.0.0.2"))
    proxies.apply(split)
    assert split["client"][0] == "192.0.2.1"
    # Something that is no address: nothing to its left is believed; the client is the
    # proxy itself, but as a forwarded address (never exempt).
    bad = scope("10.0.0.1", (b"x-forwarded-for", b"127.0.0.1, not-an-ip"))
    proxies.apply(bad)
    assert bad["client"] == ("10.0.0.1", 5000) and isinstance(bad["client"][0], ProxiedAddress)
    # `*`: every peer is a proxy; the client is what the last one saw.
    anyone = TrustedProxies(["*"])
    claimed = scope("192.0.2.50", (b"x-forwarded-for", b"127.0.0.1, 198.51.100.3"))
    anyone.apply(claimed)
    assert claimed["client"][0] == "198.51.100.3"


def test_a_forwarded_loopback_address_is_never_exempt() -> None:
    identity = ClientIdentity(["127.0.0.1", "::1"])
    proxies = TrustedProxies(["127.0.0.2"])
    forged = scope("127.0.0.2", (b"x-forwarded-for", b"127.0.0.1"))
    proxies.apply(forged)
    assert forged["client"][0] == "127.0.0.1"
    assert not identity.exempt(forged["client"][0])
    # The same address as the socket's own peer is.
    assert identity.exempt("127.0.0.1")
    # A request from the proxy without X-Forwarded-For is the peer's own.
    own = scope("127.0.0.2")
    proxies.apply(own)
    assert own["client"] == ("127.0.0.2", 5000)
