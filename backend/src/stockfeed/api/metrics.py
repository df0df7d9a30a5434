"""GET /metrics: Prometheus exposition of this process (see metrics.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from stockfeed.api.deps import services
from stockfeed.metrics import Exporter

router = APIRouter()


def _exporter(request: Request) -> Exporter:
    """One per app and services (a registry per app: apps in one process never clash)."""
    svc = services(request)
    exporter: Exporter | None = getattr(request.app.state, "metrics_exporter", None)
    if exporter is None or exporter.svc is not svc:
        exporter = Exporter(svc)
        request.app.state.metrics_exporter = exporter
    return exporter


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    body, content_type = await _exporter(request).render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
