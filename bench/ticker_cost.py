"""What one held ticker costs a process in memory, with default settings.

A relay-only server (`--source none`) on the Redis broker. 200 connections subscribe to
50 tickers each (10,000 tickers, the default `max_tickers`), then every ticker gets
UPDATES contract `price_update`s (~300 B each, the size the updater writes), so each
holds a latest update and a resume ring. Prints the server's RSS before, after the
subscribes and after the updates, per ticker; then the clients leave and the tickers
linger (still held). Extra `STOCKFEED_*=value` arguments go to the server's environment:

    .venv/bin/python -m bench.ticker_cost [UPDATES] [STOCKFEED_RESUME_HISTORY=...]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
import redis.asyncio as aioredis
from stockfeed.testing.processes import StockfeedServer
from websockets.asyncio.client import ClientConnection, connect

from bench.procstat import rss_bytes
from bench.servers import BENCH

TICKERS = 10_000
PER_CONNECTION = 50  # the default max_subscriptions
LOGS = BENCH / "results" / "logs"


def update(ticker: str, seq: int) -> str:
    data = {
        "price": 123.45,
        "change": 1.23,
        "change_percent": 1.0062,
        "volume": 12_345_678,
        "open": 122.0,
        "high": 124.0,
        "low": 121.5,
        "prev_close": 122.22,
        "market_time": 1_765_000_000_000,
        "source": "bench",
        "feed": None,
        "delayed": 0,
        "session": "regular",
    }
    obj = {"type": "price_update", "ticker": ticker, "seq": seq, "timestamp": 1.0, "data": data}
    return json.dumps(obj, separators=(",", ":"))


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


async def run(updates: int, overrides: dict[str, str]) -> None:
    args = ["--source", "none", "--broker", "redis://127.0.0.1:6379/0", "--log-level", "warning"]
    server = StockfeedServer(args, LOGS / "ticker_cost.log", env=overrides).start()
    try:
        await asyncio.to_thread(server.wait_ready)
        mib = 2**20
        tag = int(time.time()) % 100_000
        tickers = [f"TC{tag}X{i}" for i in range(TICKERS)]
        await asyncio.sleep(1.0)
        base = rss_bytes([server.pid])
        print(f"server RSS at start {base / mib:,.1f} MiB")
        sockets: list[ClientConnection] = []
        for i in range(0, TICKERS, PER_CONNECTION):
            ws = await connect(f"ws://127.0.0.1:{server.port}/ws", max_size=None)
            await ws.send(
                json.dumps({"action": "subscribe", "tickers": tickers[i : i + PER_CONNECTION]})
            )
            sockets.append(ws)
        readers = [asyncio.create_task(_drain(ws)) for ws in sockets]
        async with httpx.AsyncClient(base_url=server.base) as http:
            for _ in range(100):
                health = (await http.get("/api/ws/health")).json()
                if health["tickers"]["held"] >= TICKERS:
                    break
                await asyncio.sleep(0.2)
            held = health["tickers"]["held"]
            print(f"tickers held {held:,} (refused: {health.get('refused', {})})")
            await asyncio.sleep(1.0)
            subscribed = rss_bytes([server.pid])
            redis = aioredis.Redis()
            size = 0
            for seq in range(1, updates + 1):
                pipe = redis.pipeline(transaction=False)
                for ticker in tickers:
                    text = update(ticker, seq)
                    size = len(text)
                    pipe.publish(f"market:{ticker}", text)
                await pipe.execute()
            await asyncio.sleep(3.0)
            filled = rss_bytes([server.pid])
            history = (await http.get("/api/ws/health")).json().get("history", {})
            await redis.aclose()
        for ws in sockets:
            await ws.close()
        for task in readers:
            task.cancel()
        await asyncio.sleep(2.0)
        lingering = rss_bytes([server.pid])
        per = (subscribed - base) / held
        print(f"after the subscribes: +{(subscribed - base) / mib:,.1f} MiB, {per:,.0f} B a ticker")
        per = (filled - base) / held
        print(
            f"after {updates} updates of {size} B each: +{(filled - base) / mib:,.1f} MiB, "
            f"{per:,.0f} B a ticker (resume history: {history})"
        )
        print(f"clients gone, tickers lingering: +{(lingering - base) / mib:,.1f} MiB")
    finally:
        server.stop()


def main() -> None:
    updates = 10
    overrides: dict[str, str] = {}
    for arg in sys.argv[1:]:
        if "=" in arg:
            key, _, value = arg.partition("=")
            overrides[key] = value
        else:
            updates = int(arg)
    asyncio.run(run(updates, overrides))


if __name__ == "__main__":
    main()
