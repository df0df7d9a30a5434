"""server/http_peers.PeerCounts: open HTTP connections per client key, in-process (the
socket side is in test_http_progress.py)."""

from __future__ import annotations

from stockfeed.admission.identity import ClientIdentity
from stockfeed.server.forwarded import TrustedProxies
from stockfeed.server.http_peers import PeerCounts

LOOPBACK = ["127.0.0.1", "::1"]


def counts(cap: int, exempt: list[str] = LOOPBACK, proxies: list[str] | None = None) -> PeerCounts:
    return PeerCounts(cap, ClientIdentity(exempt), TrustedProxies(proxies or []))


def test_a_client_gets_its_cap_and_a_place_back_when_one_closes() -> None:
    peers = counts(2)
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
    peers = counts(3)
    keys = [peers.acquire(f"2001:db8:5:6::{n:x}") for n in range(1, 4)]
    assert {key for key, _ in keys} == {"2001:db8:5:6::/64"}
    assert peers.acquire("2001:db8:5:6:ffff::1") == (None, True)
    assert peers.acquire("2001:db8:5:7::1") == ("2001:db8:5:7::/64", False)


def test_exempt_addresses_and_trusted_proxies_are_not_counted() -> None:
    peers = counts(1, proxies=["10.0.0.0/8"])
    for ip in ("127.0.0.1", "::1", "127.0.0.1", "10.1.2.3", "10.1.2.3"):
        assert peers.acquire(ip) == (None, False), ip
    assert peers.acquire("127.0.0.2") == ("127.0.0.2", False), "only 127.0.0.1 is listed"
    assert peers.open == {"127.0.0.2": 1}


def test_no_cap_counts_nothing() -> None:
    peers = counts(0, exempt=[])
    assert [peers.acquire("192.0.2.1") for _ in range(1000)][-1] == (None, False)
    assert peers.open == {}
