"""`python -m bench.redis_scale`: the same publish load through one Redis and through a
3-shard Redis Cluster, in one run, interleaved, with what each costs.

Both deployments run at once, on free ports (stockfeed.testing: a RedisServer, and a
ClusterTopology of 3 primaries, no replicas unless `--replicas 1`), each with `--relays`
stockfeed processes `--source none` on it. The load generator (bench/loadgen.py) holds
`--clients-per-ticker` WebSocket clients per ticker on every relay, on `--tickers` tickers
per deployment (fresh names each, so the slots spread over the shards). `--sinks` more
connections subscribe every channel and discard what comes: to Redis they are what as
many more stockfeed processes would be (a deployment for a million clients has tens of
processes on each channel), without their CPU on this machine.

Then, `--rounds` times, alternating which goes first, this process publishes for
`--duration` s at `--rate` msg/s on one deployment, then on the other: contract
`price_update`s round-robin over the tickers, written as raw RESP pipelines (`PUBLISH
market:T` to the single Redis, `SPUBLISH market:{T}` to the primary of each ticker's
slot; at most `--pipeline` messages or `--flush-ms` old per node), so the publisher stays
cheap.

Measured over each window (publish start until the clients received everything; CPU is
utime+stime from /proc): each Redis node's CPU, the relays', the load generator's, the
publisher's and the sinks', the machine's; delivered msg/s, loss and latency at the
clients. Printed: one line per window, then the windows added up as a table with the
ratios of issue 14: each shard's CPU / the single Redis's CPU (target < 0.45), and
stockfeed's CPU per delivered message on the cluster / on the single Redis (target within
10 %), and the load average before and after.

    .venv/bin/python -m bench.redis_scale                          # ~100 s
    .venv/bin/python -m bench.redis_scale --rounds 1 --duration 4  # quicker, noisier
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import selectors
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import redis
from redis.crc import key_slot
from stockfeed.testing.processes import RedisServer, StockfeedServer
from stockfeed.testing.redis_topologies import ClusterTopology, have_redis_server

from bench import histogram, procstat
from bench.loadgen import LoadGen, raise_nofile
from bench.measure import drain, machine_busy_seconds
from bench.publisher import Quote, price_update
from bench.tickers import TickerNames

HOST = "127.0.0.1"
TICK_S = 0.001  # at most one pipeline per millisecond
MAX_BATCH = 500
DRAIN_MAX_S = 8.0
SHARD_TARGET = 0.45  # each shard's CPU / the single Redis's CPU, at most
COST_TARGET = 0.10  # stockfeed's CPU per delivered message: cluster vs single, within


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# -- the publisher: raw RESP pipelines, one socket per node --------------------------------


class NodeWriter:
    """A connection to one Redis node: commands are queued, written once per batch, and
    the replies (`:N` subscriber counts, or errors) read as they come."""

    def __init__(self, name: str) -> None:
        host, _, port = name.rpartition(":")
        self.name = name
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.out = bytearray()
        self.pending = 0  # commands in `out`
        self.since = 0.0  # monotonic time the oldest of them was queued
        self.queued = 0
        self.replied = 0
        self.errors = 0
        self.first_error = ""
        self._tail = b""

    def add(self, command: bytes, now: float) -> None:
        if not self.pending:
            self.since = now
        self.out += command
        self.pending += 1
        self.queued += 1

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()
            self.pending = 0
            self.read(block=False)

    def read(self, block: bool) -> None:
        try:
            data = self.sock.recv(1 << 16, 0 if block else socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            raise ConnectionError(f"{self.name} closed the connection")
        lines = (self._tail + data).split(b"\r\n")
        self._tail = lines.pop()
        self.replied += len(lines)
        for line in lines:
            if line.startswith(b"-"):
                self.errors += 1
                self.first_error = self.first_error or line.decode(errors="replace")

    def finish(self, timeout: float = 30.0) -> None:
        """Wait for every reply."""
        self.flush()
        deadline = time.monotonic() + timeout
        while self.replied < self.queued:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {self.queued - self.replied} replies missing")
            self.read(block=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _bulk(text: str) -> bytes:
    raw = text.encode()
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


def resp(*parts: str) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(_bulk(p) for p in parts)


def sink_main(conn: Connection, plans: list[tuple[str, bytes]]) -> None:
    """Open one connection per plan (node, subscribe commands), then read and discard
    whatever arrives until told to stop: subscribers that cost Redis what a stockfeed
    process's connection costs it, and cost almost nothing themselves."""
    selector = selectors.DefaultSelector()
    for name, commands in plans:
        host, _, port = name.rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(commands)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    selector.register(conn, selectors.EVENT_READ)
    conn.send(("ready",))
    while True:
        for key, _ in selector.select(1.0):
            if key.fileobj is conn:
                with contextlib.suppress(EOFError):
                    conn.recv()
                return
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                if not sock.recv(1 << 18):
                    selector.unregister(sock)
            except (BlockingIOError, InterruptedError):
                continue


class Sinks:
    """The parent's handle on the sink process."""

    def __init__(self, plans: list[tuple[str, bytes]]) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=sink_main, args=(child, plans), daemon=True)
        self.process.start()
        child.close()
        if not self._conn.poll(30):
            raise RuntimeError("the sink subscribers did not start")
        self._conn.recv()

    @property
    def pids(self) -> list[int]:
        return [self.process.pid] if self.process.pid is not None else []

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(("stop",))
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


@dataclass
class Deployment:
    """One Redis deployment under test, with its relays and tickers."""

    label: str
    broker_url: str
    tickers: list[str]
    node_of: dict[str, str]  # ticker -> the node its channel lives on
    redis_pids: dict[str, int]  # node -> pid (primaries first, then replicas)
    primaries: list[str]
    command: bytes  # PUBLISH or SPUBLISH
    channel: Any  # ticker -> channel name
    relays: list[StockfeedServer] = field(default_factory=list)
    sinks: int = 0  # sink subscriber connections (per primary)
    seqs: dict[str, int] = field(default_factory=dict)
    quotes: dict[str, Quote] = field(default_factory=dict)
    _heads: dict[str, bytes] = field(default_factory=dict)

    def head(self, ticker: str) -> bytes:
        head = self._heads.get(ticker)
        if head is None:
            cmd = self.command
            head = self._heads[ticker] = b"*3\r\n$%d\r\n%s\r\n" % (len(cmd), cmd) + _bulk(
                self.channel(ticker)
            )
        return head

    def publish(
        self, rate: float, duration: float, rng: random.Random, pipeline: int, flush_ms: float
    ) -> dict[str, Any]:
        """`rate` msg/s for `duration` s round-robin over the tickers; waits for every
        reply. A node's pipeline is written when it holds `pipeline` messages or its
        oldest waited `flush_ms`. Returns what was sent, per node, and each ticker's seq
        window."""
        max_wait = flush_ms / 1000.0
        writers = {name: NodeWriter(name) for name in self.primaries}
        try:
            route = [(t, writers[self.node_of[t]]) for t in self.tickers]
            first = {t: self.seqs.get(t, 0) + 1 for t in self.tickers}
            for t in self.tickers:
                self.quotes.setdefault(t, Quote.start(rng))
            total = int(rate * duration)
            sent, n = 0, len(route)
            t0 = time.monotonic()
            last_batch = t0 - TICK_S
            while sent < total:
                now = time.monotonic()
                due = min(total, int(rate * (now - t0)) + 1)
                if due > sent:
                    last_batch = now
                    for _ in range(min(due - sent, MAX_BATCH)):
                        ticker, writer = route[sent % n]
                        quote = self.quotes[ticker]
                        quote.step(rng)
                        seq = self.seqs[ticker] = self.seqs.get(ticker, 0) + 1
                        body = price_update(ticker, seq, time.time() * 1000.0, quote)
                        writer.add(self.head(ticker) + _bulk(body), now)
                        sent += 1
                    for writer in writers.values():
                        if writer.pending >= pipeline or (
                            writer.pending and now - writer.since >= max_wait
                        ):
                            writer.flush()
                    continue
                wake = max(t0 + sent / rate, last_batch + TICK_S)
                time.sleep(max(0.0, min(0.05, wake - time.monotonic())))
            elapsed = time.monotonic() - t0
            for writer in writers.values():
                writer.finish()
            errors = [f"{w.name}: {w.first_error}" for w in writers.values() if w.errors]
            if errors:
                raise RuntimeError(f"Redis refused messages: {'; '.join(errors)}")
            return {
                "sent": sent,
                "elapsed_s": elapsed,
                "per_node": {name: w.queued for name, w in writers.items()},
                "windows": {t: (first[t], self.seqs[t]) for t in self.tickers},
            }
        finally:
            for writer in writers.values():
                writer.close()

    def sink_plans(self, n: int) -> list[tuple[str, bytes]]:
        """`n` subscribers of every channel: a connection to each primary, each."""
        self.sinks = n
        by_node: dict[str, list[str]] = {}
        for t in self.tickers:
            by_node.setdefault(self.node_of[t], []).append(self.channel(t))
        plans = []
        for _ in range(n):
            for name, channels in by_node.items():
                if self.command == b"PUBLISH":
                    plans.append((name, resp("SUBSCRIBE", *channels)))
                else:  # one slot per SSUBSCRIBE
                    plans.append((name, b"".join(resp("SSUBSCRIBE", ch) for ch in channels)))
        return plans

    def subscribed(self) -> bool:
        """Every relay and sink holds a subscription on every ticker's channel."""
        want = len(self.relays) + self.sinks
        by_node: dict[str, list[str]] = {}
        for t in self.tickers:
            by_node.setdefault(self.node_of[t], []).append(self.channel(t))
        for name, channels in by_node.items():
            host, _, port = name.rpartition(":")
            with redis.Redis(host=host, port=int(port), socket_timeout=5) as r:
                if self.command == b"PUBLISH":
                    counts = [int(c) for _, c in r.pubsub_numsub(*channels)]
                else:
                    pipe = r.pipeline(transaction=False)
                    for ch in channels:  # one slot per command
                        pipe.execute_command("PUBSUB SHARDNUMSUB", ch)
                    counts = [int(c) for ((_, c),) in pipe.execute()]
            if any(c < want for c in counts):
                return False
        return True


# -- one measured window -----------------------------------------------------------------


@dataclass
class Window:
    label: str
    published: int
    publish_s: float
    wall_s: float
    per_node: dict[str, int]
    redis_cpu_s: dict[str, float]  # node -> CPU seconds over the window
    relay_cpu_s: float
    loadgen_cpu_s: float
    publisher_cpu_s: float
    sinks_cpu_s: float
    machine_busy_s: float
    delivered: int
    delivered_span_s: float
    expected: int
    received: int
    duplicates: int
    p50_ms: float | None
    p99_ms: float | None

    def pct(self, seconds: float) -> float:
        return 100.0 * seconds / self.wall_s

    @property
    def delivered_rate(self) -> float:
        return self.delivered / self.delivered_span_s if self.delivered_span_s > 0 else 0.0

    @property
    def relay_us_per_msg(self) -> float:
        return 1e6 * self.relay_cpu_s / self.delivered if self.delivered else float("nan")

    @property
    def others_pct(self) -> float:
        known = (
            sum(self.redis_cpu_s.values())
            + self.relay_cpu_s
            + self.loadgen_cpu_s
            + self.publisher_cpu_s
            + self.sinks_cpu_s
        )
        return self.pct(max(0.0, self.machine_busy_s - known))

    def line(self) -> str:
        nodes = " ".join(f"{self.pct(s):.1f}%" for s in self.redis_cpu_s.values())
        lost = self.expected - self.received
        return (
            f"  {self.label:<8} published {self.published / self.publish_s:,.0f}/s, "
            f"delivered {self.delivered_rate:,.0f}/s (lost {lost}, dup {self.duplicates}), "
            f"p99 {self.p99_ms} ms | CPU redis {nodes} | "
            f"stockfeed {self.pct(self.relay_cpu_s):.1f}%"
            f" = {self.relay_us_per_msg:.2f} us/msg | loadgen {self.pct(self.loadgen_cpu_s):.0f}%"
            f" | publisher {self.pct(self.publisher_cpu_s):.0f}%"
            f" | sinks {self.pct(self.sinks_cpu_s):.0f}% | others {self.others_pct:.0f}%"
        )


def measure(
    dep: Deployment, lg: LoadGen, sinks: Sinks | None, args: argparse.Namespace, rng: random.Random
) -> Window:
    fanout = args.relays * args.clients_per_ticker
    relay_pids = [p for relay in dep.relays for p in procstat.descendants(relay.pid)]
    me = [os.getpid()]
    sink_pids = sinks.pids if sinks is not None else []
    lg.reset()
    cpu = procstat.cpu_seconds
    redis0 = {name: cpu([pid]) for name, pid in dep.redis_pids.items()}
    relay0, lg0, pub0, sink0 = cpu(relay_pids), cpu(lg.pids), cpu(me), cpu(sink_pids)
    busy0, _ = machine_busy_seconds()
    t0 = time.monotonic()
    result = dep.publish(args.rate, args.duration, rng, args.pipeline, args.flush_ms)
    drain(lg, result["sent"] * fanout, max_s=DRAIN_MAX_S, poll_s=0.05)
    wall = time.monotonic() - t0
    busy1, _ = machine_busy_seconds()
    redis1 = {name: cpu([pid]) for name, pid in dep.redis_pids.items()}
    relay1, lg1, pub1, sink1 = cpu(relay_pids), cpu(lg.pids), cpu(me), cpu(sink_pids)
    stats = lg.collect(result["windows"])
    span = (stats["last_recv_ms"] - stats["first_recv_ms"]) / 1000.0
    return Window(
        label=dep.label,
        published=result["sent"],
        publish_s=result["elapsed_s"],
        wall_s=wall,
        per_node=result["per_node"],
        redis_cpu_s={name: redis1[name] - redis0[name] for name in dep.redis_pids},
        relay_cpu_s=relay1 - relay0,
        loadgen_cpu_s=lg1 - lg0,
        publisher_cpu_s=pub1 - pub0,
        sinks_cpu_s=sink1 - sink0,
        machine_busy_s=busy1 - busy0,
        delivered=stats["messages"],
        delivered_span_s=span,
        expected=stats["expected"],
        received=stats["received"],
        duplicates=stats["duplicates"],
        p50_ms=histogram.percentile(stats["hist"], 50),
        p99_ms=histogram.percentile(stats["hist"], 99),
    )


# -- setting up --------------------------------------------------------------------------


def wait_for(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            if check():
                return
        except Exception as exc:  # not ready yet; said if it never is
            last = exc
        if time.monotonic() > deadline:
            why = f" (last: {type(last).__name__}: {last})" if last else ""
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}{why}")
        time.sleep(0.1)


def start_relays(dep: Deployment, n: int, logs: Path, shards: int | None) -> None:
    for i in range(n):
        relay = StockfeedServer(
            ["--source", "none", "--broker", dep.broker_url, "--log-level", "warning"],
            logs / f"{dep.label}-relay{i}.log",
            name=f"{dep.label}-relay{i}",
            env={"STOCKFEED_MAX_TICKERS": "5000"},
        )
        dep.relays.append(relay)
        relay.start().wait_ready(timeout=60)

        def connected(r: StockfeedServer = relay) -> bool:
            broker = httpx.get(r.base + "/api/ws/health", timeout=2).json()["broker"]
            return broker["state"] == "connected" and (
                shards is None or broker.get("shards_connected") == shards
            )

        wait_for(f"{relay.name}'s broker", connected, 30)


def single_deployment(redis_server: RedisServer, tickers: list[str]) -> Deployment:
    name = f"{HOST}:{redis_server.port}"
    return Deployment(
        label="single",
        broker_url=redis_server.url,
        tickers=tickers,
        node_of=dict.fromkeys(tickers, name),
        redis_pids={name: redis_server.pid},
        primaries=[name],
        command=b"PUBLISH",
        channel=lambda t: f"market:{t}",
    )


def cluster_deployment(cluster: ClusterTopology, tickers: list[str]) -> Deployment:
    owners = cluster.slot_owners()
    node_of = {t: owners[key_slot(f"market:{{{t}}}".encode())] for t in tickers}
    primaries = [n.name for n in cluster.primary_nodes()]
    pids: dict[str, int] = {}
    for name in primaries:
        node = cluster.by_name(name)
        assert node.pid is not None
        pids[name] = node.pid
    for name in primaries:
        for replica in cluster.replicas_of(cluster.by_name(name)):
            assert replica.pid is not None
            pids[replica.name] = replica.pid
    return Deployment(
        label="cluster",
        broker_url=cluster.url,
        tickers=tickers,
        node_of=node_of,
        redis_pids=pids,
        primaries=primaries,
        command=b"SPUBLISH",
        channel=lambda t: f"market:{{{t}}}",
    )


def idle_cpu(deps: list[Deployment], seconds: float) -> dict[str, float]:
    """Each node's CPU % with nothing published (the cluster bus, the relays' PINGs)."""
    pids = {f"{d.label} {n}": p for d in deps for n, p in d.redis_pids.items()}
    before = {k: procstat.cpu_seconds([p]) for k, p in pids.items()}
    time.sleep(seconds)
    return {k: 100.0 * (procstat.cpu_seconds([p]) - before[k]) / seconds for k, p in pids.items()}


# -- the report --------------------------------------------------------------------------


@dataclass
class Totals:
    """One deployment's windows added up: CPU seconds over wall seconds, messages over
    the time they took (finer than a median of short windows: /proc counts 10 ms ticks)."""

    windows: list[Window]

    def sum(self, key: Any) -> float:
        return float(sum(key(w) for w in self.windows))

    def pct(self, key: Any) -> float:
        return 100.0 * self.sum(key) / self.sum(lambda w: w.wall_s)

    def per(self, key: Any, count: Any) -> float:
        n = self.sum(count)
        return 1e6 * self.sum(key) / n if n else float("nan")


def report(deps: list[Deployment], windows: list[Window], args: argparse.Namespace) -> str:
    single_dep, cluster_dep = deps
    header = [
        "",
        "published/s",
        "delivered/s",
        "Redis CPU (per node)",
        "Redis us/publish",
        "stockfeed CPU",
        "stockfeed us/delivered",
        "lost",
        "p99 ms",
    ]
    rows = [header]
    totals: dict[str, Totals] = {}
    for dep in deps:
        t = totals[dep.label] = Totals([w for w in windows if w.label == dep.label])
        cpus = [t.pct(lambda w, n=n: w.redis_cpu_s[n]) for n in dep.redis_pids]
        us_pub = [
            t.per(lambda w, n=n: w.redis_cpu_s[n], lambda w, n=n: w.per_node[n])
            for n in dep.primaries
        ]
        p99s = [w.p99_ms for w in t.windows if w.p99_ms is not None]
        rows.append(
            [
                "single Redis" if dep is single_dep else f"cluster, {len(dep.primaries)} shards",
                f"{t.sum(lambda w: w.published) / t.sum(lambda w: w.publish_s):,.0f}",
                f"{t.sum(lambda w: w.delivered) / t.sum(lambda w: w.delivered_span_s):,.0f}",
                " | ".join(f"{v:.2f}%" for v in cpus),
                " | ".join(f"{v:.2f}" for v in us_pub),
                f"{t.pct(lambda w: w.relay_cpu_s):.1f}%",
                f"{t.per(lambda w: w.relay_cpu_s, lambda w: w.delivered):.2f}",
                f"{int(t.sum(lambda w: w.expected - w.received))}",
                f"{statistics.median(p99s):.2f}" if p99s else "-",
            ]
        )
    single, cluster = totals["single"], totals["cluster"]
    single_cpu = single.pct(lambda w: sum(w.redis_cpu_s.values()))
    ratios = [
        cluster.pct(lambda w, n=n: w.redis_cpu_s[n]) / single_cpu for n in cluster_dep.primaries
    ]
    cost_ratio = cluster.per(lambda w: w.relay_cpu_s, lambda w: w.delivered) / single.per(
        lambda w: w.relay_cpu_s, lambda w: w.delivered
    )
    # The same ratios window by window (single and cluster windows of one round).
    rounds = []
    for s_w, c_w in zip(single.windows, cluster.windows, strict=False):
        base = s_w.pct(sum(s_w.redis_cpu_s.values()))
        shard = [
            c_w.pct(c_w.redis_cpu_s[n]) / base if base else float("nan")
            for n in cluster_dep.primaries
        ]
        rounds.append(
            "/".join(f"{r:.2f}" for r in shard)
            + f" {c_w.relay_us_per_msg / s_w.relay_us_per_msg:.2f}"
        )
    shards_ok = all(r < SHARD_TARGET for r in ratios)
    cost_ok = abs(cost_ratio - 1) <= COST_TARGET
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    per_shard = {
        n: cluster.sum(lambda w, n=n: w.per_node[n]) / cluster.sum(lambda w: w.publish_s)
        for n in cluster_dep.primaries
    }
    tickers_per = Counter(cluster_dep.node_of[t] for t in cluster_dep.tickers)
    lines += [
        "",
        "cluster shard CPU / single Redis CPU: "
        + " | ".join(f"{r:.2f}" for r in ratios)
        + f"  (target < {SHARD_TARGET:.2f} each: {'met' if shards_ok else 'NOT met'})",
        f"stockfeed CPU per delivered message, cluster / single: {cost_ratio:.3f}"
        f"  (target within {COST_TARGET:.0%}: {'met' if cost_ok else 'NOT met'})",
        "per round (shard ratios, stockfeed cost ratio): " + ", ".join(rounds),
        "messages per shard: "
        + " | ".join(f"{per_shard[n]:,.0f}/s ({tickers_per[n]} tickers)" for n in per_shard),
        f"{len(single.windows)} windows each of {args.duration:g} s at {args.rate:,.0f} msg/s"
        f" (pipelines of <= {args.pipeline} per node, <= {args.flush_ms:g} ms old),"
        f" {args.relays} relays x {args.tickers} tickers x {args.clients_per_ticker} clients"
        f" each, {args.sinks} sink subscribers; cluster replicas: {args.replicas}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_scale", description=__doc__)
    parser.add_argument("--rate", type=float, default=3_000, help="published msg/s")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per window")
    parser.add_argument("--rounds", type=int, default=4, help="windows per deployment")
    parser.add_argument("--tickers", type=int, default=300, help="tickers per deployment")
    parser.add_argument("--relays", type=int, default=2, help="stockfeed processes each")
    parser.add_argument("--clients-per-ticker", type=int, default=1, help="on each relay")
    parser.add_argument(
        "--sinks",
        type=int,
        default=48,
        help="more subscribers of every channel (a connection per primary each) that read "
        "and discard: Redis's side of that many more stockfeed processes",
    )
    parser.add_argument("--replicas", type=int, default=0, help="per cluster shard")
    parser.add_argument(
        "--pipeline", type=int, default=10, help="messages per pipeline to a node (at most)"
    )
    parser.add_argument(
        "--flush-ms",
        type=float,
        default=10.0,
        help="write a node's pipeline once its oldest message waited this long "
        "(`--pipeline 1000000 --flush-ms 0`: one pipeline per node each millisecond)",
    )
    parser.add_argument("--procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not have_redis_server():
        print("redis-server and redis-cli are needed (apt-get install redis)", file=sys.stderr)
        return 1
    raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-scale-"))
    logs = Path(__file__).resolve().parent / "results" / "logs" / workdir.name
    rng = random.Random(args.seed)
    names = TickerNames()
    single_redis = RedisServer(workdir / "single", log_path=workdir / "single.log")
    (workdir / "single").mkdir(parents=True)
    cluster = ClusterTopology(workdir / "cluster", replicas=args.replicas, node_timeout_ms=5000)
    deps: list[Deployment] = []
    lg: LoadGen | None = None
    sinks: Sinks | None = None
    print(f"load average at start: {loadavg()}", flush=True)
    try:
        single_redis.start()
        cluster.start()
        deps = [
            single_deployment(single_redis, names.fresh(args.tickers)),
            cluster_deployment(cluster, names.fresh(args.tickers)),
        ]
        for dep in deps:
            start_relays(dep, args.relays, logs, 3 if dep.label == "cluster" else None)
        if args.sinks:
            sinks = Sinks([plan for dep in deps for plan in dep.sink_plans(args.sinks)])
        lg = LoadGen(args.procs)
        for dep in deps:
            plan = [(t, False) for t in dep.tickers for _ in range(args.clients_per_ticker)]
            for relay in dep.relays:
                done = lg.connect(HOST, relay.port, plan, timeout=60)
                if done.ok != len(plan):
                    raise RuntimeError(f"{relay.name}: {done.ok} of {len(plan)} connected")
            wait_for(f"{dep.label}: every relay subscribed", dep.subscribed, 60)
        for dep in deps:  # warm-up, not measured
            dep.publish(args.rate, 1.0, rng, args.pipeline, args.flush_ms)
        time.sleep(1.0)
        idle = idle_cpu(deps, 4.0)
        print(
            "idle CPU (nothing published): " + ", ".join(f"{k} {v:.1f}%" for k, v in idle.items()),
            flush=True,
        )
        windows: list[Window] = []
        for i in range(args.rounds):
            order = deps if i % 2 == 0 else deps[::-1]
            for dep in order:
                window = measure(dep, lg, sinks, args, rng)
                windows.append(window)
                print(window.line(), flush=True)
                time.sleep(0.5)
        print()
        print(report(deps, windows, args))
        print(f"load average at end: {loadavg()} ({os.cpu_count()} CPUs)")
        worst = max(w.pct(w.loadgen_cpu_s) for w in windows)
        if worst > 90:
            print(f"!! the load generator used {worst:.0f}% of a core: try --procs 2")
        return 0
    finally:
        if lg is not None:
            with contextlib.suppress(Exception):
                lg.disconnect()
            lg.close()
        if sinks is not None:
            sinks.close()
        for dep in deps:
            for relay in dep.relays:
                relay.stop(timeout=10)
        cluster.stop()
        single_redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
