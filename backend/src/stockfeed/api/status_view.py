"""What `/api/ws/health` and `/metrics` show to whom, and how often they are rendered.

Least exposure: both answer anyone (load balancers, Prometheus), but the detailed view,
the tickers being watched (the health's `subscribers` map, the per-ticker metric labels)
and the host names (`hostname:pid` of this process and of the updater's leader), as
well as the last error texts (they can name internal hosts), are only for:

- everyone, on a server with neither auth (`STOCKFEED_AUTH_SECRET` / a public key) nor
  a metrics token configured: a local server, open anyway;
- otherwise, a request with `Authorization: Bearer <STOCKFEED_METRICS_TOKEN>`. A JWT is
  not enough: reading what everyone watches is the operator's, not a user's.

Everyone else gets the same document with counts only (`"view": "counts"`).

Cheap per request: a render walks every connection (backlogs, fast-path count), so a
rendered body is kept RENDER_TTL seconds per view and format (api/render_cache.py), and
concurrent requests share one render: a flood of scrapes costs one render a second.
Callers exempt from the per-IP limits (loopback by default: local tools, the tests) get
a fresh render, as they skip the rate limit (api/rest_limits.py) too.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Hashable

from starlette.requests import HTTPConnection

from stockfeed.admission.auth import bearer_token
from stockfeed.config import Settings
from stockfeed.services import Services


def auth_on(settings: Settings) -> bool:
    return settings.auth_secret is not None or bool(settings.auth_public_key_file)


def sees_details(conn: HTTPConnection, settings: Settings) -> bool:
    """Whether this request gets the detailed view (see the module's docstring)."""
    token = settings.metrics_token
    if token is None:
        return not auth_on(settings)
    authorization = conn.headers.get("authorization")
    offered = bearer_token(authorization) if authorization else None
    if not offered:
        return False
    return hmac.compare_digest(offered.encode(), token.get_secret_value().encode())


def wants_fresh(conn: HTTPConnection, svc: Services) -> bool:
    """Callers exempt from the per-IP limits get a render of their own."""
    client = conn.client
    return client is not None and svc.rest_limits.exempt(client.host)


async def rendered(
    conn: HTTPConnection, svc: Services, key: Hashable, render: Callable[[], Awaitable[bytes]]
) -> bytes:
    """The body for this request: fresh for exempt callers, else at most RENDER_TTL old
    (`Services.renders`)."""
    if wants_fresh(conn, svc):
        return await render()
    return await svc.renders.get(key, render)
