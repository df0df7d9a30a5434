"""The REST request rate per client IP: a token bucket each, 429 past it.

A pure ASGI middleware (no BaseHTTPMiddleware: no extra task or body streaming per
request) in front of the whole app. It counts only HTTP requests to `/api/`, except
`/api/ws/health`, which load balancers probe; `/metrics`, the docs and the dashboard are
not under `/api/`. Refused requests get 429, `Retry-After` and the app's JSON error body
`{"error":{"code":"rate_limited","message":...}}`, before routing and auth run.

The client IP is `scope["client"]` (server/asgi.py applies `X-Forwarded-For` from trusted
proxies first), and IPs in `limit_exempt_ips` skip the limit, as for WebSockets
(guard.py). At most MAX_TRACKED_KEYS buckets are kept: many addresses evict the least
recently seen (which start with a full burst again) instead of growing memory.

A request costs what it asks the server to do: one token, and a history request one more
per BARS_PER_TOKEN bars its interval and range ask for (`request_cost`, known from the
query before anything is computed; 1m over 5d, 7,200 bars: 8 tokens). A flood of heavy
requests meets 429 that much sooner; a dashboard's chart (at most ~4,400 bars) stays cheap.
"""

from __future__ import annotations

import ipaddress
import json
import math
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from stockfeed.admission.token_bucket import MAX_TRACKED_KEYS, BucketsByKey
from stockfeed.config import Settings
from stockfeed.sources.base import INTERVAL_SECONDS, RANGE_DAYS, check_history_params, clamp_range

API_PREFIX = "/api/"
UNLIMITED_PATHS = frozenset({"/api/ws/health"})
HISTORY_PREFIX = "/api/history/"
# The history route's defaults (api/history.py uses these), for pricing a request.
HISTORY_DEFAULT_INTERVAL = "5m"
HISTORY_DEFAULT_RANGE = "1d"
BARS_PER_TOKEN = 1000


def request_cost(path: str, query_string: bytes) -> int:
    """Tokens a request takes: 1, plus bars // BARS_PER_TOKEN for history. A request
    the route will refuse (bad interval or range: 422) costs 1."""
    if not path.startswith(HISTORY_PREFIX) or path.count("/") != 3:
        return 1
    interval, range_ = HISTORY_DEFAULT_INTERVAL, HISTORY_DEFAULT_RANGE
    # The last value of a repeated parameter wins, as in the route.
    for name, value in parse_qsl(query_string.decode("latin-1")):
        if name == "interval":
            interval = value
        elif name == "range":
            range_ = value
    range_ = clamp_range(interval, range_)  # as the route serves it
    if check_history_params(interval, range_) is not None:
        return 1
    bars = RANGE_DAYS[range_] * 86400 // INTERVAL_SECONDS[interval]
    return 1 + bars // BARS_PER_TOKEN


class RestRateLimiter:
    """The per-IP buckets and the refusal count; one per process (`Services.rest_limits`)."""

    def __init__(self, settings: Settings) -> None:
        self.rate = settings.api_rate
        self.burst = settings.api_burst
        self.exempt_networks = [
            ipaddress.ip_network(item, strict=False) for item in settings.limit_exempt_ips
        ]
        self._buckets = BucketsByKey(self.rate, self.burst)
        self._exempt: dict[str, bool] = {}  # per IP seen, bounded like the buckets
        self.refused = 0

    @property
    def tracked(self) -> int:
        return len(self._buckets)

    @property
    def retry_after(self) -> int:
        """Whole seconds until a refused IP has a token again (at most)."""
        return self.retry_after_for(1)

    def retry_after_for(self, cost: int) -> int:
        """Whole seconds until a refused IP has `cost` tokens again (at most)."""
        return max(1, math.ceil(min(cost, self.burst) / self.rate))

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
            if len(self._exempt) >= MAX_TRACKED_KEYS:
                self._exempt.clear()
            self._exempt[ip] = known
        return known

    def allow(self, ip: str, cost: int = 1) -> bool:
        """Take `cost` tokens (at most the burst, so any request can pass) or none."""
        if self.exempt(ip):
            return True
        bucket = self._buckets.get(ip)
        cost = max(1, min(cost, self.burst))
        taken = 0
        while taken < cost and bucket.take():
            taken += 1
        if taken == cost:
            return True
        for _ in range(taken):
            bucket.give_back()
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
                    cost = request_cost(path, scope.get("query_string", b""))
                    if not limiter.allow(client[0], cost):
                        await _refuse(send, limiter.retry_after_for(cost))
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
