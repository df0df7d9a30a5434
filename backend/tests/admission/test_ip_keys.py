"""admission/ip_keys.client_key: which client a per-IP limit counts."""

from __future__ import annotations

import pytest

from stockfeed.admission.ip_keys import client_key


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("127.0.0.2", "127.0.0.2"),
        # A dual-stack socket shows an IPv4 peer as a mapped IPv6 address: the same client.
        ("::ffff:192.0.2.1", "192.0.2.1"),
        # IPv6: the /64, whatever the rest of the address.
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        # Not an address (a Unix socket, nothing): itself.
        ("/run/stockfeed.sock", "/run/stockfeed.sock"),
        ("", ""),
    ],
)
def test_client_key(ip: str, key: str) -> None:
    assert client_key(ip) == key


def test_addresses_of_one_64_share_a_key_and_other_64s_do_not() -> None:
    same = {client_key(f"2001:db8:aa:bb:{n:x}::{n:x}") for n in range(1, 200)}
    assert same == {"2001:db8:aa:bb::/64"}
    assert client_key("2001:db8:aa:bc::1") != client_key("2001:db8:aa:bb::1")


def test_the_prefix_is_a_parameter() -> None:
    assert client_key("2001:db8:1:2:3::1", 48) == "2001:db8:1::/48"
    assert client_key("2001:db8:1:2:3::1", 128) == "2001:db8:1:2:3::1"
    assert client_key("192.0.2.1", 48) == "192.0.2.1"  # IPv4 is never widened
    for bad in (-1, 129):
        with pytest.raises(ValueError):
            client_key("2001:db8::1", bad)
