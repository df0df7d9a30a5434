"""Baseline peer: FastAPI + ONE shared redis.asyncio pub/sub per process.

The usual better recipe: one Redis subscription per ticker shared by all local clients, a
reader task that puts each message on every subscriber's bounded queue, and one writer task
per connection, so the broadcast never waits on a single client's send.

    python bench/peers/shared_sub_app.py --port 8103 [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, WebSocket
from redis import asyncio as aioredis
from starlette.websockets import WebSocketDisconnect

QUEUE_SIZE = 1024
PREFIX = "market:"


class Relay:
    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.subscribers: dict[str, set[asyncio.Queue[str]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def subscribe(self, ticker: str, queue: asyncio.Queue[str]) -> None:
        subs = self.subscribers.get(ticker)
        if subs is None:
            subs = self.subscribers[ticker] = set()
            subs.add(queue)
            await self.pubsub.subscribe(PREFIX + ticker)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read())
        else:
            subs.add(queue)

    async def unsubscribe(self, ticker: str, queue: asyncio.Queue[str]) -> None:
        subs = self.subscribers.get(ticker)
        if subs is None:
            return
        subs.discard(queue)
        if not subs:
            del self.subscribers[ticker]
            await self.pubsub.unsubscribe(PREFIX + ticker)

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] != "message":
                continue
            subs = self.subscribers.get(message["channel"].decode()[len(PREFIX) :])
            if not subs:
                continue
            text = message["data"].decode()
            for queue in subs:
                with contextlib.suppress(asyncio.QueueFull):  # a slow client skips
                    queue.put_nowait(text)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()


def create_app(redis_url: str) -> FastAPI:
    relay = Relay(redis_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await relay.pubsub.connect()  # type: ignore[no-untyped-call]  # before any client: concurrent first subscribes race
        yield
        await relay.close()

    app = FastAPI(lifespan=lifespan)

    async def writer(websocket: WebSocket, queue: asyncio.Queue[str]) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                await websocket.send_text(await queue.get())

    @app.websocket("/ws/stocks/{ticker}")
    async def ws_stock(websocket: WebSocket, ticker: str) -> None:
        await websocket.accept()
        name = ticker.upper()
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        send_task = asyncio.create_task(writer(websocket, queue))
        await relay.subscribe(name, queue)
        try:
            async for _ in websocket.iter_text():
                pass
        except WebSocketDisconnect:
            pass
        finally:
            send_task.cancel()
            await relay.unsubscribe(name, queue)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8103)
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
