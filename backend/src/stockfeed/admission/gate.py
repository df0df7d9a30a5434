"""The WebSocket gate: every check a handshake passes before it is accepted, once.

In order: the handshake rate of the client's IP, the `Origin` (against cross-site
WebSocket hijacking), the token (auth.py), the open connections of the client's IP.
Nothing here runs per message: the broadcast path never sees it.

How a refusal reaches the client (docs/protocol.md#refused-handshakes):

- HTTP before the upgrade, with a JSON body (`{"error":{"code","message"}}`): 429 for
  the handshake rate, 403 for a foreign origin, 401 for a bad token sent in the
  `Authorization` header (only non-browser clients can set that header, and they can
  read the status). Sent through the ASGI `websocket.http.response` extension; a
  server without it answers a bare 403.
- Accept, an `error` message, then a close, where a browser must learn why (it cannot
  read the status of a refused upgrade): 4401 for a missing or bad token in the
  query string or the subprotocol, 4429 for too many connections from one IP.

Limits are per process and per client IP (`scope["client"]`, which the entry point takes
from `X-Forwarded-For` when the peer is one of `trusted_proxies`, server/forwarded.py),
counted per client key (an IPv6 client as its /64, admission/ip_keys.py). Clients in
`limit_exempt_ips` (loopback by default: local tools and benchmarks) skip them, but only
as the socket's own peer: a forwarded address is never exempt (admission/identity.py).
`Host` names are checked before any of this, at the entry (admission/hosts.py).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from stockfeed import protocol
from stockfeed.admission.auth import (
    AUTH_SUBPROTOCOL,
    BEARER_CHALLENGE,
    QUERY_PARAM,
    Principal,
    Refusal,
    Verifier,
    bearer_token,
    build_verifier,
    redact_query,
)
from stockfeed.admission.identity import ClientIdentity
from stockfeed.admission.subscription_limits import SubscriptionLimits
from stockfeed.admission.token_bucket import BucketsByKey
from stockfeed.config import Settings
from stockfeed.protocol.codes import CloseCode, ErrorCode

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


class IpLimits:
    """Open connections and handshake rate per client IP (per client key)."""

    def __init__(self, settings: Settings) -> None:
        self.max_connections = settings.max_connections_per_ip
        self.rate = settings.handshake_rate
        self.burst = settings.handshake_burst
        self.identity = ClientIdentity.from_settings(settings)
        self.open: dict[str, int] = {}  # only keys with open connections: bounded by them
        self._buckets = BucketsByKey(self.rate, self.burst)

    def exempt(self, ip: str) -> bool:
        return self.identity.exempt(ip)

    def handshake_allowed(self, ip: str) -> bool:
        return self._buckets.get(self.identity.key(ip)).take()

    @property
    def retry_after(self) -> int:
        """Whole seconds until a refused IP has a handshake token again."""
        return max(1, math.ceil(1.0 / self.rate))

    def acquire(self, ip: str) -> bool:
        key = self.identity.key(ip)
        held = self.open.get(key, 0)
        if self.max_connections and held >= self.max_connections:
            return False
        self.open[key] = held + 1
        return True

    def release(self, ip: str) -> None:
        key = self.identity.key(ip)  # a key is its own key: release(key) works too
        held = self.open.get(key, 0) - 1
        if held > 0:
            self.open[key] = held
        else:
            self.open.pop(key, None)


def _host_port(netloc: str, scheme: str) -> tuple[str, int | None]:
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:
        return netloc, None
    return (parts.hostname or ""), port if port is not None else _DEFAULT_PORTS.get(scheme)


class OriginPolicy:
    """Browsers send `Origin` on every WebSocket handshake and the page cannot forge
    it. Allowed: no `Origin` at all (not a browser: curl, SDKs, servers), the server's
    own origin (its host and port equal the `Host` header: the bundled dashboard), and
    each configured origin; `*` allows every origin."""

    def __init__(self, allowed: list[str]) -> None:
        self.allow_all = "*" in allowed
        self.allowed = frozenset(allowed)

    def allows(self, origin: str | None, host: str | None) -> bool:
        if origin is None or self.allow_all:
            return True
        origin = origin.strip().lower().rstrip("/")
        if origin in self.allowed:
            return True
        scheme, sep, netloc = origin.partition("://")
        if not sep or not netloc or host is None:
            return False  # includes the opaque origin "null"
        own = _host_port(host.strip().lower(), scheme)
        return _host_port(netloc, scheme) == own and own[0] != ""


@dataclass(slots=True)
class Admission:
    """An accepted handshake: who it is, and the connection slot to give back."""

    principal: Principal | None
    slot_ip: str | None


def _offered_token(offered: list[str]) -> str | None:
    """`Sec-WebSocket-Protocol: bearer, <token>`: the entry after the marker."""
    index = offered.index(AUTH_SUBPROTOCOL)
    return offered[index + 1] if index + 1 < len(offered) else None


def _query_token(query_string: bytes) -> str | None:
    for part in query_string.split(b"&"):
        name, eq, value = part.partition(b"=")
        if eq and name == QUERY_PARAM.encode():
            # JWTs are URL-safe: no percent-decoding needed, and a token that would
            # need it is malformed anyway.
            return value.decode("latin-1")
    return None


class Gate:
    """One per process (app): the verifier, the origin policy and the IP limits."""

    def __init__(self, settings: Settings) -> None:
        self.verifier: Verifier | None = build_verifier(settings)
        self.origins = OriginPolicy(settings.allowed_origins)
        self.limits = IpLimits(settings)
        self.subscriptions = SubscriptionLimits(settings, self.limits.exempt)

    async def admit(self, websocket: WebSocket) -> Admission | None:
        """Accept the handshake and return who it is, or refuse it (the refusal is
        sent here) and return None. The caller gives the admission back with
        `release` when the connection ends."""
        scope = websocket.scope
        ip = websocket.client.host if websocket.client else ""
        exempt = self.limits.exempt(ip)
        if not exempt and not self.limits.handshake_allowed(ip):
            await deny(
                websocket,
                429,
                ErrorCode.RATE_LIMITED,
                "too many connection attempts from this address: slow down",
                {"Retry-After": str(self.limits.retry_after)},
            )
            return None
        # A Headers of our own, not `websocket.headers`: that one is cached on the
        # WebSocket and would keep the handshake's header list (~0.7 KiB) alive for the
        # connection's life after ws.py drops it from the scope.
        headers = Headers(scope=scope)
        if not self.origins.allows(headers.get("origin"), headers.get("host")):
            await deny(websocket, 403, ErrorCode.ORIGIN_NOT_ALLOWED, "this origin may not connect")
            return None
        offered: list[str] = list(scope.get("subprotocols") or ())
        # Echo the marker (never the token): a browser that offered subprotocols fails
        # a handshake whose answer names none.
        subprotocol = AUTH_SUBPROTOCOL if AUTH_SUBPROTOCOL in offered else None
        query = scope.get("query_string", b"")
        principal: Principal | None = None
        failure: Refusal | None = None
        if self.verifier is not None:
            authorization = headers.get("authorization")
            if authorization is not None:
                token = bearer_token(authorization)
                if token is None:
                    failure = Refusal(
                        ErrorCode.UNAUTHORIZED, "Authorization must be 'Bearer <token>'"
                    )
            elif subprotocol is not None:
                token = _offered_token(offered)
            else:
                token = _query_token(query)
            if failure is None:
                try:
                    if not token:
                        raise Refusal(ErrorCode.UNAUTHORIZED, "missing token")
                    principal = self.verifier.verify(token)
                except Refusal as exc:
                    failure = exc
            if failure is not None and authorization is not None:
                await deny(websocket, 401, failure.code, failure.message, BEARER_CHALLENGE)
                return None
        # uvicorn logs the path with its query string: never with the token in it.
        scope["query_string"] = redact_query(query)
        if failure is not None:
            await _accept_then_close(websocket, subprotocol, failure, CloseCode.UNAUTHORIZED)
            return None
        slot_ip: str | None = None
        if not exempt:
            if not self.limits.acquire(ip):
                message = f"at most {self.limits.max_connections} connections per address"
                refusal = Refusal(ErrorCode.TOO_MANY_CONNECTIONS, message)
                await _accept_then_close(websocket, subprotocol, refusal, CloseCode.TOO_MANY)
                return None
            slot_ip = ip
        try:
            await websocket.accept(subprotocol=subprotocol)
        except BaseException:
            if slot_ip is not None:
                self.limits.release(slot_ip)
            raise
        return Admission(principal, slot_ip)

    def release(self, admission: Admission) -> None:
        if admission.slot_ip is not None:
            self.limits.release(admission.slot_ip)
            admission.slot_ip = None


async def deny(
    websocket: WebSocket,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    log.debug("handshake refused %d %s: %s", status, code, message)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = {"error": {"code": code, "message": message}}
        await websocket.send_denial_response(JSONResponse(body, status, headers=headers))
    else:
        await websocket.close(1008)  # before accept: the server answers a bare 403


async def _accept_then_close(
    websocket: WebSocket, subprotocol: str | None, refusal: Refusal, close_code: int
) -> None:
    log.debug("connection refused %d: %s", close_code, refusal.message)
    await websocket.accept(subprotocol=subprotocol)
    await websocket.send_text(protocol.error(refusal.code, refusal.message))
    await websocket.close(close_code, refusal.message[:120])
