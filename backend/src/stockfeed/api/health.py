"""GET /api/ws/health: what this process and the deployment are doing, honestly.

With auth on (or a metrics token set), only the metrics token's holder sees the tickers
being watched, host names and error texts; everyone else gets counts (api/status_view.py).
A rendered answer is reused for up to a second, except for exempt callers.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from stockfeed import __version__
from stockfeed.api.deps import services
from stockfeed.api.openapi import error_responses
from stockfeed.api.status_view import rendered, sees_details
from stockfeed.server.sink_connection import SinkConnection
from stockfeed.services import Services
from stockfeed.store import StoreUnavailable

router = APIRouter(prefix="/api", tags=["health"])


@router.get(
    "/ws/health",
    summary="Feed health: source freshness, broker, updater, clients",
    response_model=dict[str, Any],
    responses=error_responses(429, s429="`rate_limited`: too many status requests"),
)
async def health(request: Request, svc: Services = Depends(services)) -> Response:
    details = sees_details(request, svc.settings)

    async def render() -> bytes:
        body = await health_document(svc, details)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    body = await rendered(request, svc, ("health", details), render)
    return Response(body, media_type="application/json")


async def health_document(svc: Services, details: bool) -> dict[str, Any]:
    """The health answer; without `details`, no ticker names, host names or error texts."""
    source = await svc.source_status()
    broker = svc.broker.describe()
    try:
        leader = await svc.store.leader()
    except StoreUnavailable:
        leader = None
    updater = svc.updater
    is_leader = bool(updater and updater.is_leader)
    problems: list[str] = []
    if broker["state"] != "connected":
        problems.append(f"broker {broker['state']}")
    if source.get("stale"):
        problems.append("source stale")
    if svc.settings.source != "none" and source.get("leader") is None:
        problems.append("no updater")
    leader_name = svc.owner if is_leader and leader is None else leader
    updater_view: dict[str, Any] = {"is_leader": is_leader, "leader_present": bool(leader_name)}
    if details:
        updater_view = {"this_process": svc.owner, **updater_view, "leader": leader_name}
    else:
        for hidden in ("leader", "last_error"):
            source.pop(hidden, None)
        broker.pop("last_error", None)
    body: dict[str, Any] = {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "view": "full" if details else "counts",
        "version": __version__,
        "source": source,
        "broker": broker,
        "updater": updater_view,
        "connections": len(svc.hub.clients),
        "fast_path_connections": sum(1 for c in svc.hub.clients if isinstance(c, SinkConnection)),
        "conflated": svc.hub.conflated_total(),
        "slow_closed": svc.hub.slow_closed,
        "epoch": svc.hub.epoch,
        "replayed": svc.hub.replayed,
        "gaps": svc.hub.gaps,
        "duplicates": svc.hub.duplicates,
        "tickers": {
            "held": len(svc.hub.subscribers),
            "lingering": svc.hub.lingering(),
            "max": svc.hub.max_tickers,
            "evicted": svc.hub.evicted,
        },
        "history": {
            "bytes": svc.hub.history.nbytes,
            "max_bytes": svc.hub.history.max_bytes,
            "shed": svc.hub.history.shed,
        },
        "refused": dict(sorted(svc.hub.refused.items())),
        "bars": svc.hub.bars.stats(),
        "relayed": svc.hub.relayed,
        "rejected": svc.hub.rejected,
        "rest_cache": svc.answers.stats(),
        "uptime_s": round(time.time() - svc.started, 1),
    }
    if details:
        body["subscribers"] = svc.hub.subscriber_counts()
    return body
