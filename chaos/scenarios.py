"""The fault scenarios. Each returns rows of (measure, value) for the report.

Four break the deployment (Redis, the updater, a restart, a leak check); `hostile` is the
set of hostile clients (chaos/hostile.py); `cluster-failover` and `sentinel-failover`
SIGKILL a Redis primary under load (chaos/failover.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import connect

from chaos.clients import FeedClient, start_all, stop_all, total, wait_until
from chaos.failover import cluster_failover, sentinel_failover
from chaos.hostile import hostile
from chaos.procs import RedisProc, ServerProc, free_port

Rows = list[tuple[str, str]]
MB = 1024 * 1024


@dataclass
class Sizes:
    outage_clients: int = 200
    outage_seconds: float = 8.0
    kill_clients: int = 150
    failover_clients: int = 200  # cluster-failover, sentinel-failover (chaos/failover.py)
    storm_clients: int = 3000
    leak_cycles: int = 10_000
    leak_sub_cycles: int = 1000
    leak_connections: int = 5
    # hostile (chaos/hostile.py): attack lengths and sizes; each is measured until
    # `hostile_after_seconds` after it stopped.
    hostile_flood_seconds: float = 20.0
    hostile_rest_requests: int = 300
    hostile_slow_sockets: int = 500
    hostile_slow_seconds: float = 12.0
    hostile_churn_seconds: float = 8.0
    hostile_conns: int = 1000
    hostile_conn_seconds: float = 8.0
    hostile_after_seconds: float = 15.0
    hostile_attacks: tuple[str, ...] = ()  # run only these (run.py --attacks); () = all

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            hostile_flood_seconds=10.0,
            hostile_rest_requests=150,
            hostile_slow_sockets=250,
            hostile_slow_seconds=10.0,
            hostile_churn_seconds=6.0,
            hostile_conns=500,
            hostile_conn_seconds=6.0,
            hostile_after_seconds=12.0,
            outage_clients=100,
            outage_seconds=5.0,
            kill_clients=60,
            failover_clients=100,
            storm_clients=600,
            leak_cycles=2000,
            leak_sub_cycles=200,
            leak_connections=3,
        )


TICKERS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA", "META", "NFLX", "AMD", "INTC"]


class PeakRss:
    """Samples a server's resident memory (all its processes) every 100 ms."""

    def __init__(self, server: ServerProc) -> None:
        self.server = server
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            rss = await asyncio.to_thread(self.server.rss)
            self.peak = max(self.peak, rss)
            await asyncio.sleep(0.1)

    def __enter__(self) -> PeakRss:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


def make_clients(url: str, n: int, per_client: int, seed: int) -> list[FeedClient]:
    rng = random.Random(seed)
    return [
        FeedClient(url, rng.sample(TICKERS, per_client), random.Random(rng.random()))
        for _ in range(n)
    ]


def seq_rows(clients: list[FeedClient]) -> Rows:
    score = total(clients)
    return [
        ("updates received", f"{score.updates}"),
        ("messages lost (silent seq gaps)", f"{score.missing}"),
        ("duplicates", f"{score.duplicates}"),
        ("gaps reported (gap snapshots)", f"{score.gap_snapshots} ({score.reported} seqs)"),
    ]


def sim_args(redis_url: str, tick: float, *extra: str) -> list[str]:
    return [
        "--source",
        "sim",
        "--sim-tick-interval",
        str(tick),
        "--tickers",
        ",".join(TICKERS),
        "--broker",
        redis_url,
        *extra,
    ]


def fmt_s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


# --- (a) Redis outage under load ---------------------------------------------------------------


async def redis_outage(sizes: Sizes) -> Rows:
    redis_proc = RedisProc()
    redis_proc.start()
    server = ServerProc("outage", free_port(), sim_args(redis_proc.url, 0.1, "--leader-ttl", "2"))
    try:
        await asyncio.to_thread(server.wait_ready)
        clients = make_clients(server.ws, sizes.outage_clients, 3, seed=1)
        with PeakRss(server) as peak:
            tasks = await start_all(clients)
            await asyncio.sleep(3)
            disconnects_before = sum(c.score.connects for c in clients)
            redis_proc.kill()
            killed_at = time.monotonic()
            statuses: set[str] = set()
            problems: set[str] = set()
            while time.monotonic() - killed_at < sizes.outage_seconds:
                health = await asyncio.to_thread(server.health)
                if health is None:
                    statuses.add("no answer")
                else:
                    statuses.add(health["status"])
                    problems.update(health["problems"])
                await asyncio.sleep(0.25)
            redis_proc.start()
            back_at = time.monotonic()
            back_wall_ms = time.time() * 1000
            for c in clients:
                c.watch_published_after(back_wall_ms)
            everyone = await wait_until(lambda: all(c.first_published_after for c in clients), 90)
            arrivals = [c.first_published_after for c in clients if c.first_published_after]
            health_ok = await wait_until(
                lambda: (server.health() or {}).get("status") == "ok", 30, step=0.2
            )
            health_ok_after = time.monotonic() - back_at if health_ok else None
            await asyncio.sleep(3)
            reconnects = sum(c.score.connects for c in clients) - disconnects_before
            alive = server.proc.poll() is None
            await stop_all(clients, tasks)
        rows: Rows = [
            ("clients x tickers each", f"{len(clients)} x 3 of {len(TICKERS)}, 10 updates/s each"),
            ("outage", f"{sizes.outage_seconds:g} s (redis-server SIGKILLed, restarted empty)"),
            ("server alive", "yes" if alive else "NO"),
            (
                "health during outage",
                f"{', '.join(sorted(statuses))}: {', '.join(sorted(problems))}",
            ),
            ("client reconnects during outage", f"{reconnects}"),
            (
                "recovery: Redis back -> first update at every client",
                fmt_s(max(arrivals) - back_at) if everyone else f"only {len(arrivals)} clients",
            ),
            ("recovery: first client", fmt_s(min(arrivals) - back_at) if arrivals else "never"),
            ("health back to ok after", fmt_s(health_ok_after)),
            *seq_rows(clients),
            ("peak RSS (server)", f"{peak.peak / MB:.1f} MiB"),
            ("server log: tracebacks", f"{sum('Traceback' in p for p in server.log_problems())}"),
        ]
        return rows
    finally:
        server.stop()
        redis_proc.kill()


# --- (b) updater killed with SIGKILL ------------------------------------------------------------


def leader_pid(server: ServerProc) -> int | None:
    health = server.health()
    leader = (health or {}).get("updater", {}).get("leader")
    if not leader:
        return None
    return int(str(leader).rsplit(":", 1)[1])


def worker_count(server: ServerProc) -> int:
    """uvicorn's worker processes (multiprocessing spawns them; a restarted one counts)."""
    count = 0
    for pid in server.pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                count += b"spawn_main" in f.read()
        except OSError:
            continue
    return count


async def updater_kill(sizes: Sizes) -> Rows:
    redis_proc = RedisProc()
    redis_proc.start()
    ttl = 3.0
    server = ServerProc(
        "updater-kill",
        free_port(),
        sim_args(redis_proc.url, 0.1, "--workers", "3", "--leader-ttl", f"{ttl:g}"),
    )
    try:
        await asyncio.to_thread(server.wait_ready)
        pid = None
        await wait_until(lambda: len(server.pids()) >= 4, 30)  # supervisor + 3 workers
        for _ in range(100):
            pid = await asyncio.to_thread(leader_pid, server)
            if pid is not None:
                break
            await asyncio.sleep(0.1)
        if pid is None or pid not in server.pids():
            return [("error", f"no updater found among {server.pids()} (leader pid {pid})")]
        clients = make_clients(server.ws, sizes.kill_clients, 3, seed=2)
        with PeakRss(server) as peak:
            tasks = await start_all(clients)
            await asyncio.sleep(3)
            connects_before = sum(c.score.connects for c in clients)
            kill_wall_ms = time.time() * 1000
            for c in clients:
                c.watch_published_after(kill_wall_ms)
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            # Updates published after the kill can only come from the new updater.
            resumed = await wait_until(lambda: any(c.first_published_after for c in clients), 60)
            everyone = await wait_until(lambda: all(c.first_published_after for c in clients), 60)
            arrivals = [c.first_published_after for c in clients if c.first_published_after]
            new_leader = await asyncio.to_thread(leader_pid, server)
            await asyncio.sleep(3)
            reconnects = sum(c.score.connects for c in clients) - connects_before
            workers_after = worker_count(server)
            await stop_all(clients, tasks)
        return [
            ("workers / leader TTL", f"3 / {ttl:g} s, {len(clients)} clients x 3 tickers"),
            ("killed updater pid", f"{pid} -> new updater pid {new_leader}"),
            (
                "seq advances again after (first client)",
                fmt_s(min(arrivals) - killed_at) if resumed else "never",
            ),
            (
                "every client has a new update after",
                fmt_s(max(arrivals) - killed_at) if everyone else f"only {len(arrivals)}",
            ),
            ("clients that reconnected (were on the killed worker)", f"{reconnects}"),
            ("workers alive afterwards", f"{workers_after}"),
            *seq_rows(clients),
            ("peak RSS (all workers)", f"{peak.peak / MB:.1f} MiB"),
        ]
    finally:
        server.stop()
        redis_proc.kill()


# --- (c) reconnect storm after a restart ----------------------------------------------------------


async def reconnect_storm(sizes: Sizes) -> Rows:
    redis_proc = RedisProc()
    redis_proc.start()
    port = free_port()
    args = sim_args(redis_proc.url, 1.0)
    first = ServerProc("storm-1", port, args)
    second: ServerProc | None = None
    try:
        await asyncio.to_thread(first.wait_ready)
        clients = make_clients(first.ws, sizes.storm_clients, 2, seed=3)
        tasks = await start_all(clients)
        await asyncio.sleep(3)
        failures_before = sum(c.score.handshake_failures for c in clients)
        stopped_at = time.monotonic()
        shutdown_s = await asyncio.to_thread(first.stop)
        notices = sum(c.score.shutdown_notices for c in clients)
        closes_1001 = sum(c.score.closes[1001] for c in clients)
        second = ServerProc("storm-2", port, args)
        ready_s = await asyncio.to_thread(second.wait_ready)
        ready_at = time.monotonic()
        with PeakRss(second) as peak:
            everyone = await wait_until(
                lambda: all(c.connected and c.subscribed_at > stopped_at for c in clients), 180
            )
            back = [c.subscribed_at for c in clients if c.subscribed_at > stopped_at]
            await asyncio.sleep(5)  # live updates after the storm: any loss shows here
            alive = second.proc.poll() is None
            await stop_all(clients, tasks)
        failures = sum(c.score.handshake_failures for c in clients) - failures_before
        return [
            ("clients", f"{len(clients)} x 2 tickers, Redis broker, resume on reconnect"),
            ("SIGTERM -> old server exited", fmt_s(shutdown_s)),
            ("server_shutdown notices / 1001 closes", f"{notices} / {closes_1001}"),
            ("new server ready after start", fmt_s(ready_s)),
            (
                "all clients back (from new server ready)",
                fmt_s(max(back) - ready_at) if everyone else f"only {len(back)} back",
            ),
            ("all clients back (from SIGTERM)", fmt_s(max(back) - stopped_at) if back else "-"),
            ("handshake failures (refused while down, timeouts)", f"{failures}"),
            ("new server alive", "yes" if alive else "NO"),
            *seq_rows(clients),
            ("peak RSS (new server)", f"{peak.peak / MB:.1f} MiB"),
            (
                "server log: errors/tracebacks",
                f"{len(first.log_problems()) + len(second.log_problems())}",
            ),
        ]
    finally:
        first.stop()
        if second is not None:
            second.stop()
        redis_proc.kill()


# --- (d) leak check -------------------------------------------------------------------------------


async def _cycle(url: str, ticker: str) -> None:
    async with connect(url + "/ws", ping_interval=None, compression=None) as ws:
        await ws.send(json.dumps({"action": "subscribe", "tickers": [ticker]}))
        while True:  # the acknowledgement, then go
            if '"subscribed"' in str(await ws.recv()):
                return


async def _connect_cycles(url: str, n: int, concurrency: int = 50) -> int:
    failures = 0
    counter = iter(range(n))

    async def worker() -> None:
        nonlocal failures
        for i in counter:
            try:
                await _cycle(url, TICKERS[i % len(TICKERS)])
            except Exception:
                failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


async def _sub_cycles(url: str, n: int) -> int:
    async with connect(url + "/ws", ping_interval=None, compression=None) as ws:
        acks = 0
        for i in range(n):
            ticker = TICKERS[i % len(TICKERS)]
            await ws.send(json.dumps({"action": "subscribe", "tickers": [ticker]}))
            await ws.send(json.dumps({"action": "unsubscribe", "tickers": [ticker]}))
        # Read until the last `unsubscribed` (updates and snapshots come in between).
        while acks < n:
            if '"unsubscribed"' in str(await asyncio.wait_for(ws.recv(), 30)):
                acks += 1
        return acks


async def _settled_rss(server: ServerProc) -> int:
    await asyncio.sleep(3)
    return server.rss()


async def leak_check(sizes: Sizes) -> Rows:
    # The message rate limit would hold 1000 subscribe/unsubscribe pairs to 20 msg/s;
    # lifted here (it is what is measured elsewhere). The resume history rings are made
    # small so that they are full before the measure: they grow by design up to 2000
    # updates a ticker (~1 MiB each), which would read as a leak in a short run.
    env = {
        "STOCKFEED_CLIENT_MESSAGES_PER_SECOND": "100000",
        "STOCKFEED_CLIENT_MESSAGE_BURST": "100000",
        "STOCKFEED_RESUME_HISTORY": "20",
    }
    server = ServerProc(
        "leak",
        free_port(),
        ["--source", "sim", "--sim-tick-interval", "0.5", "--tickers", ",".join(TICKERS)],
        env=env,
    )
    try:
        await asyncio.to_thread(server.wait_ready)
        start_rss = server.rss()
        # Warm-up: the allocator's arenas and every lazy structure reach their working size.
        await _connect_cycles(server.ws, 1000)
        before = await _settled_rss(server)
        started = time.monotonic()
        failures = await _connect_cycles(server.ws, sizes.leak_cycles)
        connect_s = time.monotonic() - started
        after_connect = await _settled_rss(server)
        started = time.monotonic()
        acks = await asyncio.gather(
            *(_sub_cycles(server.ws, sizes.leak_sub_cycles) for _ in range(sizes.leak_connections))
        )
        sub_s = time.monotonic() - started
        after_sub = await _settled_rss(server)
        health: dict[str, Any] = await asyncio.to_thread(
            lambda: httpx.get(server.base + "/api/ws/health", timeout=5).json()
        )
        return [
            ("RSS at start", f"{start_rss / MB:.1f} MiB"),
            ("RSS after 1000 warm-up cycles (before)", f"{before / MB:.1f} MiB"),
            (
                f"RSS after {sizes.leak_cycles} connect/subscribe/close cycles",
                f"{after_connect / MB:.1f} MiB (delta {(after_connect - before) / MB:+.2f} MiB, "
                f"{(after_connect - before) / sizes.leak_cycles:+.0f} B/cycle, "
                f"{connect_s:.1f} s, {failures} failed)",
            ),
            (
                f"RSS after {sizes.leak_sub_cycles} sub/unsub cycles x {sizes.leak_connections}",
                f"{after_sub / MB:.1f} MiB (delta {(after_sub - after_connect) / MB:+.2f} MiB, "
                f"{sub_s:.1f} s, {sum(acks)} acks)",
            ),
            ("connections left open on the server", f"{health['connections']}"),
            ("server log: tracebacks", f"{sum('Traceback' in p for p in server.log_problems())}"),
        ]
    finally:
        server.stop()


SCENARIOS = {
    "redis-outage": redis_outage,
    "updater-kill": updater_kill,
    "reconnect-storm": reconnect_storm,
    "leak": leak_check,
    "hostile": hostile,
    "cluster-failover": cluster_failover,
    "sentinel-failover": sentinel_failover,
}
