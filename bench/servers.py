"""The servers under test: how to start each one on a free port, wait for it, and stop it
(with stockfeed.testing.processes, which the tests and chaos use too)."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stockfeed.testing.processes import ManagedProcess, ProcessFailed, free_port

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
PEERS = BENCH / "peers"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0


# A server did not start, or died: the message says why (with its log's tail).
ServerFailed = ProcessFailed


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    description: str
    argv: Callable[[int, str], list[str]]  # (port, redis_url) -> command line

    def missing(self) -> str | None:
        """Why this server cannot start here, or None."""
        exe = self.argv(0, "redis://")[0]
        if os.sep in exe:
            return None if os.access(exe, os.X_OK) else f"{exe} not found"
        return None if shutil.which(exe) else f"`{exe}` is not on PATH"


def _python_peer(script: str) -> Callable[[int, str], list[str]]:
    return lambda port, redis: [
        sys.executable,
        str(PEERS / script),
        "--port",
        str(port),
        "--redis",
        redis,
    ]


def _node_peer(port: int, redis: str) -> list[str]:
    return [
        "node",
        str(PEERS / "node_ws" / "server.js"),
        "--port",
        str(port),
        "--redis",
        redis,
    ]


def _stockfeed(port: int, redis: str) -> list[str]:
    return [
        str(BIN / "stockfeed"),
        "serve",
        "--source",
        "none",
        "--broker",
        redis,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def baseline(checkout: Path) -> ServerSpec:
    """stockfeed as another checkout has it (a commit before a change: `git worktree add
    ../base <commit>`), run with this virtualenv, for before/after figures in one run."""
    src = checkout.resolve() / "backend" / "src"

    def argv(port: int, redis: str) -> list[str]:
        serve = _stockfeed(port, redis)[1:]  # `serve ...`, without the entry point
        # Older defaults held 1,000 tickers: the wide shape needs 2,000.
        env = [f"PYTHONPATH={src}", "STOCKFEED_MAX_TICKERS=20000"]
        return ["env", *env, sys.executable, "-m", "stockfeed", *serve]

    return ServerSpec("stockfeed_base", f"stockfeed of {checkout} (the baseline)", argv)


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec("stockfeed", "stockfeed serve --source none, Redis broker", _stockfeed),
        ServerSpec(
            "broadcaster",
            "FastAPI + encode/broadcaster (Redis)",
            _python_peer("broadcaster_app.py"),
        ),
        ServerSpec(
            "shared_sub",
            "FastAPI + one shared redis.asyncio subscription",
            _python_peer("shared_sub_app.py"),
        ),
        ServerSpec("node_ws", "Node ws + ioredis", _node_peer),
        ServerSpec(
            "picows",
            "picows server (Cython) + redis.asyncio",
            _python_peer("picows_server.py"),
        ),
    )
}
SUBJECT = "stockfeed"  # the server the others are compared with


def _handshake_ok(port: int) -> bool:
    """One WebSocket upgrade on /ws/stocks/READY answered with 101."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws/stocks/READY HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as sock:
            sock.sendall(request.encode())
            head = sock.recv(64)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.1 101")


class RunningServer(ManagedProcess):
    """One server of the benchmark on a free port, in its own process group; stopped with
    SIGTERM, then SIGKILL after 10 s, to that group only."""

    def __init__(self, spec: ServerSpec, redis_url: str, log_dir: Path) -> None:
        self.spec = spec
        self.port = free_port(HOST)
        log = log_dir / f"{spec.name}-{self.port}.log"
        super().__init__(spec.argv(self.port, redis_url), log, cwd=REPO, name=spec.name)


@contextlib.contextmanager
def launch(spec: ServerSpec, redis_url: str, log_dir: Path) -> Iterator[RunningServer]:
    """Start `spec` on a free port, wait until it answers a WebSocket upgrade, stop it after."""
    server = RunningServer(spec, redis_url, log_dir)
    try:
        server.start().wait_ready(lambda: _handshake_ok(server.port), READY_TIMEOUT_S, 0.1)
        yield server
    finally:
        server.stop(timeout=10)
