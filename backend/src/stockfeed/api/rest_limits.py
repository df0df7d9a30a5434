"""The REST request rate per client IP: a token bucket each, 429 past it.

A pure ASGI middleware (no BaseHTTPMiddleware: no extra task or body streaming per
request) in front of the whole app. It counts only HTTP requests to `/api/`, except
`/api/ws/health`, which load balancers probe; `/metrics`, the docs and the dashboard are
not under `/api/`. Refused requests get 429, `Retry-After` and the app's JSON error body
`{"error":{"code":"rate_limited","message":...}}`, before routing and auth run.

The client IP is `scope["client"]` (the lane applies `X-Forwarded-For` from trusted
proxies first), and IPs in `limit_exempt_ips` skip the limit, as for WebSockets
(guard.py). At most MAX_TRACKED_IPS buckets are kept: many addresses evict the least
recently seen (which start with a full burst again) instead of growing memory.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections import OrderedDict

from starlette.types import ASGIApp, Receive, Scope, Send

from stockfeed.admission.gate import MAX_TRACKED_IPS
from stockfeed.admission.token_bucket import TokenBucket
from stockfeed.config import Settings

API_PREFIX = "/api/"
UNLIMITED_PATHS = frozenset({"/api/ws/health"})


class RestRateLimiter:
    """The per-IP buckets and the refusal count; one per process (`Services.rest_limits`)."""

    def __init__(self, settings: Settings) -> None:
        self.rate = settings.api_rate
        self.burst = settings.api_burst
        self.exempt_networks = [
            ipaddress.ip_network(item, strict=False) for item in settings.limit_exempt_ips
        ]
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._exempt: dict[str, bool] = {}  # per IP seen, bounded like the buckets
        self.refused = 0

    @property
    def tracked(self) -> int:
        return len(self._buckets)

    @property
    def retry_after(self) -> int:
        """Whole seconds until a refused IP has a token again (at most)."""
        return max(1, math.ceil(1.0 / self.rate))

    def exempt(self, ip: str) -> bool:
        if not self.exempt_networks:
            return False
        known = self._exempt.get(ip)
        if known is None:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                known = False
            else:
                known = any(address in net for net in self.exempt_networks)
            if len(self._exempt) >= MAX_TRACKED_IPS:
                self._exempt.clear()
            self._exempt[ip] = known
        return known

    def allow(self, ip: str) -> bool:
        if self.exempt(ip):
            return True
        bucket = self._buckets.get(ip)
        if bucket is None:
            bucket = self._buckets[ip] = TokenBucket(self.rate, self.burst)
            if len(self._buckets) > MAX_TRACKED_IPS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(ip)
        if bucket.take():
            return True
        self.refused += 1
        return False


class RestRateLimit:
    """The middleware: asks the process's RestRateLimiter (reached through the app's
    services, created at start-up) about every counted request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(API_PREFIX) and path not in UNLIMITED_PATHS:
                svc = getattr(scope["app"].state, "services", None)
                client = scope.get("client")
                if svc is not None and client is not None:
                    limiter: RestRateLimiter = svc.rest_limits
                    if not limiter.allow(client[0]):
                        await _refuse(send, limiter.retry_after)
                        return
        await self.app(scope, receive, send)


async def _refuse(send: Send, retry_after: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "rate_limited",
                "message": f"too many requests from this address; retry in {retry_after} s",
            }
        },
        separators=(",", ":"),
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
