"""Baseline peer: FastAPI + encode/broadcaster (Redis backend), the recipe as people write it.

Each WebSocket client holds its own `broadcast.subscribe(...)`; a receive task notices the
client leaving (as in broadcaster's README). Nothing tuned: this is the status quo.

    python bench/peers/broadcaster_app.py --port 8102 [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import uvicorn
from broadcaster import Broadcast
from fastapi import FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect


def create_app(redis_url: str) -> FastAPI:
    broadcast = Broadcast(redis_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await broadcast.connect()
        yield
        await broadcast.disconnect()

    app = FastAPI(lifespan=lifespan)

    async def sender(websocket: WebSocket, ticker: str) -> None:
        async with broadcast.subscribe(channel=f"market:{ticker}") as subscriber:
            async for event in subscriber:  # type: ignore[union-attr]
                await websocket.send_text(event.message)  # type: ignore[union-attr]

    async def receiver(websocket: WebSocket) -> None:
        try:
            async for _ in websocket.iter_text():
                pass
        except WebSocketDisconnect:
            pass

    @app.websocket("/ws/stocks/{ticker}")
    async def ws_stock(websocket: WebSocket, ticker: str) -> None:
        await websocket.accept()
        async with anyio.create_task_group() as tg:

            async def run_receiver() -> None:
                await receiver(websocket)
                tg.cancel_scope.cancel()

            tg.start_soon(run_receiver)
            try:
                await sender(websocket, ticker.upper())
            except (WebSocketDisconnect, RuntimeError):
                tg.cancel_scope.cancel()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--backlog", type=int, default=8192)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvicorn.run(
        create_app(args.redis),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=args.backlog,
    )


if __name__ == "__main__":
    main()
