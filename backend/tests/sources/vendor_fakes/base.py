"""What every fake vendor shares: a real WebSocket server on a free port (asyncio and the
`websockets` package), REST answers on the same port, and the faults every vendor has.

A fake is the vendor as its documentation describes it, nothing more: each vendor module
builds its frames from the documented examples (each with a comment naming where it was
copied from) and changes only the values of documented fields (a symbol, a price, a time),
never adds a field. It runs in the test's event loop; the real plugin (in-process, or
inside a `stockfeed serve` process) reaches it over a real socket.

Faults: refuse upgrades with an HTTP status (a 429 storm, a 403), close every socket with
a code (a clean 1000/1001, or a drop), stop the server (shutdown) and start it again on
the same port, go mute (stop sending data while the socket stays up).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

# The fake's own socket logger: quiet, so that a test reading the logs for a key reads
# what stockfeed logged, not the fake vendor's record of the requests it was sent.
_fake_log = logging.getLogger("vendor_fakes")
_fake_log.setLevel(logging.INFO)

RestHandler = Callable[[dict[str, list[str]], Headers], tuple[int, Any]]


class FakeVendor:
    def __init__(self) -> None:
        self.port = 0
        self.server: Server | None = None
        self.sockets: set[ServerConnection] = set()
        self.connections = 0  # WebSocket sessions accepted, ever
        self.upgrades = 0  # upgrade requests seen (refused ones included)
        self.max_open = 0  # most sockets open at once
        self.received: list[Any] = []  # every client message, decoded
        self.rest_calls: list[str] = []  # paths of REST requests
        self.refusals: list[tuple[int, dict[str, str]]] = []  # next upgrades to refuse
        self.routes: dict[str, RestHandler] = {}  # path prefix -> handler
        self.muted = False

    # -- life -------------------------------------------------------------------------

    async def start(self, port: int = 0) -> FakeVendor:
        self.server = await serve(
            self._session,
            "127.0.0.1",
            port or self.port,
            process_request=self._http,
            ping_interval=None,
            compression=None,
            logger=_fake_log,
            # A REST answer's connection is held until the client closes it, up to this:
            # the sources' HTTP clients keep theirs alive, and `stop` would wait it out.
            close_timeout=1.0,
        )
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        return self

    async def stop(self, code: int = 1001, reason: str = "going away") -> None:
        """Shut the server down: every socket closed with `code`, no new ones."""
        if self.server is None:
            return
        await self.close_all(code, reason)
        self.server.close()
        await self.server.wait_closed()
        self.server = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def close_all(self, code: int = 1000, reason: str = "") -> None:
        """Close every socket with a WebSocket close `code` (1006: drop the TCP connection
        without a close frame)."""
        for ws in list(self.sockets):
            if code == 1006:
                ws.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await ws.close(code, reason)

    def refuse_next(self, status: int, count: int = 1, **headers: str) -> None:
        """The next `count` upgrades get this HTTP status instead (with these headers)."""
        self.refusals += [(status, {k.replace("_", "-"): v for k, v in headers.items()})] * count

    # -- the wire ------------------------------------------------------------------------

    async def _http(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return self._rest(path, request.headers)
        self.upgrades += 1
        if self.refusals:
            status, headers = self.refusals.pop(0)
            body = json.dumps({"message": f"refused with {status} by the test"}).encode()
            return Response(
                status,
                "Refused",
                Headers([("Content-Type", "application/json"), *headers.items()]),
                body,
            )
        return self.upgrade(path, request.headers)

    def upgrade(self, path: str, headers: Headers) -> Response | None:
        """A vendor's say on an upgrade request (None: accept)."""
        return None

    def _rest(self, target: str, headers: Headers) -> Response:
        parts = urlsplit(target)
        self.rest_calls.append(parts.path)
        for prefix, handler in sorted(self.routes.items(), key=lambda kv: -len(kv[0])):
            if parts.path.startswith(prefix):
                status, body = handler({"path": [parts.path], **parse_qs(parts.query)}, headers)
                return Response(
                    status,
                    "OK" if status == 200 else "Error",
                    Headers([("Content-Type", "application/json")]),
                    json.dumps(body).encode(),
                )
        return Response(404, "Not Found", Headers([]), b'{"message":"not found"}')

    async def _session(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.sockets.add(ws)
        self.max_open = max(self.max_open, len(self.sockets))
        try:
            await self.session(ws)
        finally:
            self.sockets.discard(ws)

    async def session(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    async def send(self, ws: ServerConnection, message: object) -> None:
        with contextlib.suppress(Exception):
            await ws.send(json.dumps(message, separators=(",", ":")))


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0) -> None:
    """Wait until `check()` holds (polled), or fail with the timeout."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)
