"""The servers under test: how to start each one on a free port, wait for it, and stop it."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
PEERS = BENCH / "peers"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0


class ServerFailed(RuntimeError):
    """A server did not start, or died: the message says why (with its log's tail)."""


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


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


class RunningServer:
    def __init__(self, spec: ServerSpec, port: int, process: subprocess.Popen[bytes], log: Path):
        self.spec = spec
        self.port = port
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def name(self) -> str:
        return self.spec.name

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def check(self) -> None:
        if not self.alive():
            raise ServerFailed(
                f"{self.name} exited with code {self.process.returncode}; its log "
                f"({self.log}) ends with:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s, to this server's own process group only."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


@contextlib.contextmanager
def launch(spec: ServerSpec, redis_url: str, log_dir: Path) -> Iterator[RunningServer]:
    """Start `spec` on a free port, wait until it answers a WebSocket upgrade, stop it after."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{spec.name}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            spec.argv(port, redis_url),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(spec, port, process, log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _handshake_ok(port):
            server.check()
            if time.monotonic() > deadline:
                raise ServerFailed(
                    f"{spec.name} did not accept a WebSocket on port {port} within "
                    f"{READY_TIMEOUT_S:.0f} s; log:\n{server.log_tail()}"
                )
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
