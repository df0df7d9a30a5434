"""Redis stopped and started under a running server: no crash, degraded, then resumes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import IN_CI, free_port
from websockets.asyncio.client import connect
from wsutil import recv_updates


class PrivateRedis:
    """A redis-server of our own, so the test can kill it without hurting others."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is required under CI")
        pytest.skip("no redis-server binary")
    server = PrivateRedis(tmp_path)
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
    start_server: Any, private_redis: PrivateRedis
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
