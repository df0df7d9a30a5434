"""Real servers for real tests: a stockfeed process on a free port, a real Redis."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Pub/sub channels are global to a Redis server (not per database), so two test runs on one
# Redis would hear each other's `market:AAPL`. Each run therefore starts its own real
# redis-server on a free port; STOCKFEED_TEST_REDIS points the suite at another one.
REDIS_URL = os.environ.get("STOCKFEED_TEST_REDIS", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_available(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class RedisServer:
    """A real redis-server of our own on a free port, nothing kept on disk."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def require() -> None:
        """Missing redis-server fails under CI (.ci/run installs it), skips elsewhere."""
        if shutil.which("redis-server") is None:
            if IN_CI:
                pytest.fail("redis-server is required under CI (.ci/run installs it)")
            pytest.skip("no redis-server binary")

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
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_available(self.url):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if REDIS_URL:
        yield REDIS_URL
        return
    RedisServer.require()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
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


class Server:
    """A `stockfeed serve` process with its own port and log file."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"
        self.log_path = tmp / f"server-{self.port}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFEED_")}
        full_env.update(
            {
                "STOCKFEED_YAHOO_PROBE_TIMEOUT": "1",
                "STOCKFEED_SIM_SEED": "7",
                "PYTHONUNBUFFERED": "1",
            }
        )
        full_env.update(env or {})
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stockfeed.cli", "serve", "--port", str(self.port), *args],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base + "/api/ws/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log()}")

    def health(self) -> dict[str, object]:
        body: dict[str, object] = httpx.get(self.base + "/api/ws/health", timeout=5).json()
        return body

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return int(self.proc.returncode)


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
    server = RedisServer(tmp_path)
    server.start()
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
