"""Redis behind Sentinel as broker and store: a real primary, replica and 3 Sentinels.

- The primary SIGKILLed under resuming clients of two processes: the Sentinels promote
  the replica, broker and store follow it, every seq arrives once or a gap snapshot
  says which did not, and fresh updates come within ~10 s.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stockfeed.testing.redis_topologies import SentinelTopology
from tests.broker.test_redis_cluster import ARGS, Feed
from tests.servers import StartServer

pytestmark = pytest.mark.process

TICKERS = ("AAPL", "MSFT")


async def wait_primary(server: Any, primary: str, timeout: float = 20.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    broker: dict[str, Any] = {}
    while loop.time() < deadline:
        broker = (await asyncio.to_thread(server.health))["broker"]
        if broker["state"] == "connected" and broker.get("primary") == primary:
            return broker
        await asyncio.sleep(0.1)
    raise AssertionError(f"broker never connected to {primary}: {broker}")


async def test_primary_killed_under_resuming_clients_every_seq_once_or_a_gap(
    sentinel: SentinelTopology, sentinel_url: str, start_server: StartServer
) -> None:
    a = start_server(*ARGS, "--tickers", ",".join(TICKERS), "--broker", sentinel_url)
    b = start_server(*ARGS, "--tickers", ",".join(TICKERS), "--broker", sentinel_url)
    old = sentinel.primary
    for server in (a, b):
        health = await wait_primary(server, old.name)
        assert health["mode"] == "sentinel" and health["master_name"] == sentinel.master_name
    stay_a, away_a, stay_b, away_b = (Feed(TICKERS) for _ in range(4))
    feeds = [stay_a, away_a, stay_b, away_b]
    try:
        for feed, server in ((stay_a, a), (away_a, a), (stay_b, b), (away_b, b)):
            await feed.open(server.ws)
        for feed in feeds:
            await feed.wait("AAPL", 5)

        await away_a.close()
        await away_b.close()
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        seen_at_kill = {t: max(f.last(t) for f in feeds) for t in TICKERS}
        sentinel.kill_primary()
        await asyncio.sleep(0.5)
        await away_a.open(b.ws)  # resumes on the other process during the outage
        new = await asyncio.to_thread(sentinel.wait_promoted, old)
        await away_b.open(a.ws)  # and on the other one after the promotion
        print(f"{old.name} killed, {new.name} promoted in {loop.time() - killed_at:.1f}s")

        for feed in feeds:
            for t in TICKERS:
                await feed.wait(t, seen_at_kill[t], timeout=20)
        back_in = max(
            next(at for at, m in zip(f.arrived[t], f.seen[t], strict=True) if m["seq"] > seen)
            - killed_at
            for f in feeds
            for t, seen in seen_at_kill.items()
        )
        print(f"every client had new updates of every ticker {back_in:.1f}s after the kill")
        for feed in feeds:
            for t in TICKERS:
                await feed.wait(t, max(f.last(t) for f in feeds) + 10)
        gaps = [feed.check() for feed in feeds]
        print(f"gap snapshots per client: {gaps}")
        assert back_in < 12, f"clients waited {back_in:.1f}s for fresh updates"
        for server in (a, b):
            await wait_primary(server, new.name)
            assert server.proc.poll() is None
    finally:
        await asyncio.gather(*(f.close() for f in feeds), return_exceptions=True)
