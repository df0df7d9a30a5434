"""Load generator: picows WebSocket clients on uvloop, split over one or more processes.

Each worker process holds a share of the clients (client i goes to worker i % procs) and
answers commands from the parent over a pipe: connect a burst of clients, reset the window
counters, report what was received, release stuck clients, disconnect. Per client it tracks
`seq` per ticker (loss, duplicates, out of order) and per message the latency
`receive wall time - timestamp` in a fixed-bucket histogram, so a message costs a couple of
microseconds of load-generator CPU (plus the kernel's share of reading it). Clients may ask
for candles too (`?bars=1m`): a `bar` message of their ticker is counted on its own (never as
a price update, and not in the latency histogram), at about the cost of a prefix test.

Standalone use against a server that is already running (one `rate` measurement):

    python -m bench.loadgen --port 8000 --clients 1000 --tickers 10 --rate 10000 --server-pid PID
    python -m bench.loadgen --port 8000 --bars 1m ...   # every client asks for 1m candles
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

from bench import histogram

PATH = "/ws/stocks/"
PRICE_PREFIX = b'{"type":"price_update","ticker":"'
BAR_PREFIX = b'{"type":"bar","ticker":"'  # one candle changed (docs/protocol.md, `bar`)
# A client that never reads gets a tiny receive buffer and a small MSS. Without the MSS clamp
# a loopback connection (64 KiB segments) lets the server's kernel queue ~4 MiB per client
# before the server process sees any back-pressure; with it, ~200 KiB, as on a real link.
STUCK_RCVBUF = 4096  # the kernel doubles it
STUCK_MSS = 536
NO_CLOSE_FRAME = 1006  # what a disconnect without a close frame is reported as
_time = time.time


def raise_nofile() -> int:
    """Lift the soft open-files limit to the hard one; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- worker side --------------------------------------------------------------------------


@dataclass(slots=True)
class Counters:
    """Per-worker totals since the last reset."""

    hist: list[int] = field(default_factory=histogram.new)
    messages: int = 0
    max_latency: float = 0.0
    first_recv: float = 0.0  # epoch ms
    last_recv: float = 0.0  # epoch ms
    foreign: int = 0
    bars: int = 0  # `bar` messages of the client's own ticker (not in `messages`)
    last_bar_recv: float = 0.0  # epoch ms
    other: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.hist[:] = histogram.new()
        self.messages = 0
        self.max_latency = 0.0
        self.first_recv = 0.0
        self.last_recv = 0.0
        self.foreign = 0
        self.bars = 0
        self.last_bar_recv = 0.0
        self.other.clear()


_TEXT = WSMsgType.TEXT
_CLOSE = WSMsgType.CLOSE


class Client(WSListener):
    """One WebSocket client of one ticker."""

    def __init__(self, counters: Counters, ticker: bytes, stuck: bool) -> None:
        self.c = counters
        self.ticker = ticker
        self.head = PRICE_PREFIX + ticker + b'","seq":'
        self.bar_head = BAR_PREFIX + ticker + b'",'
        self.stuck = stuck
        self.transport: Any = None
        self.local_port = 0
        self.first = 1  # lowest seq received (1 until something else arrives first)
        self.max = 0  # highest seq received; 0: nothing yet
        self.holes: set[int] = set()  # seqs in (first, max) not received (yet)
        self.dups = 0
        self.ooo = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self.disconnected = False

    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport
        self.local_port = transport.underlying_transport.get_extra_info("sockname")[1]
        if self.stuck:
            transport.underlying_transport.pause_reading()

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        # The hot path: one call per received message, so it is written flat (no helper
        # calls, histogram.bucket inlined). It reads the publisher's own layout, which a
        # relay passes on byte for byte as the contract says; anything else goes to `other`.
        if frame.msg_type is not _TEXT:
            if frame.msg_type is _CLOSE:
                self._closed_by_peer(transport, frame.get_payload_as_bytes())
            return
        data: bytes = frame.get_payload_as_bytes()
        head = self.head  # b'{"type":"price_update","ticker":"<T>","seq":'
        if not data.startswith(head):
            if data.startswith(self.bar_head):  # a candle of ours: counted, not parsed
                c = self.c
                c.bars += 1
                c.last_bar_recv = _time() * 1000.0
                return
            self.other(data)  # another type, another ticker, or another layout
            return
        at = len(head)
        comma = data.find(b",", at)
        stop = data.find(b",", comma + 13)
        if not data.startswith(b'"timestamp":', comma + 1):
            self.other(data)
            return
        try:
            seq = int(data[at:comma])
            ts = float(data[comma + 13 : stop])
        except ValueError:
            self.other(data)
            return
        now = _time() * 1000.0
        c = self.c
        latency = now - ts
        if latency < 1000.0:
            c.hist[int(latency * 20.0) if latency > 0.0 else 0] += 1
        else:
            c.hist[histogram.bucket(latency)] += 1
        if latency > c.max_latency:
            c.max_latency = latency
        if not c.messages:
            c.first_recv = now
        c.messages += 1
        c.last_recv = now
        if seq == self.max + 1:
            self.max = seq
        else:
            self._out_of_line(seq)

    def track(self, ticker: bytes, seq: int, ts: float) -> None:
        """The slow path's bookkeeping (a price_update in another layout)."""
        c = self.c
        now = _time() * 1000.0
        if ticker != self.ticker:
            c.foreign += 1
            return
        latency = now - ts
        c.hist[histogram.bucket(latency)] += 1
        if latency > c.max_latency:
            c.max_latency = latency
        if not c.messages:
            c.first_recv = now
        c.messages += 1
        c.last_recv = now
        if seq == self.max + 1:
            self.max = seq
        else:
            self._out_of_line(seq)

    def _out_of_line(self, seq: int) -> None:
        top = self.max
        if seq > top:
            if top == 0:
                self.first = seq
            else:
                self.holes.update(range(top + 1, seq))
            self.max = seq
        elif seq in self.holes:
            self.holes.discard(seq)
            self.ooo += 1
        elif seq < self.first:
            self.holes.update(range(seq + 1, self.first))
            self.first = seq
            self.ooo += 1
        else:
            self.dups += 1

    def other(self, data: bytes) -> None:
        try:
            obj = json.loads(data)
            kind = str(obj.get("type"))
        except (ValueError, AttributeError):
            self.c.other["<not a JSON object>"] += 1
            return
        if kind == "price_update":
            try:
                self.track(
                    str(obj["ticker"]).encode(),
                    int(obj["seq"]),
                    float(obj["timestamp"]),
                )
                return
            except (KeyError, TypeError, ValueError):
                kind = "<bad price_update>"
        self.c.other[kind] += 1

    def _closed_by_peer(self, transport: Any, payload: bytes) -> None:
        self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        self.close_reason = payload[2:].decode(errors="replace")
        with contextlib.suppress(Exception):
            transport.send_close(WSCloseCode.OK)
        transport.disconnect()

    def on_ws_disconnected(self, transport: Any) -> None:
        self.disconnected = True
        if self.close_code is None:
            self.close_code = NO_CLOSE_FRAME

    def received_in(self, lo: int, hi: int) -> int:
        """How many distinct seqs in [lo, hi] this client received."""
        if self.max == 0:
            return 0
        a, b = max(lo, self.first), min(hi, self.max)
        if b < a:
            return 0
        missing = sum(1 for h in self.holes if a <= h <= b) if self.holes else 0
        return b - a + 1 - missing


def _small_rcvbuf_socket(_url: Any) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STUCK_RCVBUF)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, STUCK_MSS)
    return sock


class Worker:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.counters = Counters()
        self.clients: list[Client] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.done = asyncio.Event()

    def on_command(self) -> None:
        try:
            request = self.conn.recv()
        except EOFError:
            self.done.set()
            return
        name, args = request[0], request[1:]
        if name == "connect":
            task = asyncio.get_running_loop().create_task(self.connect(*args))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif name == "reset":
            self.counters.reset()
            for client in self.clients:
                client.dups = client.ooo = 0
            self.conn.send(("ok",))
        elif name == "progress":
            self.conn.send(("ok", self.counters.messages))
        elif name == "collect":
            self.conn.send(("ok", self.collect(*args)))
        elif name == "release":
            for client in self.clients:
                if client.stuck and not client.disconnected and client.transport is not None:
                    with contextlib.suppress(Exception):
                        client.transport.underlying_transport.resume_reading()
            self.conn.send(("ok",))
        elif name == "stuck_ports":
            self.conn.send(("ok", [c.local_port for c in self.clients if c.stuck]))
        elif name == "disconnect":
            task = asyncio.get_running_loop().create_task(self.disconnect())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif name == "stop":
            self.done.set()

    async def connect(
        self, url_base: str, plan: list[tuple[str, bool]], limit_s: float, query: str = ""
    ) -> None:
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        new: list[Client] = []

        async def one(ticker: str, stuck: bool) -> None:
            start = time.perf_counter()
            try:
                _, client = await ws_connect(
                    lambda: Client(self.counters, ticker.encode(), stuck),
                    url_base + ticker + query,
                    websocket_handshake_timeout=limit_s,
                    socket_factory=_small_rcvbuf_socket if stuck else None,
                    # uvloop's own transports: opening a burst costs half the CPU here.
                    use_aiofastnet=False,
                )
            except Exception as exc:
                errors[type(exc).__name__] += 1
                return
            if client is None:  # picows gave no listener: the upgrade did not complete
                errors["no_listener"] += 1
                return
            latencies.append((time.perf_counter() - start) * 1000.0)
            new.append(cast(Client, client))

        begin = time.perf_counter()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(one(t, s) for t, s in plan), return_exceptions=True),
                limit_s,
            )
        except TimeoutError:
            errors["timeout"] += len(plan) - len(latencies) - sum(errors.values())
        burst = time.perf_counter() - begin
        self.clients.extend(new)
        self.conn.send(
            (
                "ok",
                {"latencies_ms": latencies, "errors": dict(errors), "burst_s": burst},
            )
        )

    def collect(self, windows: dict[str, tuple[int, int]], include_stuck: bool) -> dict[str, Any]:
        c = self.counters
        expected = received = lossy = silent = dups = ooo = 0
        closes: Counter[str] = Counter()
        stuck_closes: Counter[str] = Counter()
        for client in self.clients:
            if client.stuck:
                stuck_closes[_close_label(client)] += 1
                if not include_stuck:
                    continue
            else:
                closes[_close_label(client)] += 1
            dups += client.dups
            ooo += client.ooo
            window = windows.get(client.ticker.decode())
            if window is None:
                continue
            lo, hi = window
            want = hi - lo + 1
            got = client.received_in(lo, hi)
            expected += want
            received += got
            lossy += got < want
            silent += got == 0 and want > 0
        return {
            "hist": histogram.sparse(c.hist),
            "messages": c.messages,
            "max_latency_ms": c.max_latency,
            "first_recv_ms": c.first_recv,
            "last_recv_ms": c.last_recv,
            "foreign": c.foreign,
            "bars": c.bars,
            "last_bar_recv_ms": c.last_bar_recv,
            "other": dict(c.other),
            "expected": expected,
            "received": received,
            "clients_with_loss": lossy,
            "silent_clients": silent,
            "duplicates": dups,
            "out_of_order": ooo,
            "closes": dict(closes),
            "stuck_closes": dict(stuck_closes),
        }

    async def disconnect(self) -> None:
        for client in self.clients:
            if client.transport is not None and not client.disconnected:
                with contextlib.suppress(Exception):
                    client.transport.disconnect(graceful=False)
        self.clients.clear()
        await asyncio.sleep(0.05)
        self.conn.send(("ok",))


def _close_label(client: Client) -> str:
    if client.close_code is None:
        return "open"
    return str(client.close_code)


async def _worker_loop(conn: Connection) -> None:
    worker = Worker(conn)
    loop = asyncio.get_running_loop()
    loop.add_reader(conn.fileno(), worker.on_command)
    # add_reader made the pipe non-blocking; messages larger than the pipe's buffer need
    # blocking reads and writes (the event loop only waits for it to become readable).
    os.set_blocking(conn.fileno(), True)
    conn.send(("ready", raise_nofile()))
    await worker.done.wait()
    loop.remove_reader(conn.fileno())


def worker_main(conn: Connection) -> None:
    import uvloop

    uvloop.run(_worker_loop(conn))


# -- parent side --------------------------------------------------------------------------


@dataclass(slots=True)
class ConnectResult:
    ok: int
    errors: dict[str, int]
    latencies_ms: list[float]
    burst_s: float

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q / 100.0 + 0.999999) - 1))]


class LoadGen:
    """The parent's handle on the worker processes."""

    def __init__(self, procs: int = 1) -> None:
        ctx = mp.get_context("spawn")
        self.conns: list[Connection] = []
        self.processes: list[Any] = []
        for i in range(procs):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=worker_main,
                args=(child,),
                name=f"bench-loadgen-{i}",
                daemon=True,
            )
            process.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(process)
        self.broken = False
        for conn in self.conns:
            self._reply(conn, 30)
        self._pending_connect = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def _reply(self, conn: Connection, timeout: float) -> Any:
        if not conn.poll(timeout):
            # A late answer would be taken for the answer to the next request: give up on
            # these processes (the caller starts new ones).
            self.broken = True
            raise TimeoutError("a load generator process did not answer in time")
        reply = conn.recv()
        return reply[1] if len(reply) > 1 else None

    def _all(self, request: tuple[Any, ...], timeout: float = 60) -> list[Any]:
        for conn in self.conns:
            conn.send(request)
        return [self._reply(conn, timeout) for conn in self.conns]

    def start_connect(
        self,
        host: str,
        port: int,
        plan: list[tuple[str, bool]],
        timeout: float = 60,
        query: str = "",
    ) -> None:
        """Open every client of `plan` (ticker, stuck) at once; `finish_connect` waits.
        `query` is appended to every client's URL (e.g. `?bars=1m`)."""
        url_base = f"ws://{host}:{port}{PATH}"
        shares: list[list[tuple[str, bool]]] = [[] for _ in self.conns]
        for i, item in enumerate(plan):
            shares[i % len(shares)].append(item)
        for conn, share in zip(self.conns, shares, strict=True):
            conn.send(("connect", url_base, share, timeout, query))
        self._pending_connect = int(timeout) + 30

    def finish_connect(self) -> ConnectResult:
        parts = [self._reply(conn, self._pending_connect) for conn in self.conns]
        errors: Counter[str] = Counter()
        latencies: list[float] = []
        for part in parts:
            errors.update(part["errors"])
            latencies.extend(part["latencies_ms"])
        return ConnectResult(
            ok=len(latencies),
            errors=dict(errors),
            latencies_ms=latencies,
            burst_s=max(p["burst_s"] for p in parts),
        )

    def connect(
        self,
        host: str,
        port: int,
        plan: list[tuple[str, bool]],
        timeout: float = 60,
        query: str = "",
    ) -> ConnectResult:
        self.start_connect(host, port, plan, timeout, query)
        return self.finish_connect()

    def reset(self) -> None:
        self._all(("reset",))

    def progress(self) -> int:
        return sum(self._all(("progress",)))

    def collect(
        self, windows: dict[str, tuple[int, int]], include_stuck: bool = False
    ) -> dict[str, Any]:
        parts = self._all(("collect", windows, include_stuck))
        out: dict[str, Any] = {
            "hist": histogram.merge([p["hist"] for p in parts]),
            "max_latency_ms": max(p["max_latency_ms"] for p in parts),
            "first_recv_ms": min((p["first_recv_ms"] for p in parts if p["messages"]), default=0),
            "last_recv_ms": max(p["last_recv_ms"] for p in parts),
            "last_bar_recv_ms": max(p["last_bar_recv_ms"] for p in parts),
        }
        for key in (
            "messages",
            "foreign",
            "bars",
            "expected",
            "received",
            "clients_with_loss",
            "silent_clients",
            "duplicates",
            "out_of_order",
        ):
            out[key] = sum(p[key] for p in parts)
        for key in ("other", "closes", "stuck_closes"):
            merged: Counter[str] = Counter()
            for p in parts:
                merged.update(p[key])
            out[key] = dict(merged)
        return out

    def stuck_ports(self) -> set[int]:
        """The local ports of the stuck clients (to find their connections in /proc/net/tcp)."""
        return {port for part in self._all(("stuck_ports",)) for port in part}

    def release_stuck(self) -> None:
        self._all(("release",))

    def disconnect(self) -> None:
        self._all(("disconnect",), timeout=60)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()


def main() -> None:
    from bench import measure

    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="One `rate` measurement against a server that is already running.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--tickers", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10_000, help="delivered msg/s in total")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--server-pid", type=int, default=None, help="for CPU and RSS figures")
    parser.add_argument(
        "--bars",
        default="",
        help="candle intervals every client asks for, e.g. 1m or 1m,5m (stockfeed's ?bars=)",
    )
    args = parser.parse_args()
    raise_nofile()
    result = measure.standalone_rate(
        host=args.host,
        port=args.port,
        redis_url=args.redis,
        clients=args.clients,
        tickers=args.tickers,
        rate=args.rate,
        duration=args.duration,
        procs=args.procs,
        server_pid=args.server_pid,
        bars=args.bars,
    )
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
