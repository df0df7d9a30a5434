"""uvicorn with stockfeed's protocol classes, in the test's own event loop: for what a test
must see from inside the server process (its objects, its flusher), over real sockets.

    async with serve_in_loop(accepting) as port: ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from tests.servers import free_port


async def accepting(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app that accepts every WebSocket and holds it until the client leaves."""
    if await lifespan(scope, receive, send):
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def lifespan(scope: Any, receive: Any, send: Any) -> bool:
    """Answer the lifespan protocol when that is what `scope` is; True when it was."""
    if scope["type"] != "lifespan":
        return False
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})
    return True


@contextlib.asynccontextmanager
async def serve_in_loop(app: Any, **config: Any) -> AsyncIterator[int]:
    """Serve `app` on a free port until the block ends; yields the port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            port=port,
            http="stockfeed.server.fast_http:FastHttpProtocol",
            ws="stockfeed.server.fast_websocket:FastWebSocketProtocol",
            log_level="warning",
            lifespan="on",
            **config,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
