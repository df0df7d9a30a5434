"""server/http_peers.PeerCounts: open HTTP connections per client key, in-process (the
socket side is in test_http_progress.py)."""

from __future__ import annotations

import ipaddress

from stockfeed.server.http_peers import PeerCounts

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


def test_a_client_gets_its_cap_and_a_place_back_when_one_closes() -> None:
    peers = PeerCounts(2, LOOPBACK)
    first, second = peers.acquire("192.0.2.7"), peers.acquire("192.0.2.7")
    assert first == ("192.0.2.7", False) and second == ("192.0.2.7", False)
    assert peers.acquire("192.0.2.7") == (None, True), "over the cap: refused, not counted"
    assert peers.acquire("192.0.2.8") == ("192.0.2.8", False), "another client is not held"
    peers.release("192.0.2.7")
    assert peers.acquire("192.0.2.7") == ("192.0.2.7", False)
    for key in ("192.0.2.7", "192.0.2.7", "192.0.2.8"):
        peers.release(key)
    assert peers.open == {}, "nothing kept for clients with no connection"


def test_an_ipv6_64_is_one_client() -> None:
    peers = PeerCounts(3, LOOPBACK)
    keys = [peers.acquire(f"2001:db8:5:6::{n:x}") for n in range(1, 4)]
    assert {key for key, _ in keys} == {"2001:db8:5:6::/64"}
    assert peers.acquire("2001:db8:5:6:ffff::1") == (None, True)
    assert peers.acquire("2001:db8:5:7::1") == ("2001:db8:5:7::/64", False)


def test_exempt_addresses_are_not_counted() -> None:
    peers = PeerCounts(1, LOOPBACK)
    for ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.0.1", "::1"):
        assert peers.acquire(ip) == (None, False), ip
    assert peers.acquire("127.0.0.2") == ("127.0.0.2", False), "only 127.0.0.1 is listed"
    assert peers.open == {"127.0.0.2": 1}


def test_no_cap_counts_nothing() -> None:
    peers = PeerCounts(0, ())
    assert [peers.acquire("192.0.2.1") for _ in range(1000)][-1] == (None, False)
    assert peers.open == {}


def test_the_exemption_cache_stays_bounded() -> None:
    peers = PeerCounts(1, LOOPBACK)
    for n in range(PeerCounts.EXEMPT_CACHE * 2):
        peers.exempt(str(ipaddress.IPv4Address(0x0A000000 + n)))
    assert len(peers._exempt_cache) <= PeerCounts.EXEMPT_CACHE
