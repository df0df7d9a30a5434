"""The processes a scenario breaks on purpose: a private redis-server, stockfeed servers.

Every process here is started by the script on a free port (stockfeed.testing.processes,
which the tests and the benchmark use too) and stopped by its process group; the Redis on
127.0.0.1:6379 (and its data) is never touched.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench.procstat import descendants, rss_bytes
from stockfeed.testing.processes import RedisServer, StockfeedServer, free_port

__all__ = ["LOGS", "ROOT", "RedisProc", "ServerProc", "free_port"]

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "chaos" / "logs"


class RedisProc(RedisServer):
    """A redis-server of our own that can be killed and started again on the same port.
    Nothing on disk: a restarted Redis comes back empty, the harder case (counters,
    history, the epoch and the leader lock are all gone)."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise SystemExit("chaos: redis-server is not installed (apt-get install redis-server)")
        super().__init__(Path(tempfile.mkdtemp(prefix="chaos-redis-")))


class ServerProc(StockfeedServer):
    """`stockfeed serve` on a given port, started, its log in chaos/logs/."""

    def __init__(
        self, name: str, port: int, args: list[str], env: dict[str, str] | None = None
    ) -> None:
        super().__init__(args, LOGS / f"{name}.log", port=port, env=env, name=name)
        self.start()

    def wait_ready(self, timeout: float = 60.0) -> float:  # type: ignore[override]
        """Seconds from the start until /api/ws/health answers."""
        return super().wait_ready(timeout=timeout).ready_s

    def health(self, timeout: float = 2.0) -> dict[str, Any] | None:  # type: ignore[override]
        try:
            return super().health(timeout)
        except (httpx.HTTPError, ValueError):
            return None

    def pids(self) -> list[int]:
        return descendants(self.pid) if self.alive() else []

    def rss(self) -> int:
        return rss_bytes(self.pids())

    def log_problems(self) -> list[str]:
        """Log lines that say something went wrong inside the server."""
        lines = self.log().splitlines()
        return [ln for ln in lines if "Traceback" in ln or " ERROR" in ln or "CRITICAL" in ln]

    def stop(self, sig: int | None = None, timeout: float = 20.0) -> float:  # type: ignore[override]
        """Signal the server and wait for it to exit; returns the seconds it took."""
        started = time.monotonic()
        super().stop(sig, timeout)
        return time.monotonic() - started
