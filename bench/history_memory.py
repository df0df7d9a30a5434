"""Resume history's memory: 10 tickers, 50 updates/s each, ~4 KB messages, 45 s.

A relay-only server (`--source none`) on the Redis broker, one client holding the ten
tickers (the hub keeps history only for tickers it relays), contract `price_update`s
published on `market:{T}`. Prints the server's RSS before and at its peak, and what its
health says of the history's bytes against its budget. Extra `STOCKFEED_*=value`
arguments go to the server's environment:

    .venv/bin/python -m bench.history_memory [STOCKFEED_RESUME_HISTORY_BYTES=...]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
import redis.asyncio as aioredis
from stockfeed.testing.processes import StockfeedServer
from websockets.asyncio.client import connect

from bench.procstat import rss_bytes
from bench.servers import BENCH

TICKERS = 10
RATE = 500  # messages/s, all tickers together
SECONDS = 45.0
PAD = "x" * 3800  # ~3.9 KB per message
LOGS = BENCH / "results" / "logs"


def rss_mib(pid: int) -> float:
    return rss_bytes([pid]) / 2**20


async def run(overrides: dict[str, str]) -> None:
    args = ["--source", "none", "--broker", "redis://127.0.0.1:6379/0", "--log-level", "warning"]
    server = StockfeedServer(args, LOGS / "history_memory.log", env=overrides).start()
    port, base_url = server.port, server.base
    try:
        await asyncio.to_thread(server.wait_ready)
        tag = int(time.time()) % 100_000
        tickers = [f"HM{tag}X{i}" for i in range(TICKERS)]
        redis = aioredis.Redis()
        async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
            await ws.send(json.dumps({"action": "subscribe", "tickers": tickers}))
            received = 0

            async def read() -> None:
                nonlocal received
                async for _ in ws:
                    received += 1

            reader = asyncio.create_task(read())
            await asyncio.sleep(1.0)
            base = peak = rss_mib(server.pid)
            seq = dict.fromkeys(tickers, 0)
            start = time.monotonic()
            sent = 0
            size = 0
            while time.monotonic() - start < SECONDS:
                pipe = redis.pipeline(transaction=False)
                for ticker in tickers:
                    seq[ticker] += 1
                    text = json.dumps(
                        {
                            "type": "price_update",
                            "ticker": ticker,
                            "seq": seq[ticker],
                            "timestamp": time.time() * 1000,
                            "data": {"price": 1.0, "pad": PAD},
                        },
                        separators=(",", ":"),
                    )
                    size = len(text)
                    pipe.publish(f"market:{ticker}", text)
                await pipe.execute()
                sent += len(tickers)
                await asyncio.sleep(max(0.0, start + sent / RATE - time.monotonic()))
                peak = max(peak, rss_mib(server.pid))
            await asyncio.sleep(1.0)
            peak = max(peak, rss_mib(server.pid))
            reader.cancel()
            await redis.aclose()
        async with httpx.AsyncClient() as http:
            history = (await http.get(base_url + "/api/ws/health")).json()["history"]
        print(
            f"published {sent} updates of {size} B on {TICKERS} tickers in {SECONDS:.0f} s; "
            f"the client received {received}\n"
            f"server RSS {base:.1f} MiB -> peak {peak:.1f} MiB (+{peak - base:.1f} MiB)\n"
            f"history: {history['bytes'] / 2**20:.1f} MiB held of a "
            f"{history['max_bytes'] / 2**20:.0f} MiB budget, {history['shed']} updates shed"
        )
    finally:
        server.stop()


def main() -> None:
    overrides = dict(arg.split("=", 1) for arg in sys.argv[1:])
    asyncio.run(run(overrides))


if __name__ == "__main__":
    main()
