"""Which `Host` names the server answers: the guard against DNS rebinding.

A page on `http://evil.example:8000` can make its own name resolve to 127.0.0.1; the
browser then sends that page's requests, and WebSocket handshakes with `Origin:
http://evil.example:8000` and `Host: evil.example:8000`, to a server on this machine.
Origin equals Host, so the Origin check (gate.py) lets it through. Only the `Host` header
gives it away: a local server has no business answering to a stranger's name.

Allowed, as Vite's dev server does it:

- always: `localhost`, any `*.localhost`, and IP literals (an IP is not a name anyone
  can re-point), and requests without `Host` (not a browser);
- each name in `allowed_hosts` (`app.example.com`; `*.example.com` or `.example.com`
  for a domain and its subdomains); `*` allows every name;
- when `allowed_hosts` is empty: only the above if the server listens on loopback only
  (`--host 127.0.0.1`, the default, `::1`, `localhost`), every name if it listens
  elsewhere (a public server is reached by names the operator chose).

Refused: HTTP 403 `host_not_allowed` with a JSON body, for plain HTTP and WebSocket
handshakes alike (server/asgi.py checks every request once, at the entry).
"""

from __future__ import annotations

import ipaddress

# Host values judged, remembered at most (then forgotten all at once): what a flood of
# made-up names can make the process hold.
_MAX_REMEMBERED = 1024


def listens_on_loopback_only(host: str) -> bool:
    """Whether the server's `--host` reaches this machine only."""
    host = host.strip().lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name of the machine (or "" / "0.0.0.0": every interface)


def host_name(header: str) -> str:
    """The name in a `Host` header: lower case, no port, no trailing dot, an IPv6
    literal without its brackets."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit():
        value = name
    return value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    def __init__(self, allowed: list[str], listen_host: str) -> None:
        self.any = "*" in allowed or (not allowed and not listens_on_loopback_only(listen_host))
        self.names = frozenset(a for a in allowed if not a.startswith(("*", ".")))
        # "*.example.com" and ".example.com": the domain itself and every subdomain.
        self.domains = tuple(
            a.lstrip("*").lstrip(".") for a in allowed if a.startswith(("*.", "."))
        )
        self._memo: dict[str, bool] = {}

    def allows(self, header: str | None) -> bool:
        if self.any or header is None:
            return True
        known = self._memo.get(header)
        if known is None:
            known = self._judge(host_name(header))
            if len(self._memo) >= _MAX_REMEMBERED:
                self._memo.clear()
            self._memo[header] = known
        return known

    def _judge(self, name: str) -> bool:
        if name == "localhost" or name.endswith(".localhost") or _is_ip(name):
            return True
        if name in self.names:
            return True
        return any(name == d or name.endswith("." + d) for d in self.domains)
