"""Baseline peer: a picows (Cython) WebSocket server relaying redis.asyncio pub/sub, on uvloop.

One Redis subscription per ticker shared by every local client; each message is sent with
`transport.send` to every subscriber of its ticker (picows frames it per client).

    python bench/peers/picows_server.py --port 8104 [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import signal

import uvloop
from picows import (
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    ws_create_server,
)
from redis import asyncio as aioredis

PREFIX = b"market:"
PATH = re.compile(rb"^/ws/stocks/([A-Za-z0-9.\-=^]{1,15})$")


class Relay:
    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.subscribers: dict[bytes, set[WSTransport]] = {}
        self._reader: asyncio.Task[None] | None = None

    def add(self, ticker: bytes, transport: WSTransport) -> None:
        subs = self.subscribers.get(ticker)
        if subs is None:
            self.subscribers[ticker] = {transport}
            asyncio.get_running_loop().create_task(self._subscribe(ticker))
        else:
            subs.add(transport)

    def remove(self, ticker: bytes, transport: WSTransport) -> None:
        subs = self.subscribers.get(ticker)
        if subs is None:
            return
        subs.discard(transport)
        if not subs:
            del self.subscribers[ticker]
            asyncio.get_running_loop().create_task(self._unsubscribe(ticker))

    async def _subscribe(self, ticker: bytes) -> None:
        await self.pubsub.subscribe(PREFIX + ticker)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read())

    async def _unsubscribe(self, ticker: bytes) -> None:
        await self.pubsub.unsubscribe(PREFIX + ticker)

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] != "message":
                continue
            subs = self.subscribers.get(message["channel"][len(PREFIX) :])
            if not subs:
                continue
            data = message["data"]
            for transport in subs:
                transport.send(WSMsgType.TEXT, data)


class Client(WSListener):
    def __init__(self, relay: Relay, ticker: bytes) -> None:
        self.relay = relay
        self.ticker = ticker

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.relay.add(self.ticker, transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.relay.remove(self.ticker, transport)


async def serve(host: str, port: int, redis_url: str, backlog: int) -> None:
    relay = Relay(redis_url)
    await relay.pubsub.connect()  # type: ignore[no-untyped-call]  # before any client: concurrent first subscribes race

    def route(request: WSUpgradeRequest) -> Client | None:
        match = PATH.match(request.path)
        return Client(relay, match.group(1).upper()) if match else None

    server = await ws_create_server(route, host, port, backlog=backlog)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"picows listening on {host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8104)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--backlog", type=int, default=8192)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(serve(args.host, args.port, args.redis, args.backlog))


if __name__ == "__main__":
    main()
