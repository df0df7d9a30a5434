"""Open HTTP connections per client, counted where the socket is accepted.

The WebSocket gate (admission/gate.py) caps open WebSockets per client IP, but it only
sees a connection once its handshake reaches the app. A plain HTTP connection never does,
so without this one client could hold any number of them (idle, kept alive, or trickling
a request) up to the process-wide cap, and then every other client gets 503. The count
is taken at `connection_made` from the peer address (the only address known then) and
given back when the connection closes or becomes a WebSocket (the gate counts it from
there). Keys and exemption are the other per-IP limits' (admission/identity.py): an IPv6
peer counts as its /64 (`ipv6_prefix`), addresses in `limit_exempt_ips` are not counted.

Nor are connections from a configured reverse proxy (`trusted_proxies`,
server/forwarded.py): each carries requests of many clients, which the WebSocket and REST
limits then count one by one under their `X-Forwarded-For` addresses.
"""

from __future__ import annotations

from stockfeed.admission.identity import ClientIdentity
from stockfeed.server.forwarded import TrustedProxies


class PeerCounts:
    """Per-process counts of open HTTP connections by client key."""

    __slots__ = ("cap", "identity", "open", "proxies")

    def __init__(self, cap: int, identity: ClientIdentity, proxies: TrustedProxies) -> None:
        self.cap = cap  # 0: no cap
        self.identity = identity
        self.proxies = proxies
        self.open: dict[str, int] = {}  # only keys with open connections: bounded by them

    def acquire(self, ip: str) -> tuple[str | None, bool]:
        """Count a new connection from `ip`: (the key to `release` later, or None when
        it is not counted; whether it is over the cap). A connection over the cap is
        not counted: it is refused."""
        if not self.cap or self.identity.exempt(ip) or (self.proxies and self.proxies.trusts(ip)):
            return None, False
        key = self.identity.key(ip)
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
