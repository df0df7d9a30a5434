"""The FastAPI application: routes, JSON errors, and the process's services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from stockfeed import __version__
from stockfeed.api import health, history, market, quotes, symbols, ws
from stockfeed.api import metrics as metrics_api
from stockfeed.api.rest_limits import RestRateLimit
from stockfeed.config import Settings
from stockfeed.dashboard import mount_dashboard
from stockfeed.protocol.codes import ErrorCode
from stockfeed.server.asgi import AsgiEntry
from stockfeed.server.fast_websocket import broker_batch_hooks
from stockfeed.server.gc_tuning import tune_gc
from stockfeed.services import Services
from stockfeed.spec import router as spec_router

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, server_process: bool = False) -> FastAPI:
    """`server_process`: this app is the whole process (`stockfeed serve`), so it may tune
    process-wide things such as the garbage collector (server/gc_tuning.py); tests leave it off."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = await Services.create(settings)
        app.state.services = svc
        await svc.start()
        if settings.fast_path:
            # What a read from Redis caused is written in the same loop turn.
            svc.broker.set_batch_hooks(*broker_batch_hooks())
        if server_process:
            tune_gc()
        log.info(
            "stockfeed %s ready: broker %s, source requested %s, active %s",
            __version__,
            svc.broker.kind,
            settings.source,
            "none (relay only)" if svc.source is None else svc.source.name,
        )
        try:
            yield
        finally:
            await svc.stop()

    app = FastAPI(
        title="stockfeed",
        version=__version__,
        summary="Live stock prices, pushed over WebSocket.",
        lifespan=lifespan,
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        if not isinstance(detail, dict):
            code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.HTTP_ERROR
            detail = {"code": code, "message": str(detail)}
        headers = getattr(exc, "headers", None)
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        ]
        body = {"error": {"code": ErrorCode.BAD_REQUEST, "message": "; ".join(problems)}}
        return JSONResponse(body, status_code=422)

    # Per-IP request rate of /api/* (api/rest_limits.py): refuses before routing and auth.
    app.add_middleware(RestRateLimit)
    app.include_router(health.router)
    app.include_router(quotes.router)
    app.include_router(history.router)
    app.include_router(ws.router)
    app.include_router(metrics_api.router)
    app.include_router(spec_router)
    app.include_router(market.router)
    app.include_router(symbols.router)
    # The dashboard at / (frontend/dist, or a page saying how to build it): see dashboard.py.
    mount_dashboard(app)
    return app


def create_asgi(settings: Settings | None = None, *, server_process: bool = False) -> AsgiEntry:
    """What the server runs: the app behind the WebSocket entry (server/asgi.py)."""
    settings = settings or Settings()
    return AsgiEntry(create_app(settings, server_process=server_process), settings)


def create_asgi_from_env() -> AsgiEntry:
    """Factory for uvicorn workers: each worker reads the same STOCKFEED_* environment."""
    return create_asgi(Settings(), server_process=True)
