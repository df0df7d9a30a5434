"""Which client a per-IP limit counts: the key of an address.

An IPv4 address is one client. An IPv6 address is not: a home or a cloud instance is
handed a whole /64 (2^64 addresses) and can pick a new address for every connection, so
keying limits by the full address would give one client unlimited identities. IPv6
addresses are keyed by their prefix instead (/64 by default: the smallest block an
ISP or a cloud provider hands out). An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, how a
dual-stack socket shows an IPv4 peer) is that IPv4 address.

Pure functions only: no settings, no state, so every limit (HTTP connections, WebSocket
admission, subscriptions) can share them.
"""

from __future__ import annotations

import ipaddress


def client_key(ip: str, ipv6_prefix: int = 64) -> str:
    """The key a per-IP limit counts `ip` under.

    - IPv4: the address itself, in its canonical form (`192.0.2.1`).
    - IPv6: the network of its first `ipv6_prefix` bits, written `2001:db8:1:2::/64`
      (with `ipv6_prefix=128`, the address itself); a zone (`fe80::1%eth0`) is dropped.
    - IPv4-mapped IPv6 (`::ffff:192.0.2.1`): the IPv4 address.
    - Anything that is not an IP address (a Unix socket path, an empty string): returned
      unchanged, so such clients share one key per distinct string.

    `ipv6_prefix` must be between 0 and 128 (ValueError otherwise).
    """
    if not 0 <= ipv6_prefix <= 128:
        raise ValueError(f"an IPv6 prefix length is 0 to 128, not {ipv6_prefix}")
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    mapped = address.ipv4_mapped
    if mapped is not None:
        return str(mapped)
    if address.scope_id is not None:
        address = ipaddress.IPv6Address(int(address))
    if ipv6_prefix == 128:
        return str(address)
    network = ipaddress.IPv6Network((int(address), ipv6_prefix), strict=False)
    return str(network)
