"""The ASGI entry point uvicorn runs: WebSocket connections skip FastAPI's per-request
machinery, everything else goes to the FastAPI app.

Each open WebSocket keeps its ASGI call stack alive for as long as it is connected.
Through FastAPI's router that stack holds dependency-injection state, three
AsyncExitStacks and the exception-middleware frames: a large share of what a connection
costs (docs/performance.md). This thin ASGI wrapper sends the
two stream endpoints straight to the same handlers (`api/ws.py`) and everything else,
lifespan included, to the FastAPI app. The routes stay registered on the app too, so
the app works the same without this entry point (tests, other servers).

Before that, for every HTTP request and WebSocket handshake, the entry does the two
checks that belong to the served process rather than to the app, each a plain call that
returns before the handler starts (so, as for the handlers, no frame of it stays on a
connection's stack):

- `X-Forwarded-For` / `X-Forwarded-Proto` are applied from `trusted_proxies` only
  (server/forwarded.py; uvicorn's `proxy_headers` is off, and its middleware, an
  `async def` around the app, would leave a frame on every connection);
- the `Host` name must be one the server answers (admission/hosts.py: DNS rebinding);
  else HTTP 403 `host_not_allowed`, to a WebSocket handshake too. A request a trusted
  proxy forwarded (with `X-Forwarded-For`) is not checked: the proxy chose this server
  by name already.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from stockfeed.admission.gate import deny
from stockfeed.admission.hosts import HostPolicy
from stockfeed.admission.identity import ProxiedAddress
from stockfeed.api.ws import ws_multi, ws_single
from stockfeed.config import Settings
from stockfeed.protocol.codes import ErrorCode
from stockfeed.server.forwarded import TrustedProxies

log = logging.getLogger(__name__)

_SINGLE = "/ws/stocks/"
HOST_REFUSAL = "this server does not answer to this host name (allowed_hosts)"
_HOST_BODY = json.dumps(
    {"error": {"code": ErrorCode.HOST_NOT_ALLOWED.value, "message": HOST_REFUSAL}},
    separators=(",", ":"),
).encode()


# How uvicorn must run the lane: it applies X-Forwarded-* itself, and its `__call__` is a
# plain function returning an awaitable, which uvicorn's auto-detection takes for ASGI2.
UVICORN_OPTIONS: dict[str, Any] = {"interface": "asgi3", "proxy_headers": False}


class AsgiEntry:
    """Run it under uvicorn with `UVICORN_OPTIONS`."""

    def __init__(self, app: FastAPI, settings: Settings | None = None) -> None:
        self.app = app
        settings = settings or Settings()
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.hosts = HostPolicy(settings.allowed_hosts, settings.host)
        if os.environ.get("FORWARDED_ALLOW_IPS") and not self.proxies:
            log.warning(
                "FORWARDED_ALLOW_IPS is uvicorn's and is ignored here: name the proxies whose "
                "X-Forwarded-For is believed in STOCKFEED_TRUSTED_PROXIES (--trusted-proxies)"
            )

    @property
    def state(self) -> Any:
        return self.app.state

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        kind = scope["type"]
        if kind == "lifespan":
            return self.app(scope, receive, send)
        self.proxies.apply(scope)
        if not self.hosts.any and not self._host_allowed(scope):
            return _refuse_host(scope, receive, send)
        if kind == "websocket":
            path: str = scope["path"]
            if path == "/ws" or path.startswith(_SINGLE):
                scope["app"] = self.app  # what Starlette would set: handlers reach state
                websocket = WebSocket(scope, receive, send)
                if path == "/ws":
                    return ws_multi(websocket)
                return ws_single(websocket, path[len(_SINGLE) :])
        return self.app(scope, receive, send)

    def _host_allowed(self, scope: Scope) -> bool:
        client = scope.get("client")
        if client and isinstance(client[0], ProxiedAddress):
            return True
        for name, value in scope["headers"]:
            if name == b"host":
                return self.hosts.allows(value.decode("latin-1"))
        return True  # no Host: not a browser


async def _refuse_host(scope: Scope, receive: Receive, send: Send) -> None:
    log.debug("refused host %r", next((v for n, v in scope["headers"] if n == b"host"), None))
    if scope["type"] == "websocket":
        await deny(WebSocket(scope, receive, send), 403, ErrorCode.HOST_NOT_ALLOWED, HOST_REFUSAL)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_HOST_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _HOST_BODY})
