"""Real processes on free ports for the tests, chaos scenarios and the benchmark.

`ManagedProcess` starts a command in its own process group with its output in a log file,
waits until a check says it is ready (failing with the log's tail when it exits or times
out) and stops it: a signal to the group, then SIGKILL. `StockfeedServer` is a `stockfeed
serve`, `RedisServer` a redis-server that keeps nothing on disk, `PostgresServer` a
PostgreSQL cluster of its own in a temporary directory. No pytest in here: the
tests' conftest turns `forbid_processes` on for tests not marked `pytest.mark.process`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Self

import httpx
import redis

HOST = "127.0.0.1"

_forbidden: str | None = None


class ProcessFailed(RuntimeError):
    """A process did not become ready, or died: the message ends with its log's tail."""


class ProcessNotAllowed(RuntimeError):
    """A process was started while `forbid_processes` was on."""


def forbid_processes(reason: str | None) -> None:
    """From now on `ManagedProcess.start` raises `ProcessNotAllowed(reason)`; None allows."""
    global _forbidden
    _forbidden = reason


# Ports handed out by `free_port`, one file each, across processes (parallel test workers,
# benchmarks): the kernel can give the same free port to two `bind(0)` calls in a row.
_PORTS_DIR = Path(tempfile.gettempdir()) / "stockfeed-test-ports"
_PORT_HELD_S = 120.0


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now that no caller of this function, in any
    process, was given in the last two minutes. Without that, two servers started at once
    by parallel tests could get the same port: one fails to bind, and its readiness
    probe is answered by the other."""
    _PORTS_DIR.mkdir(exist_ok=True)
    for _ in range(100):
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        mark = _PORTS_DIR / str(port)
        with contextlib.suppress(OSError):
            if time.time() - mark.stat().st_mtime > _PORT_HELD_S:
                mark.unlink()  # given out long ago: free to give again
        try:
            os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue  # given to someone else lately
        return port
    raise RuntimeError(f"no free port found that was not given out lately ({_PORTS_DIR})")


class TcpSocket(NamedTuple):
    local_port: int
    remote_port: int
    state: int  # include/net/tcp_states.h: 1 established, 10 listening, ...
    inode: str


def tcp_sockets() -> Iterator[TcpSocket]:
    """The TCP sockets of this network namespace, IPv4 and IPv6, from /proc/net (the
    harness's readiness check and the bench's look at the server's end of connections)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    yield TcpSocket(
                        int(fields[1].rsplit(":", 1)[1], 16),
                        int(fields[2].rsplit(":", 1)[1], 16),
                        int(fields[3], 16),
                        fields[9],
                    )
        except OSError:
            continue


_LISTEN = 10


def _listening_inodes(port: int) -> set[str]:
    """The socket inodes listening on TCP `port` (any address)."""
    return {s.inode for s in tcp_sockets() if s.state == _LISTEN and s.local_port == port}


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read().decode()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[2]) == pgid:  # field 5: the group
            pids.append(int(entry))
    return pids


def listens_on(pgid: int, port: int) -> bool:
    """Whether a process of group `pgid` holds the socket listening on `port`."""
    inodes = _listening_inodes(port)
    for pid in _group_pids(pgid) if inodes else ():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return True
    return False


class ManagedProcess:
    """`argv` in a process group of its own, stdout and stderr in `log_path`."""

    stop_signal: int = signal.SIGTERM

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.name = name or Path(self.argv[0]).name
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.ready_s = 0.0  # seconds from start() until wait_ready() saw it ready
        self._starts = 0

    def start(self) -> Self:
        """Start (or start again: the log is appended to then) without waiting."""
        if _forbidden is not None:
            raise ProcessNotAllowed(f"{_forbidden}: {self.name} ({' '.join(self.argv)})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab" if self._starts else "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._starts += 1
        self.started = time.monotonic()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self._reap() is None

    def is_ready(self) -> bool:
        """The default check of `wait_ready`."""
        return True

    def wait_ready(
        self,
        check: Callable[[], bool] | None = None,
        timeout: float = 30.0,
        interval: float = 0.05,
    ) -> Self:
        """Poll `check` (else `is_ready`; raising counts as not ready) until it holds and,
        for a server with a `port`, the socket listening there is this process group's
        (not another server's that answers the same probe). The process exiting or
        `timeout` passing stops it and raises ProcessFailed."""
        probe = check or self.is_ready
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            self.check()
            try:
                if probe() and self._listens():
                    self.ready_s = time.monotonic() - self.started
                    return self
            except Exception as exc:
                last = exc
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                why = f" (last: {type(last).__name__}: {last})" if last else ""
                raise ProcessFailed(
                    f"{self.name} not ready in {timeout:g}s{why}; {self._tail_text()}"
                )
            time.sleep(interval)

    def _listens(self) -> bool:
        port = getattr(self, "port", None)
        if not isinstance(port, int) or self.proc is None or not os.path.isdir("/proc/net"):
            return True
        return listens_on(self.proc.pid, port)

    def check(self) -> None:
        """Raise ProcessFailed if the process has exited."""
        if self.proc is not None and self._reap() is not None:
            raise ProcessFailed(
                f"{self.name} exited with code {self.proc.returncode}; {self._tail_text()}"
            )

    def stop(self, sig: int | None = None, timeout: float = 15.0) -> int | None:
        """`sig` (default `stop_signal`) to the process group, then SIGKILL to the group
        after `timeout` s, or to what is left of it; returns the exit code."""
        if self.proc is None:
            return None
        if self._reap() is None:
            self._signal(self.stop_signal if sig is None else sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(5)
            self._signal(signal.SIGKILL)  # children left behind
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def _reap(self) -> int | None:
        """poll(); the call that sees the exit SIGKILLs what is left of the group at once
        (later its id could belong to someone else)."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            return self.proc.returncode
        code = self.proc.poll()
        if code is not None:
            self._signal(signal.SIGKILL)
        return code

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def _tail_text(self) -> str:
        return f"its log ({self.log_path}) ends with:\n{self.log_tail()}"


class StockfeedServer(ManagedProcess):
    """`stockfeed serve --port PORT *args` on 127.0.0.1. Its environment is ours without
    any STOCKFEED_* variable, plus `DEFAULT_ENV`, plus `env`. Ready when
    /api/ws/health answers 200. Its market-data store is its own (`STOCKFEED_DATA_DIR`
    beside its log, kept across restarts of this server) unless `env` names one."""

    DEFAULT_ENV: Mapping[str, str] = {
        "PYTHONUNBUFFERED": "1",
        "STOCKFEED_YAHOO_PROBE_TIMEOUT": "1",  # `auto` decides fast when Yahoo is away
        "STOCKFEED_SIM_SEED": "7",
        # Tests stream at any hour: the simulator trades around the clock (market SIM).
        # Market hours themselves are tested in-process on a fixed clock (tests/sources).
        "STOCKFEED_SIM_MARKET_HOURS": "false",
    }

    def __init__(
        self,
        args: Sequence[str],
        log_path: Path,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        name: str = "stockfeed",
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.ws = f"ws://{HOST}:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFEED_")}
        full_env.update(self.DEFAULT_ENV)
        full_env["STOCKFEED_DATA_DIR"] = str(log_path.parent / f"data-{self.port}")
        full_env.update(env or {})
        argv = [sys.executable, "-m", "stockfeed.cli", "serve", "--port", str(self.port)]
        super().__init__([*argv, *args], log_path, env=full_env, name=name)

    def is_ready(self) -> bool:
        return httpx.get(self.base + "/api/ws/health", timeout=1).status_code == 200

    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.base + "/api/ws/health", timeout=timeout).json()
        return body


class RedisServer(ManagedProcess):
    """redis-server on 127.0.0.1 (a free port unless given) with nothing on disk, so one
    started again after `stop()` (SIGKILL: there is nothing to lose) comes back empty.
    `start()` waits until it answers PING."""

    stop_signal = signal.SIGKILL

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        password: str | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}{HOST}:{self.port}/0"
        argv = ["redis-server", "--port", str(self.port), "--bind", HOST]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
        if password:
            argv += ["--requirepass", password]
        log = log_path or workdir / f"redis-{self.port}.log"
        super().__init__(argv, log, name=f"redis-server :{self.port}")

    def start(self, timeout: float = 10.0) -> Self:
        super().start()
        return self.wait_ready(timeout=timeout)

    def ping(self) -> bool:
        try:
            with redis.Redis.from_url(self.url, socket_connect_timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def is_ready(self) -> bool:
        return self.ping()


def postgres_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (Debian: /usr/lib/postgresql/N/bin,
    the newest N), or the one `postgres` on PATH is in; None when there is none."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


class PostgresServer(ManagedProcess):
    """A PostgreSQL server of its own on 127.0.0.1 (a free port unless given): `initdb`
    into a new temporary directory (trust authentication, user `stockfeed`), durability
    off (fsync, synchronous_commit: a test's data need not survive a power cut). As root
    it runs as the `postgres` user, which PostgreSQL requires. `start()` waits until it
    accepts connections; `new_database()` gives a test an empty database of its own;
    `cleanup()` stops it and removes its directory."""

    stop_signal = signal.SIGINT  # PostgreSQL's "fast" shutdown

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise ProcessFailed(
                "no PostgreSQL server programs (Debian: apt-get install postgresql)"
            )
        self.bindir = bindir
        self.port = port or free_port()
        # Not under pytest's tmp_path: its parents are private to root, and the server
        # may run as another user.
        self.workdir = Path(tempfile.mkdtemp(prefix="stockfeed-pg-"))
        self.data = self.workdir / "data"
        self.url = f"postgresql://stockfeed@{HOST}:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
            shutil.chown(self.workdir, "postgres", "postgres")
        argv = [
            *self._as,
            str(bindir / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-h", HOST,
            "-k", str(self.workdir),
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        log = log_path or self.workdir / "postgres.log"
        super().__init__(argv, log, name=f"postgres :{self.port}")

    def start(self, timeout: float = 30.0) -> Self:
        if not self.data.exists():
            initdb = [
                *self._as,
                str(self.bindir / "initdb"),
                "-D", str(self.data),
                "-U", "stockfeed",
                "-A", "trust",
                "-E", "UTF8",
                "--no-instructions",
            ]  # fmt: skip
            done = subprocess.run(initdb, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ProcessFailed(f"initdb failed: {done.stdout}{done.stderr}")
        super().start()
        return self.wait_ready(timeout=timeout)

    def is_ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=1):
                return True
        except psycopg.Error:
            return False

    def new_database(self, name: str) -> str:
        """An empty database `name` (dropped first if it exists); its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://stockfeed@{HOST}:{self.port}/{name}"

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def nginx_bin() -> Path | None:
    """nginx (Debian's `nginx-light` or `nginx`: /usr/sbin/nginx), or None."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


class NginxServer(ManagedProcess):
    """nginx in the foreground with one of deploy/nginx's configurations, its addresses
    rewritten (`replace`: text -> text, e.g. the example's upstream ports -> the test's
    servers') and its files in `workdir`. `start()` waits until it accepts connections."""

    def __init__(self, workdir: Path, config: Path, replace: Mapping[str, str]) -> None:
        binary = nginx_bin()
        if binary is None:
            raise ProcessFailed("no nginx (apt-get install nginx-light)")
        workdir.mkdir(parents=True, exist_ok=True)
        text = config.read_text()
        for old, new in replace.items():
            if old not in text:
                raise ValueError(f"{config.name} has no {old!r} to replace")
            text = text.replace(old, new)
        listen = re.search(r"listen\s+([\d.]+):(\d+);", text)
        if listen is None:
            raise ValueError(f"{config.name}: no `listen HOST:PORT;`")
        self.port = int(listen.group(2))
        self.base = f"http://{HOST}:{self.port}"
        self.ws = f"ws://{HOST}:{self.port}"
        conf = workdir / "nginx.conf"
        conf.write_text(text)
        argv = [str(binary), "-p", str(workdir), "-c", str(conf)]
        super().__init__(argv, workdir / "nginx.log", name=f"nginx :{self.port}")

    def start(self, timeout: float = 10.0) -> Self:
        super().start()
        return self.wait_ready(timeout=timeout)

    def is_ready(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex((HOST, self.port)) == 0
