"""`python -m chaos.watcher WS_URL`: the well-behaved client of the hostile scenarios.

It runs in a process of its own so that the attack's sockets, in the harness's event
loop, cannot delay it: what it measures is the server. One `/ws` connection subscribed
to the default tickers, resuming on reconnect (chaos/clients.py keeps the seq score),
plus one REST request a second (`/api/quotes/AAPL`), the way a page would poll.

Token (optional) from CHAOS_TOKEN. Prints `ready` once subscribed; on `stop` (or end of
stdin) prints one JSON line: the score, and every update and REST answer with its wall
time, so the harness can cut out the window of an attack.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from typing import Any

import httpx

from chaos.clients import FeedClient, wait_until

DEFAULT_TICKERS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"]
# Bounds, whatever the harness does: it never outlives them.
MAX_SECONDS = 600.0
MAX_RECORDS = 200_000


class Watcher(FeedClient):
    def __init__(self, url: str, headers: dict[str, str] | None) -> None:
        super().__init__(url, DEFAULT_TICKERS, random.Random(11), headers=headers)
        # (arrival epoch s, latency ms = arrival - the server's publish `timestamp`, ticker)
        self.updates: list[tuple[float, float, str]] = []

    def _update(self, ticker: str, seq: int, published_ms: float) -> None:
        now = time.time()
        if len(self.updates) < MAX_RECORDS:
            self.updates.append((now, now * 1000 - published_ms, ticker))
        super()._update(ticker, seq, published_ms)


async def poll_rest(base: str, headers: dict[str, str] | None, out: list[Any]) -> None:
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        while len(out) < MAX_RECORDS:
            started = time.time()
            try:
                status = (await http.get("/api/quotes/AAPL")).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            out.append((started, (time.time() - started) * 1000, status))
            await asyncio.sleep(max(0.0, 1.0 - (time.time() - started)))


async def main(url: str) -> None:
    token = os.environ.get("CHAOS_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    watcher = Watcher(url, headers)
    rest: list[Any] = []
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(watcher.run())]
    await wait_until(lambda: watcher.subscribed_at, 30)
    tasks.append(asyncio.create_task(poll_rest(url.replace("ws://", "http://"), headers, rest)))
    print("ready" if watcher.subscribed_at else "not subscribed", flush=True)
    try:
        # `stop` or the end of stdin (the harness went away); never longer than MAX_SECONDS.
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), MAX_SECONDS)
    except TimeoutError:
        pass
    await watcher.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    score = watcher.score
    print(
        json.dumps(
            {
                "missing": score.missing,
                "duplicates": score.duplicates,
                "gap_snapshots": score.gap_snapshots,
                "reported": score.reported,
                "connects": score.connects,
                "handshake_failures": score.handshake_failures,
                "errors": score.errors,
                "closes": dict(score.closes),
                "updates": watcher.updates,
                "rest": rest,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(sys.argv[1]))
    else:
        uvloop.run(main(sys.argv[1]))
