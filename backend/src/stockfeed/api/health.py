"""GET /api/ws/health: what this process and the deployment are doing, honestly."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends

from stockfeed import __version__
from stockfeed.api.deps import services
from stockfeed.api.openapi import error_responses
from stockfeed.server.sink_connection import SinkConnection
from stockfeed.services import Services
from stockfeed.store import StoreUnavailable

router = APIRouter(prefix="/api", tags=["health"])


@router.get(
    "/ws/health",
    summary="Feed health: source freshness, broker, updater, clients",
    responses=error_responses(),
)
async def health(svc: Services = Depends(services)) -> dict[str, Any]:
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
    return {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "version": __version__,
        "source": source,
        "broker": broker,
        "updater": {
            "this_process": svc.owner,
            "is_leader": is_leader,
            "leader": svc.owner if is_leader and leader is None else leader,
        },
        "connections": len(svc.hub.clients),
        "fast_path_connections": sum(1 for c in svc.hub.clients if isinstance(c, SinkConnection)),
        "conflated": svc.hub.conflated_total(),
        "slow_closed": svc.hub.slow_closed,
        "epoch": svc.hub.epoch,
        "replayed": svc.hub.replayed,
        "gaps": svc.hub.gaps,
        "duplicates": svc.hub.duplicates,
        "subscribers": svc.hub.subscriber_counts(),
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
