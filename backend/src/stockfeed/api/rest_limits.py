"""The REST request rate per client IP: a token bucket each, 429 past it.

A pure ASGI middleware (no BaseHTTPMiddleware: no extra task or body streaming per
request) in front of the whole app. Two budgets per client:

- requests to `/api/` (but `/api/ws/health`): a bucket of `api_burst` refilled at
  `api_rate` a second, each request taking what it costs (below);
- requests to the status endpoints, `/api/ws/health` and `/metrics`: a bucket of their
  own (`status_burst`, `status_rate`), so load balancers and scrapers never spend a
  dashboard's budget, and a flood of them meets 429 too.

The docs and the dashboard are not counted. Refused requests get 429, `Retry-After` and
the app's JSON error body `{"error":{"code":"rate_limited","message":...}}`, before
routing and auth run.

The client IP is `scope["client"]` (server/forwarded.py applies `X-Forwarded-For` from
trusted proxies first), counted under its client key (an IPv6 client as its /64), and
IPs in `limit_exempt_ips` skip both budgets unless forwarded (admission/identity.py).
At most MAX_TRACKED_KEYS buckets are kept: many addresses evict the least recently
seen (which start with a full burst again) instead of growing memory.

A request costs what it asks the server to do, known from the query before anything is
computed: one token, and a history request one more per TOKEN_WORK units of the work its
answer takes (`history_work`). That work is the source bars read and aggregated (one
unit per one-minute bar the range spans: the simulator builds every day of the range
from its minutes, whatever the interval) plus the answer's bars drawn and encoded
(ANSWER_BAR_WORK units each). So `1d` over `1y` (527,040 minutes for 366 bars, ~100 ms
of CPU) costs 22 tokens, `1m` over `5d` (7,200 minutes and bars) 5, a dashboard's `1m`
over `1d` 1: a flood of heavy requests meets 429 in proportion to what it costs.
"""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from stockfeed.admission.identity import ClientIdentity
from stockfeed.admission.token_bucket import BucketsByKey
from stockfeed.config import Settings
from stockfeed.sources.base import INTERVAL_SECONDS, RANGE_DAYS, check_history_params, clamp_range

API_PREFIX = "/api/"
# Counted in the status budget, not the API's.
STATUS_PATHS = frozenset({"/api/ws/health", "/metrics"})
HISTORY_PREFIX = "/api/history/"
# The history route's defaults (api/history.py uses these), for pricing a request.
HISTORY_DEFAULT_INTERVAL = "5m"
HISTORY_DEFAULT_RANGE = "1d"
# Work units (see the module's docstring): a one-minute source bar read and aggregated is
# one; drawing and encoding a bar of the answer costs about 13 of them (measured on the
# simulator: ~0.19 us a source minute, ~2.5 us an answer bar); a token is ~5 ms of CPU.
MINUTES_PER_DAY = 1440
ANSWER_BAR_WORK = 13
TOKEN_WORK = 25_000


def history_work(interval: str, range_: str) -> int:
    """Work units of a history answer (a valid, clamped interval and range)."""
    days = RANGE_DAYS[range_]
    bars = days * 86400 // INTERVAL_SECONDS[interval]
    return days * MINUTES_PER_DAY + ANSWER_BAR_WORK * bars


def request_cost(path: str, query_string: bytes) -> int:
    """Tokens a request takes: 1, plus history_work // TOKEN_WORK for history. A request
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
    return 1 + history_work(interval, range_) // TOKEN_WORK


class RestRateLimiter:
    """The per-IP buckets and the refusal count; one per process (`Services.rest_limits`)."""

    def __init__(self, settings: Settings) -> None:
        self.rate = settings.api_rate
        self.burst = settings.api_burst
        self.identity = ClientIdentity.from_settings(settings)
        self._buckets = BucketsByKey(self.rate, self.burst)
        self.status_rate = settings.status_rate
        self.status_burst = settings.status_burst
        self._status_buckets = BucketsByKey(self.status_rate, self.status_burst)
        self.refused = 0
        self.status_refused = 0

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

    @property
    def status_retry_after(self) -> int:
        return max(1, math.ceil(1 / self.status_rate))

    def exempt(self, ip: str) -> bool:
        return self.identity.exempt(ip)

    def allow(self, ip: str, cost: int = 1) -> bool:
        """Take `cost` tokens (at most the burst, so any request can pass) or none."""
        if self.exempt(ip):
            return True
        bucket = self._buckets.get(self.identity.key(ip))
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

    def allow_status(self, ip: str) -> bool:
        """One request to /api/ws/health or /metrics."""
        if self.exempt(ip) or self._status_buckets.get(self.identity.key(ip)).take():
            return True
        self.status_refused += 1
        return False


class RestRateLimit:
    """The middleware: asks the process's RestRateLimiter (reached through the app's
    services, created at start-up) about every counted request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            status = path in STATUS_PATHS
            if status or path.startswith(API_PREFIX):
                svc = getattr(scope["app"].state, "services", None)
                client = scope.get("client")
                if svc is not None and client is not None:
                    limiter: RestRateLimiter = svc.rest_limits
                    if status:
                        if not limiter.allow_status(client[0]):
                            await _refuse(send, limiter.status_retry_after)
                            return
                    else:
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
