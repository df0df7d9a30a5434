"""The app in this event loop, no socket: `create_asgi` (the same entry `stockfeed serve`
runs) with its lifespan started, and WebSocket sessions driven through ASGI messages.

For the endpoint logic (admission, the receive loop, subscribe, errors and closes) where
no real socket is the point: milliseconds instead of a process start. What only a real
socket shows (uvicorn's frame limits, the fast path's sink, signals) stays in the
process tests. Connections here are the portable `QueuedConnection` (no sink extension).

A session looks like a `websockets` client to the helpers in tests/wsutil.py (`recv`,
`send`), and a close from the server raises `websockets`' `ConnectionClosed` with the
server's code in `rcvd`, as over a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, MutableMapping
from types import TracebackType
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from stockfeed.app import create_asgi
from stockfeed.config import Settings
from stockfeed.server.asgi import AsgiEntry
from stockfeed.services import Services


class Refused(Exception):
    """The app answered the handshake with a close or an HTTP response, not an accept."""

    def __init__(self, message: MutableMapping[str, Any]) -> None:
        super().__init__(message)
        self.message = message


class InProcessWebSocket:
    """One WebSocket session with the app (`async with app.connect(path) as ws`)."""

    def __init__(self, entry: AsgiEntry, scope: dict[str, Any]) -> None:
        self.entry = entry
        self.scope = scope
        self._to_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    async def _run(self) -> None:
        try:
            await self.entry(self.scope, self._to_app.get, self._from_app.put)
        finally:
            # The app returned: the connection is over (1006 if it never closed).
            self._from_app.put_nowait({"type": "app.done"})

    async def __aenter__(self) -> InProcessWebSocket:
        self._task = asyncio.create_task(self._run())
        await self._to_app.put({"type": "websocket.connect"})
        first = await asyncio.wait_for(self._from_app.get(), 10)
        if first["type"] != "websocket.accept":
            await self._finish()
            raise Refused(first)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        await self._finish()

    async def _finish(self) -> None:
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), 5)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self._to_app.put({"type": "websocket.receive", "bytes": data})
        else:
            await self._to_app.put({"type": "websocket.receive", "text": data})

    async def recv(self) -> str | bytes:
        """The next message the app sent; a close raises ConnectionClosed (its code in
        `rcvd`), as `websockets` does."""
        if self.close_code is not None:
            raise ConnectionClosedError(Close(self.close_code, ""), None)
        message = await self._from_app.get()
        kind = message["type"]
        if kind == "websocket.send":
            text = message.get("text")
            return text if text is not None else bytes(message["bytes"])
        code = int(message.get("code", 1000)) if kind == "websocket.close" else 1006
        self.close_code = code
        close = Close(code, str(message.get("reason") or ""))
        if code in (1000, 1001):
            raise ConnectionClosedOK(close, None)
        raise ConnectionClosedError(close, None)


class InProcessApp:
    """`async with InProcessApp(source="sim") as app:` the app with these settings,
    started (its lifespan: services, updater, hub) and stopped at the end."""

    def __init__(self, **settings: Any) -> None:
        self.entry = create_asgi(Settings(**settings))
        self._life: contextlib.AbstractAsyncContextManager[Any] | None = None

    @property
    def services(self) -> Services:
        svc: Services = self.entry.app.state.services
        return svc

    async def __aenter__(self) -> InProcessApp:
        app = self.entry.app
        life = self._life = app.router.lifespan_context(app)
        await life.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._life is not None
        await self._life.__aexit__(kind, exc, tb)

    def connect(
        self,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        subprotocols: list[str] | None = None,
        client: tuple[str, int] = ("127.0.0.1", 50000),
    ) -> InProcessWebSocket:
        raw_path, _, query = path.partition("?")
        scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": ("127.0.0.1", 8000),
            "client": client,
            "root_path": "",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
            ],
            "subprotocols": subprotocols or [],
            "state": {},
            "extensions": {},
        }
        return InProcessWebSocket(self.entry, scope)

    @contextlib.asynccontextmanager
    async def http(self) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client of the same app (REST, health)."""
        transport = httpx.ASGITransport(app=self.entry.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
