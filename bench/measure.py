"""Measurement primitives shared by the scenarios: connect a burst, publish and measure.

Every figure printed by the benchmark comes from here: what the load generator received,
what the publisher sent, and /proc readings of the server, Redis and the bench's own
processes over the same window.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from bench import histogram, procstat
from bench.loadgen import ConnectResult, LoadGen
from bench.publisher import Publisher

SATURATED_PCT = 90.0  # one process above this share of a core is the bottleneck
NOISY_PCT = 25.0  # processes outside the bench using more than this: figures are noisy
QUIET_S = 1.0  # a drain ends once nothing arrived for this long...
DRAIN_MAX_S = 5.0  # ...or after this long in any case (what did not arrive by then is lost)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values) - idle) / ticks, sum(values) / ticks


def redis_pid(redis_url: str) -> int | None:
    try:
        client = redis.Redis.from_url(redis_url)
        pid = int(client.info("server")["process_id"])
        client.close()
    except (redis.RedisError, KeyError, ValueError):
        return None
    return pid if os.path.exists(f"/proc/{pid}/stat") else None


@dataclass(slots=True)
class Meters:
    """CPU % over one window of the server tree, Redis, the load generator and the publisher."""

    server: procstat.CpuMeter
    loadgen: list[procstat.CpuMeter]
    publisher: procstat.CpuMeter
    redis: procstat.CpuMeter | None
    _machine0: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def create(
        cls, server_pid: int | None, lg: LoadGen, pub: Publisher, redis_pid: int | None
    ) -> Meters:
        return cls(
            server=procstat.CpuMeter.tree(server_pid) if server_pid else procstat.CpuMeter([]),
            loadgen=[procstat.CpuMeter([pid]) for pid in lg.pids],
            publisher=procstat.CpuMeter([pub.pid]),
            redis=procstat.CpuMeter([redis_pid]) if redis_pid else None,
        )

    def start(self) -> None:
        for meter in (self.server, *self.loadgen, self.publisher):
            meter.start()
        if self.redis is not None:
            self.redis.start()
        self._machine0 = machine_busy_seconds()

    def stop(self) -> dict[str, Any]:
        busy1, total1 = machine_busy_seconds()
        busy0, total0 = self._machine0
        ncpu = os.cpu_count() or 1
        loadgen = [m.stop() for m in self.loadgen]
        out: dict[str, Any] = {
            "server_cpu_pct": self.server.stop() if self.server.pids else None,
            "server_user_pct": self.server.user_pct if self.server.pids else None,
            "server_system_pct": self.server.system_pct if self.server.pids else None,
            "loadgen_cpu_pct": loadgen,
            "publisher_cpu_pct": self.publisher.stop(),
            "redis_cpu_pct": self.redis.stop() if self.redis is not None else None,
            "machine_cpu_pct": 100.0 * ncpu * (busy1 - busy0) / max(1e-9, total1 - total0),
        }
        ours = sum(
            v
            for v in (
                out["server_cpu_pct"],
                out["publisher_cpu_pct"],
                out["redis_cpu_pct"],
            )
            if v
        )
        out["others_cpu_pct"] = max(0.0, out["machine_cpu_pct"] - ours - sum(loadgen))
        limits = []
        if max(loadgen, default=0.0) >= SATURATED_PCT:
            limits.append("load generator")
        if out["publisher_cpu_pct"] >= SATURATED_PCT:
            limits.append("publisher")
        out["bench_limited"] = limits
        return out


@dataclass(slots=True)
class Phase:
    """One publishing window and what came of it."""

    offered_rate: float  # delivered msg/s asked for (publish rate x readers per ticker)
    duration_s: float
    published: int
    publish_rate: float
    publisher_max_lag_s: float
    delivered_rate: float
    expected: int
    received: int
    loss: int
    loss_pct: float
    duplicates: int
    out_of_order: int
    foreign: int
    clients_with_loss: int
    silent_clients: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    cpu: dict[str, Any]
    closes: dict[str, int]
    stuck_closes: dict[str, int]
    other_messages: dict[str, int]
    samples: list[dict[str, Any]] = field(default_factory=list)  # from `sampler`, over time
    # `bar` messages (candles, `?bars=`) received, apart from the price updates above, and
    # per second from the first publish to the last `bar` received.
    bar_messages: int = 0
    bar_rate: float = 0.0

    @property
    def clean(self) -> bool:
        return self.loss == 0 and self.expected > 0

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def connect_summary(result: ConnectResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "errors": result.errors,
        "p50_ms": result.percentile(50),
        "p99_ms": result.percentile(99),
        "max_ms": max(result.latencies_ms, default=None),
        "burst_s": result.burst_s,
    }


def windows_from(
    logs: dict[str, tuple[int, Any]], since_ms: float | None = None
) -> dict[str, tuple[int, int]]:
    """Per ticker the seq range [first, last] published (at or after `since_ms`)."""
    out: dict[str, tuple[int, int]] = {}
    for ticker, (first, stamps) in logs.items():
        last = first + len(stamps) - 1
        start = first
        if since_ms is not None:
            skip = next((i for i, ts in enumerate(stamps) if ts >= since_ms), len(stamps))
            start = first + skip
        if start <= last:
            out[ticker] = (start, last)
    return out


def publish_and_measure(
    lg: LoadGen,
    pub: Publisher,
    *,
    tickers: list[str],
    readers_per_ticker: float,
    rate: float,
    duration: float,
    server_pid: int | None,
    redis_pid: int | None,
    sampler: Callable[[float], dict[str, Any]] | None = None,
    sample_every: float | None = None,
    since_ms: float | None = None,
    already_started: bool = False,
    meters: Meters | None = None,
) -> Phase:
    """Publish `rate` delivered msg/s for `duration` s, let it drain, and read the results.

    `rate` counts deliveries: the publisher sends rate / readers_per_ticker messages per
    second. Loss is counted per reading client over every seq published (at or after
    `since_ms` when given). With `already_started` the caller has already started the
    publisher (and `meters`) itself. `sampler(t)` is called every `sample_every` seconds
    while publishing (and at both ends); what it returns is kept in `samples`.
    """
    publish_rate = rate / readers_per_ticker
    if not already_started:
        lg.reset()
        meters = Meters.create(server_pid, lg, pub, redis_pid)
        meters.start()
        pub.start(tickers, publish_rate, duration)
    assert meters is not None
    t0 = time.monotonic()
    samples: list[dict[str, Any]] = []
    if sampler is not None and sample_every:
        samples.append(sampler(0.0))
        next_sample = sample_every
        while time.monotonic() - t0 < duration - 0.01:
            time.sleep(max(0.0, min(next_sample - (time.monotonic() - t0), 0.25)))
            if time.monotonic() - t0 >= next_sample:
                samples.append(sampler(round(time.monotonic() - t0, 1)))
                next_sample += sample_every
    sent = pub.wait(duration + 60)
    cpu = meters.stop()
    if sampler is not None and sample_every:
        samples.append(sampler(round(time.monotonic() - t0, 1)))

    windows = windows_from(sent["logs"], since_ms)
    # Everything published, to every reader: only reachable when all were subscribed from
    # the start (otherwise the drain ends on a quiet second).
    drain(lg, int(sent["sent"] * readers_per_ticker))
    stats = lg.collect(windows)

    start_ms = sent["started_at"] * 1000.0
    span_s = max(sent["elapsed_s"], (stats["last_recv_ms"] - start_ms) / 1000.0)
    bar_span_s = max(sent["elapsed_s"], (stats["last_bar_recv_ms"] - start_ms) / 1000.0)
    hist = stats["hist"]
    loss = stats["expected"] - stats["received"]
    return Phase(
        offered_rate=rate,
        duration_s=duration,
        published=sent["sent"],
        publish_rate=sent["rate"],
        publisher_max_lag_s=sent["max_lag_s"],
        delivered_rate=stats["messages"] / span_s if span_s > 0 else 0.0,
        expected=stats["expected"],
        received=stats["received"],
        loss=loss,
        loss_pct=100.0 * loss / stats["expected"] if stats["expected"] else 0.0,
        duplicates=stats["duplicates"],
        out_of_order=stats["out_of_order"],
        foreign=stats["foreign"],
        clients_with_loss=stats["clients_with_loss"],
        silent_clients=stats["silent_clients"],
        p50_ms=histogram.percentile(hist, 50),
        p99_ms=histogram.percentile(hist, 99),
        max_ms=stats["max_latency_ms"] if stats["messages"] else None,
        cpu=cpu,
        closes=stats["closes"],
        stuck_closes=stats["stuck_closes"],
        other_messages=stats["other"],
        samples=samples,
        bar_messages=stats["bars"],
        bar_rate=stats["bars"] / bar_span_s if bar_span_s > 0 else 0.0,
    )


def drain(lg: LoadGen, wanted: int, *, max_s: float = DRAIN_MAX_S, poll_s: float = 0.1) -> None:
    """Wait until `wanted` messages arrived, nothing arrived for QUIET_S, or `max_s`."""
    start = last_change = time.monotonic()
    seen = lg.progress()
    while seen < wanted:
        now = time.monotonic()
        if now - last_change >= QUIET_S or now - start >= max_s:
            return
        time.sleep(poll_s)
        current = lg.progress()
        if current != seen:
            seen, last_change = current, time.monotonic()


def settle_rss(pid: int, *, wait_s: float, step_s: float = 0.5) -> int:
    """RSS of the tree once it stops growing (at most `wait_s`)."""
    deadline = time.monotonic() + wait_s
    last = procstat.tree_rss(pid)
    while time.monotonic() < deadline:
        time.sleep(step_s)
        now = procstat.tree_rss(pid)
        if abs(now - last) < 256 * 1024:
            return now
        last = now
    return last


def standalone_rate(
    *,
    host: str,
    port: int,
    redis_url: str,
    clients: int,
    tickers: int,
    rate: float,
    duration: float,
    procs: int,
    server_pid: int | None,
    bars: str = "",
) -> dict[str, Any]:
    """One `rate` measurement against a server somebody else started (bench.loadgen CLI);
    `bars` (e.g. "1m"): every client asks for candles of these intervals."""
    from bench.tickers import TickerNames

    names = TickerNames().fresh(tickers)
    lg = LoadGen(procs)
    pub = Publisher(redis_url)
    try:
        conn = lg.connect(
            host,
            port,
            [(names[i % tickers], False) for i in range(clients)],
            query=f"?bars={bars}" if bars else "",
        )
        time.sleep(1.0)
        phase = publish_and_measure(
            lg,
            pub,
            tickers=names,
            readers_per_ticker=clients / tickers,
            rate=rate,
            duration=duration,
            server_pid=server_pid,
            redis_pid=redis_pid(redis_url),
        )
        lg.disconnect()
    finally:
        lg.close()
        pub.close()
    return {"connect": connect_summary(conn), "phase": phase.to_json()}
