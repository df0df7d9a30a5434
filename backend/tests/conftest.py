"""Real servers for real tests: a stockfeed process on a free port, a real Redis.

The processes themselves come from stockfeed.testing.processes (chaos/ and bench/ use it
too); here: pytest's skipping and failing, the fixtures, and the guard that fails a test
not marked `pytest.mark.process` when it starts one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from stockfeed.testing import processes
from stockfeed.testing.processes import StockfeedServer, free_port

__all__ = [
    "IN_CI",
    "RedisServer",
    "Server",
    "faketime_env",
    "free_port",
    "redis_available",
    "wait_health",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Pub/sub channels are global to a Redis server (not per database), so two test runs on one
# Redis would hear each other's `market:AAPL`. Each run therefore starts its own real
# redis-server on a free port; STOCKFEED_TEST_REDIS points the suite at another one.
REDIS_URL = os.environ.get("STOCKFEED_TEST_REDIS", "")


def redis_available(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def faketime_env(moment: str) -> dict[str, str]:
    """The server's clock starts at `moment` (UTC) and runs on. FAKETIME_DONT_FAKE_MONOTONIC
    is not set: with libfaketime 0.9.10 it makes every time.sleep fail (EINVAL from an
    absolute clock_nanosleep); the monotonic clock moves in step instead."""
    if not FAKETIME_LIB.exists():
        if IN_CI:
            pytest.fail("faketime is required under CI (.ci/run installs it)")
        pytest.skip("no faketime (apt-get install faketime)")
    return {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": f"@{moment}", "TZ": "UTC"}


class RedisServer(processes.RedisServer):
    """A real redis-server of our own on a free port; `stop()` kills it, `start()` again
    brings it back empty on the same port."""

    @staticmethod
    def require() -> None:
        """Missing redis-server fails under CI (.ci/run installs it), skips elsewhere."""
        if shutil.which("redis-server") is None:
            if IN_CI:
                pytest.fail("redis-server is required under CI (.ci/run installs it)")
            pytest.skip("no redis-server binary")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Starting a process fails a test not marked `process` (its fixtures included, even
    module-scoped ones, which are set up before any function-scoped autouse fixture)."""
    marked = item.get_closest_marker("process") is not None
    why = f"{item.nodeid} is not marked pytest.mark.process"
    processes.forbid_processes(None if marked else why)
    try:
        return (yield)
    finally:
        processes.forbid_processes(None)


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if REDIS_URL:
        yield REDIS_URL
        return
    RedisServer.require()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(session_redis: str) -> str:
    """A real Redis server, emptied for the test."""
    if not redis_available(session_redis):
        pytest.fail(f"Redis does not answer at {session_redis}")
    redis.Redis.from_url(session_redis).flushall()
    return session_redis


@pytest.fixture(params=["memory", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


class Server(StockfeedServer):
    """A `stockfeed serve` process, started, with its own port and log file in `tmp`."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        port = free_port()
        super().__init__(args, tmp / f"server-{port}.log", port=port, env=env)
        self.start()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[object]:
    servers: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None, wait: bool = True) -> Server:
        server = Server(tmp_path, *args, env=env)
        servers.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, so it can be killed without hurting the others."""
    RedisServer.require()
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


async def wait_health(server: Any, check: Any, timeout: float = 20.0) -> dict[str, Any]:
    """Poll a Server's /api/ws/health until `check(body)` holds."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(server.health)
        if check(last):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"health never matched: {last}")
