"""The ASGI entry point uvicorn runs: WebSocket connections skip FastAPI's per-request
machinery, everything else goes to the FastAPI app.

Each open WebSocket keeps its ASGI call stack alive for as long as it is connected.
Through FastAPI's router that stack holds dependency-injection state, three
AsyncExitStacks and the exception-middleware frames: a large share of what a connection
costs (docs/performance.md). This thin ASGI wrapper sends the
two stream endpoints straight to the same handlers (`api/ws.py`) and everything else,
lifespan included, to the FastAPI app. The routes stay registered on the app too, so
the app works the same without this entry point (tests, other servers).

The entry point also applies `X-Forwarded-For` / `X-Forwarded-Proto` from trusted proxies
itself (uvicorn's `proxy_headers` is off): uvicorn's ProxyHeadersMiddleware is an
`async def` around the app, so its frame (~0.3 KiB) would stay on every connection's
stack. For WebSockets it runs that same middleware around an empty app just to
rewrite the scope, then returns the handler's coroutine, leaving no frame of either
behind. HTTP requests go through the middleware as before.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from stockfeed.api.ws import ws_multi, ws_single

_SINGLE = "/ws/stocks/"


# How uvicorn must run the lane: it applies X-Forwarded-* itself, and its `__call__` is a
# plain function returning an awaitable, which uvicorn's auto-detection takes for ASGI2.
UVICORN_OPTIONS: dict[str, Any] = {"interface": "asgi3", "proxy_headers": False}


def trusted_proxies() -> str:
    """uvicorn's own default and variable for which peers may set X-Forwarded-*."""
    return os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


class AsgiEntry:
    """Run it under uvicorn with `UVICORN_OPTIONS`."""

    def __init__(self, app: FastAPI, trusted: str | None = None) -> None:
        self.app = app
        # uvicorn and Starlette spell the ASGI types differently; the middleware is plain ASGI3.
        trusted = trusted or trusted_proxies()
        proxied = ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=trusted)
        self._rewrite: Any = ProxyHeadersMiddleware(cast(Any, _rewritten), trusted_hosts=trusted)
        self._http: Callable[[Scope, Receive, Send], Awaitable[None]] = cast(Any, proxied)

    @property
    def state(self) -> Any:
        return self.app.state

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket":
            path: str = scope["path"]
            if path == "/ws" or path.startswith(_SINGLE):
                self._forwarded(scope)
                scope["app"] = self.app  # what Starlette would set: handlers reach state
                websocket = WebSocket(scope, receive, send)
                if path == "/ws":
                    return ws_multi(websocket)
                return ws_single(websocket, path[len(_SINGLE) :])
        return self._http(scope, receive, send)

    def _forwarded(self, scope: Scope) -> None:
        """ProxyHeadersMiddleware's own rewrite of a WebSocket scope, run to completion
        here around an app that does nothing, so no frame of it stays on the stack."""
        step = self._rewrite(scope, None, None)  # the empty app reads neither
        try:
            step.send(None)
        except StopIteration:
            return
        step.close()
        raise RuntimeError("uvicorn's ProxyHeadersMiddleware now awaits: see server/asgi.py")


async def _rewritten(scope: Any, receive: Any, send: Any) -> None:
    """The app behind the rewrite-only middleware: the scope is all that was wanted."""
