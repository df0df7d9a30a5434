"""The key a client IP is counted under by the per-IP limits.

An IPv4 address is one subscriber line, but an IPv6 customer gets a whole /64 (often a
/56 or /48) and picks addresses from it at will: keyed by full address, one client would
have 2^64 identities and every per-IP limit would be void. So an IPv6 address counts as
its network of `ipv6_prefix` bits ("2001:db8:1:2::/64"). An IPv4 address written as IPv6
(`::ffff:192.0.2.7`, what a dual-stack socket reports) counts as the IPv4 address it is.
"""

from __future__ import annotations

import ipaddress


def client_key(ip: str, ipv6_prefix: int = 64) -> str:
    """`ip` as a per-IP limit counts it: IPv4 unchanged, IPv6 as its /`ipv6_prefix`
    network; anything that is not an IP address (a unix socket's path, "") unchanged."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv4Address):
        return ip
    mapped = address.ipv4_mapped
    if mapped is not None:
        return str(mapped)
    return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
