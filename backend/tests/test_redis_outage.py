"""Redis stopped and started under a running server: no crash, degraded, then resumes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RedisServer
from websockets.asyncio.client import connect
from wsutil import recv_updates


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, so it can be killed without hurting the others."""
    RedisServer.require()
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def wait_health(server: Any, check: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(server.health)
        if check(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"health never matched: {last}")


async def test_redis_restart_degrades_then_recovers(
    start_server: Any, private_redis: RedisServer
) -> None:
    server = start_server(
        "--source",
        "sim",
        "--sim-tick-interval",
        "0.05",
        "--leader-ttl",
        "1",
        "--tickers",
        "AAPL",
        "--broker",
        private_redis.url,
    )
    async with connect(server.ws + "/ws/stocks/AAPL") as ws:
        before = await recv_updates(ws, 5)
        private_redis.stop()
        health = await wait_health(server, lambda h: h["status"] == "degraded")
        assert health["broker"]["state"] == "degraded"
        assert any("broker" in p for p in health["problems"])
        await asyncio.sleep(1.5)  # the server keeps serving HTTP while Redis is gone
        private_redis.start()
        await wait_health(server, lambda h: h["broker"]["state"] == "connected")
        after = await recv_updates(ws, 5, timeout=20)
    assert server.proc.poll() is None, "the server died"
    seqs = [m["seq"] for m in before + after]
    # Redis lost its counters (it keeps nothing on disk): seq must still never go back.
    assert seqs == sorted(set(seqs)), seqs
    await wait_health(server, lambda h: h["status"] == "ok")
