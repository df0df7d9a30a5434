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
from stockfeed.services import Services
from stockfeed.shared import StoreUnavailable

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
    stats = svc.hub.stats.snapshot(svc.hub.clients)
    body: dict[str, Any] = {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "view": "full" if details else "counts",
        "version": __version__,
        "source": source,
        "broker": broker,
        "updater": updater_view,
        "connections": stats.connections,
        "fast_path_connections": stats.fast_path_connections,
        "conflated": stats.conflated,
        "slow_closed": stats.slow_closed,
        "epoch": svc.hub.epochs.epoch,
        "replayed": stats.replayed,
        "gaps": stats.gaps,
        "duplicates": stats.duplicates,
        "tickers": {
            "held": len(svc.hub.subscribers),
            "lingering": svc.hub.room.lingering(),
            "max": svc.hub.room.max_tickers,
            "evicted": stats.evicted,
            # This process's ticker group ("K/N"), or null: it serves every ticker.
            "group": None if svc.group is None else str(svc.group),
        },
        "history": {
            "bytes": svc.hub.history.nbytes,
            "max_bytes": svc.hub.history.max_bytes,
            "shed": svc.hub.history.shed,
        },
        "refused": stats.refused,
        "bars": svc.hub.bars.stats(),
        "relayed": stats.relayed,
        "rejected": stats.rejected,
        "rest_cache": svc.answers.stats(),
        "store": store_view(svc, details),
        "uptime_s": round(time.time() - svc.started, 1),
    }
    if details:
        body["subscribers"] = svc.hub.subscriber_counts()
    store = body["store"]
    if store.get("last_error"):
        problems.append("store not writable")
        body["status"] = "degraded"
    return body


def store_view(svc: Services, details: bool) -> dict[str, Any]:
    """The market-data store: which, where (with details), whether this process writes
    it, and its writer's counts (docs/store.md)."""
    kept, keeper = svc.kept, svc.keeper
    if kept is None or keeper is None:
        return {"kind": "none"}
    view: dict[str, Any] = {"kind": kept.kind, **keeper.stats(), "history": svc.history.stats()}
    if svc.retention is not None:
        view["retention"] = svc.retention.stats()
    if details:
        from stockfeed.kept.urls import redact

        view["where"] = redact(kept.where)
    elif view.get("last_error"):
        view["last_error"] = "the store cannot be written"
    return view
