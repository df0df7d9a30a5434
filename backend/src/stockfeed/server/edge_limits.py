"""The HTTP edges' settings, as the fast path's HTTP protocol reads them (fast_http.py).

`stockfeed serve` sets them before uvicorn starts (`configure_edges`); a worker process,
started by uvicorn with the parent's settings in its environment, reads them from there
on first use. docs/protocol.md#http-limits says what each one answers.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stockfeed.admission.identity import ClientIdentity
from stockfeed.server.forwarded import TrustedProxies
from stockfeed.server.http_peers import PeerCounts

if TYPE_CHECKING:
    from stockfeed.config import Settings


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """config.py `http_header_timeout` ... `max_open_connections`, and the phase
    deadlines and per-IP cap of the block after them."""

    header_timeout: float = 10.0
    max_url: int = 8192
    max_header_bytes: int = 16384
    max_headers: int = 100
    max_connections: int = 0  # 0: no cap
    body_timeout: float = 10.0
    write_timeout: float = 10.0
    upgrade_timeout: float = 10.0
    max_per_ip: int = 0  # 0: no cap
    exempt_ips: tuple[str, ...] = ()
    ipv6_prefix: int = 64
    trusted_proxies: tuple[str, ...] = ()

    @property
    def head_cap(self) -> int:
        """Raw bytes of a request head still unfinished past which it cannot be within
        the limits. httptools keeps a header line it has not seen the end of to itself
        (`on_header` comes with the whole line), so this is what bounds that."""
        return self.max_url + self.max_header_bytes + 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            header_timeout=settings.http_header_timeout,
            max_url=settings.max_url_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_header_count,
            max_connections=connection_cap(settings.max_open_connections),
            body_timeout=settings.http_body_timeout,
            write_timeout=settings.http_write_timeout,
            upgrade_timeout=settings.http_upgrade_timeout,
            max_per_ip=settings.max_http_connections_per_ip,
            exempt_ips=tuple(settings.limit_exempt_ips),
            ipv6_prefix=settings.ipv6_prefix,
            trusted_proxies=tuple(settings.trusted_proxies),
        )


def connection_cap(wanted: int) -> int:
    """`max_open_connections` (0: none), lowered to 90 % of this process's open-files
    limit: past that limit the kernel's accept fails and the client only sees a reset,
    and the connections refused with 503 need descriptors too."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    room = max(1, soft - max(128, soft // 10))
    return room if wanted == 0 or wanted > room else wanted


_edges: EdgeLimits | None = None
_peers: PeerCounts | None = None


def configure_edges(limits: EdgeLimits | None) -> None:
    """Set by `stockfeed serve` before uvicorn starts; a worker process reads its
    settings from the environment the parent filled in (cli.py) instead, as does the
    next connection after `configure_edges(None)`."""
    global _edges, _peers
    _edges = limits
    _peers = None


def edges() -> EdgeLimits:
    global _edges
    if _edges is None:
        from stockfeed.config import Settings

        _edges = EdgeLimits.from_settings(Settings())
    return _edges


def peers() -> PeerCounts:
    """The process's open HTTP connections per client (http_peers.py)."""
    global _peers
    if _peers is None:
        limits = edges()
        _peers = PeerCounts(
            limits.max_per_ip,
            ClientIdentity(list(limits.exempt_ips), limits.ipv6_prefix),
            TrustedProxies(list(limits.trusted_proxies)),
        )
    return _peers
