"""Open HTTP connections per client, counted where the socket is accepted.

The WebSocket gate (admission/gate.py) caps open WebSockets per client IP, but it only
sees a connection once its handshake reaches the app. A plain HTTP connection never does,
so without this one client could hold any number of them (idle, kept alive, or trickling
a request) up to the process-wide cap, and then every other client gets 503. The count
is taken at `connection_made` from the peer address (the only address known then) and
given back when the connection closes or becomes a WebSocket (the gate counts it from
there). IPv6 peers are counted by their /64 (admission/ip_keys.py); addresses in
`limit_exempt_ips` are not counted at all.

Behind a reverse proxy every client arrives from the proxy's address: list the proxy in
`limit_exempt_ips` (loopback is there by default), or this cap applies to all its
clients together.
"""

from __future__ import annotations

import ipaddress

from stockfeed.admission.ip_keys import client_key

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PeerCounts:
    """Per-process counts of open HTTP connections by client key."""

    __slots__ = ("_exempt_cache", "cap", "exempt_networks", "ipv6_prefix", "open")

    # Peers whose exemption was looked up, kept to skip parsing the address again on
    # every connect (a connect storm is many sockets from few addresses); emptied when
    # full, so a scan over many addresses cannot grow it.
    EXEMPT_CACHE = 4096

    def __init__(self, cap: int, exempt: tuple[Network, ...], ipv6_prefix: int = 64) -> None:
        self.cap = cap  # 0: no cap
        self.exempt_networks = exempt
        self.ipv6_prefix = ipv6_prefix
        self.open: dict[str, int] = {}  # only keys with open connections: bounded by them
        self._exempt_cache: dict[str, bool] = {}

    def exempt(self, ip: str) -> bool:
        known = self._exempt_cache.get(ip)
        if known is not None:
            return known
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            answer = False
        else:
            mapped = getattr(address, "ipv4_mapped", None)
            answer = any(
                address in net or (mapped is not None and mapped in net)
                for net in self.exempt_networks
            )
        if len(self._exempt_cache) >= self.EXEMPT_CACHE:
            self._exempt_cache.clear()
        self._exempt_cache[ip] = answer
        return answer

    def acquire(self, ip: str) -> tuple[str | None, bool]:
        """Count a new connection from `ip`: (the key to `release` later, or None when
        it is not counted; whether it is over the cap). A connection over the cap is
        not counted: it is refused."""
        if not self.cap or self.exempt(ip):
            return None, False
        key = client_key(ip, self.ipv6_prefix)
        held = self.open.get(key, 0)
        if held >= self.cap:
            return None, True
        self.open[key] = held + 1
        return key, False

    def release(self, key: str) -> None:
        held = self.open.get(key, 0) - 1
        if held > 0:
            self.open[key] = held
        else:
            self.open.pop(key, None)
