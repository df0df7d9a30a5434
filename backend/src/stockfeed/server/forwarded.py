"""`X-Forwarded-For` and `X-Forwarded-Proto`, believed only from configured proxies.

A header is a claim anyone can make; only a reverse proxy the operator named
(`trusted_proxies`: addresses or networks, `*` for every peer; empty by default) may
say who the client is. From such a peer:

- the client is the last `X-Forwarded-For` entry that is not itself a trusted proxy
  (each proxy appends the address it saw, so entries to the left of it are what the
  client claimed); with `*`, the last entry (what the proxy in front of us saw);
- `X-Forwarded-Proto` (`http`, `https`, `ws`, `wss`) sets the scheme;
- the client address is a `ProxiedAddress`, so it is never exempt from the per-IP limits
  (admission/identity.py), whatever it says; so is the proxy's own address when its
  `X-Forwarded-For` names no usable client (empty, malformed). A request from the proxy
  without `X-Forwarded-For` (its own health check, say) is the peer's, as from anyone.

`apply` rewrites the ASGI scope in place and returns: the entry point (server/asgi.py)
calls it before handing the scope on, so nothing of it stays on a connection's stack.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from stockfeed.admission.identity import ProxiedAddress

_SCHEMES = {b"http": "http", b"https": "https", b"ws": "http", b"wss": "https"}
# Trust answers remembered per peer address, at most (then forgotten all at once).
_MAX_REMEMBERED = 4096


def _address(entry: str) -> str | None:
    """The IP address of one `X-Forwarded-For` entry (`ip`, `ip:port`, `[v6]:port`)."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1:].partition("]")[0]
    elif entry.count(":") == 1:
        entry = entry.partition(":")[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, entries: list[str]) -> None:
        self.everyone = "*" in entries
        self.networks = [ipaddress.ip_network(e, strict=False) for e in entries if e != "*"]
        self._memo: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def trusts(self, host: str) -> bool:
        if self.everyone:
            return True
        known = self._memo.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                known = False
            else:
                known = any(address in net for net in self.networks)
            if len(self._memo) >= _MAX_REMEMBERED:
                self._memo.clear()
            self._memo[host] = known
        return known

    def client(self, forwarded_for: str) -> str | None:
        """The client a trusted peer's `X-Forwarded-For` names, or None (malformed)."""
        entries = forwarded_for.split(",")
        if self.everyone:
            return _address(entries[-1])
        for entry in reversed(entries):
            address = _address(entry)
            if address is None or not self.trusts(address):
                return address
        return _address(entries[0])  # a chain of our own proxies: the first one

    def apply(self, scope: Any) -> None:
        """Rewrite `scope["client"]` and `scope["scheme"]` when the peer is trusted."""
        if not self:
            return
        peer = scope.get("client")
        if not peer or not self.trusts(peer[0]):
            return
        forwarded: list[bytes] = []
        proto: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded.append(value)
            elif name == b"x-forwarded-proto":
                proto = value
        if proto is not None:
            scheme = _SCHEMES.get(proto.strip().lower())
            if scheme is not None:
                ws = scope["type"] == "websocket"
                scope["scheme"] = scheme.replace("http", "ws") if ws else scheme
        if not forwarded:
            return
        client = self.client(b",".join(forwarded).decode("latin-1"))
        if client is None:
            scope["client"] = (ProxiedAddress(peer[0]), peer[1])
        else:
            scope["client"] = (ProxiedAddress(client), 0)
