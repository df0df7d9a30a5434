"""Who a client is, for the per-IP limits: the key it is counted under, and whether it is
exempt from them.

The address is `scope["client"]`: the peer, or, when the peer is a configured trusted
proxy, the client named in its `X-Forwarded-For` (server/forwarded.py). Such an address
arrives as a `ProxiedAddress`, and a `ProxiedAddress` is never exempt: exemption
(`limit_exempt_ips`, loopback by default: local tools and benchmarks) is a property of the
socket's own peer, and a header is only a claim. Without that rule, a client behind a
local reverse proxy sending `X-Forwarded-For: 127.0.0.1` would skip every per-IP limit.

Keys come from `client_key` (admission/ip_keys.py): an IPv6 client counts as its /64 (the
`ipv6_prefix` setting), since it can pick any address in it.
"""

from __future__ import annotations

import ipaddress

from stockfeed.admission.ip_keys import client_key
from stockfeed.config import Settings

# Exemption answers remembered per address, at most (then forgotten all at once): a flood
# from many addresses cannot grow the memo without bound.
MAX_REMEMBERED = 16_384


class ProxiedAddress(str):
    """A client address a trusted proxy gave (or a trusted proxy's own, when it named no
    client): counted like any address, never exempt."""

    __slots__ = ()


class ClientIdentity:
    """One per limiter: keys and exemption, as every per-IP limit applies them."""

    def __init__(self, exempt_ips: list[str], ipv6_prefix: int = 64) -> None:
        self.ipv6_prefix = ipv6_prefix
        self.networks = [ipaddress.ip_network(item, strict=False) for item in exempt_ips]
        self._exempt: dict[str, bool] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientIdentity:
        return cls(settings.limit_exempt_ips, settings.ipv6_prefix)

    def key(self, ip: str) -> str:
        return client_key(ip, self.ipv6_prefix)

    def exempt(self, ip: str) -> bool:
        """Whether `ip` skips the per-IP limits: the socket's own peer, in the list."""
        if not self.networks or isinstance(ip, ProxiedAddress):
            return False
        known = self._exempt.get(ip)
        if known is None:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                known = False
            else:
                known = any(address in net for net in self.networks)
            if len(self._exempt) >= MAX_REMEMBERED:
                self._exempt.clear()
            self._exempt[ip] = known
        return known
