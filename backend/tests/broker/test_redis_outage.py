"""Redis stopped and started under a running server: no crash, degraded, then resumes."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect

from tests.servers import RedisServer, StartServer, wait_health
from tests.wsutil import recv_updates

pytestmark = pytest.mark.process


async def test_redis_restart_degrades_then_recovers(
    start_server: StartServer, private_redis: RedisServer
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
