"""The processes a scenario breaks on purpose: a private redis-server, stockfeed servers.

Every process here is started by the script on a free port and killed by its PID; the
Redis on 127.0.0.1:6379 (and its data) is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from bench.procstat import descendants, rss_bytes

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "chaos" / "logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProc:
    """A redis-server of our own that can be killed and started again on the same port."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise SystemExit("chaos: redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="chaos-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    def ping(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        # Nothing on disk: a restarted Redis comes back empty, the harder case (counters,
        # history, the epoch and the leader lock are all gone).
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class ServerProc:
    """`stockfeed serve` on a given port, its log in chaos/logs/."""

    def __init__(
        self, name: str, port: int, args: list[str], env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{name}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFEED_")}
        full_env.update({"PYTHONUNBUFFERED": "1", "STOCKFEED_SIM_SEED": "7"})
        full_env.update(env or {})
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stockfeed.cli", "serve", "--port", str(port), *args],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.started = time.monotonic()

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from the start until /api/ws/health answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited {self.proc.returncode}: see {self.log_path}"
                )
            try:
                if httpx.get(self.base + "/api/ws/health", timeout=1).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready in {timeout}s: see {self.log_path}")

    def health(self, timeout: float = 2.0) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = httpx.get(self.base + "/api/ws/health", timeout=timeout).json()
            return body
        except (httpx.HTTPError, ValueError):
            return None

    def pids(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc.poll() is None else []

    def rss(self) -> int:
        return rss_bytes(self.pids())

    def log_problems(self) -> list[str]:
        """Log lines that say something went wrong inside the server."""
        if not self._log.closed:
            self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [ln for ln in lines if "Traceback" in ln or " ERROR" in ln or "CRITICAL" in ln]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> float:
        """Signal the server and wait for it to exit; returns the seconds it took."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return time.monotonic() - started
