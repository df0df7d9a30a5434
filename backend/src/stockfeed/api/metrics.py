"""GET /metrics: Prometheus exposition of this process (see metrics.py).

With auth on (or a metrics token set), only the metrics token's holder gets the detailed
view (ticker and host names); a rendered exposition is reused for up to a second, except
for exempt callers (api/status_view.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from stockfeed.api.deps import services
from stockfeed.api.status_view import rendered, sees_details
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
    svc = services(request)
    exporter = _exporter(request)
    encode, content_type = exporter.encoder(request.headers.get("accept", ""))
    details = sees_details(request, svc.settings)
    body = await rendered(
        request,
        svc,
        ("metrics", details, content_type),
        lambda: exporter.render(encode, details),
    )
    return Response(body, media_type=content_type)
