"""The WebSocket lane: WebSocket connections skip FastAPI's per-request machinery.

Each open WebSocket keeps its ASGI call stack alive for as long as it is connected.
Through FastAPI's router that stack holds dependency-injection state, three
AsyncExitStacks and the exception-middleware frames: about 10 KiB per connection
(measured with tracemalloc), a third of all it costs. This thin ASGI wrapper sends the
two stream endpoints straight to the same handlers (`api/ws.py`) and everything else,
lifespan included, to the FastAPI app. The routes stay registered on the app too, so
the app works the same without the lane (tests, other servers).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from stockfeed.api.ws import ws_multi, ws_single

_SINGLE = "/ws/stocks/"


class WebSocketLane:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path: str = scope["path"]
            if path == "/ws" or path.startswith(_SINGLE):
                scope["app"] = self.app  # what Starlette would set: handlers reach state
                websocket = WebSocket(scope, receive, send)
                if path == "/ws":
                    await ws_multi(websocket)
                else:
                    await ws_single(websocket, path[len(_SINGLE) :])
                return
        await self.app(scope, receive, send)
