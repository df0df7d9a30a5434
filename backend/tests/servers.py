"""What tests import to start and reach real processes: a `stockfeed serve` on a free port
(`Server`, and `StartServer`, the type of the `start_server` fixture), a real Redis,
PostgreSQL's presence, libfaketime, and `wait_health`.

The processes themselves come from stockfeed.testing.processes (chaos/ and bench/ use it
too); the fixtures that start them are in conftest.py, which tests never import.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis

from stockfeed.testing import processes
from stockfeed.testing.processes import StockfeedServer, free_port

__all__ = [
    "IN_CI",
    "RedisServer",
    "Server",
    "StartServer",
    "faketime_env",
    "free_port",
    "redis_available",
    "require_nginx",
    "require_postgres",
    "wait_health",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Pub/sub channels are global to a Redis server (not per database), so two test runs on one
# Redis would hear each other's `market:AAPL`. Each run therefore starts its own real
# redis-server on a free port; STOCKFEED_TEST_REDIS points the suite at another one.
REDIS_URL = os.environ.get("STOCKFEED_TEST_REDIS", "")
# Each run starts its own PostgreSQL cluster too (initdb in a temporary directory, a free
# port); STOCKFEED_TEST_POSTGRES=postgresql://USER@HOST:PORT/DB points at another, where
# each test gets a database of its own (it needs CREATEDB).
POSTGRES_URL = os.environ.get("STOCKFEED_TEST_POSTGRES", "")


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


def require_postgres() -> None:
    """Missing PostgreSQL fails under CI (.ci/run installs it), skips elsewhere."""
    if processes.postgres_bin() is None:
        if IN_CI:
            pytest.fail("PostgreSQL is required under CI (.ci/run installs postgresql)")
        pytest.skip("no PostgreSQL server programs (apt-get install postgresql)")


def require_nginx() -> None:
    """Missing nginx fails under CI (.ci/run installs nginx-light), skips elsewhere."""
    if processes.nginx_bin() is None:
        if IN_CI:
            pytest.fail("nginx is required under CI (.ci/run installs nginx-light)")
        pytest.skip("no nginx (apt-get install nginx-light)")


class Server(StockfeedServer):
    """A `stockfeed serve` process, started, with its own port and log file in `tmp`."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        port = free_port()
        super().__init__(args, tmp / f"server-{port}.log", port=port, env=env)
        self.start()


class StartServer(Protocol):
    """The `start_server` fixture: starts a `stockfeed serve` with these arguments (and
    environment), stopped when the test ends; waited for until ready unless `wait=False`."""

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, wait: bool = True
    ) -> Server: ...


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
