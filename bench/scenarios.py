"""The scenarios: each one drives a running server and returns its figures.

A scenario is a class with a `name`, the `columns` it contributes to the summary table, a
`supports(server)` check and a `run(ctx, session)` method. To add one (for example `resume`,
once the server supports it), write the class and add it to SCENARIOS; `bench.run` picks it
up by name, prints its columns and writes its figures to the JSON results.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from bench import measure, procstat
from bench.loadgen import LoadGen
from bench.measure import Phase
from bench.publisher import Publisher
from bench.servers import HOST, SUBJECT, RunningServer, ServerSpec
from bench.tickers import TickerNames

# -- settings -----------------------------------------------------------------------------


@dataclass(slots=True)
class RateSize:
    clients: int = 1000
    tickers: int = 10
    rate: float = 10_000  # delivered msg/s
    duration: float = 10.0


@dataclass(slots=True)
class BarsSize:
    """`rate`'s load, twice: plain subscribers, then every one asking for `intervals`."""

    clients: int = 1000
    tickers: int = 10
    rate: float = 10_000  # delivered price updates/s
    duration: float = 10.0
    intervals: tuple[str, ...] = ("1m",)


@dataclass(slots=True)
class MaxSize:
    clients: int = 1000
    tickers: int = 10
    probe_s: float = 5.0
    start: float = 25_000
    ceiling: float = 3_200_000
    p99_limit_ms: float = 250.0
    tolerance: float = 0.10  # stop bisecting when (fail - pass) / pass is below this
    max_probes: int = 12


@dataclass(slots=True)
class ConnSize:
    clients: int = 5000
    tickers: int = 10
    settle_s: float = 4.0


@dataclass(slots=True)
class FreshSize:
    clients: int = 1000
    tickers: int = 10
    rate: float = 10_000
    duration: float = 8.0
    settle_s: float = 1.0  # loss counts from this long after the last client connected


@dataclass(slots=True)
class SlowSize:
    normal: int = 200
    stuck: int = 100
    tickers: int = 10
    rate: float = 20_000  # delivered to the normal clients (each gets rate / normal msg/s)
    baseline_s: float = 10.0
    stuck_s: float = 40.0
    sample_s: float = 4.0
    release_s: float = 5.0


@dataclass(slots=True)
class WideSize:
    """Many tickers, few watchers each (a whole market): each broker message is taken in
    for `readers` clients only, so taking it in is what costs."""

    tickers: int = 2000
    rates: tuple[float, ...] = (10_000, 20_000, 40_000)  # with one client per ticker
    shared_readers: int = 5  # then `shared_rate` with this many clients per ticker
    shared_rate: float = 10_000
    duration: float = 10.0
    profile: bool = True  # py-spy of stockfeed's first window, saved with the run


@dataclass(slots=True)
class Sizes:
    rate: RateSize = field(default_factory=RateSize)
    max: MaxSize = field(default_factory=MaxSize)
    conn: ConnSize = field(default_factory=ConnSize)
    fresh: FreshSize = field(default_factory=FreshSize)
    slow: SlowSize = field(default_factory=SlowSize)
    bars: BarsSize = field(default_factory=BarsSize)
    wide: WideSize = field(default_factory=WideSize)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            rate=RateSize(duration=2.0),
            bars=BarsSize(duration=2.0),
            wide=WideSize(duration=3.0, rates=(10_000, 20_000), profile=False),
            max=MaxSize(probe_s=2.0, start=50_000, tolerance=0.3, max_probes=7),
            conn=ConnSize(clients=1000, settle_s=1.5),
            fresh=FreshSize(duration=3.0, settle_s=0.5),
            slow=SlowSize(
                normal=100,
                stuck=50,
                rate=10_000,
                baseline_s=2.0,
                stuck_s=5.0,
                sample_s=1.0,
                release_s=1.0,
            ),
        )


# -- context ------------------------------------------------------------------------------


Launcher = Callable[[], AbstractContextManager[RunningServer]]


class Printer(Protocol):
    def __call__(self, text: str) -> None: ...


@dataclass
class Context:
    sizes: Sizes
    redis_url: str
    lg: LoadGen
    pub: Publisher
    names: TickerNames
    redis_pid: int | None
    say: Printer
    results_dir: Path = Path("bench/results")  # where a scenario may save files (profiles)
    run_id: str = ""


class Session:
    """A running server plus a way to replace it (a scenario may need a fresh one)."""

    def __init__(self, launcher: Launcher, spec_name: str = "") -> None:
        self._launcher = launcher
        self.spec_name = spec_name
        self._cm: AbstractContextManager[RunningServer] | None = None
        self.server: RunningServer | None = None

    def start(self) -> RunningServer:
        self._cm = self._launcher()
        self.server = self._cm.__enter__()
        return self.server

    def restart(self) -> RunningServer:
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self._cm is not None:
            cm, self._cm, self.server = self._cm, None, None
            cm.__exit__(None, None, None)

    def get(self) -> RunningServer:
        if self.server is None or not self.server.alive():
            if self.server is not None:
                self.server.check()
            return self.restart()
        return self.server


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # key in the scenario's summary
    header: str
    better: str  # "higher" or "lower"
    fmt: str = "{:,.0f}"
    ratio_floor: float = 0.0  # a peer value at or below this makes the ratio meaningless: "n/a"


class Scenario(Protocol):
    name: ClassVar[str]
    help: ClassVar[str]
    columns: ClassVar[list[Column]]

    def supports(self, spec: ServerSpec) -> bool: ...

    def run(self, ctx: Context, session: Session) -> dict[str, Any]:
        """Figures: `summary` (the table's keys) plus anything worth keeping in the JSON."""
        ...


# -- helpers ------------------------------------------------------------------------------


def _plan(names: list[str], clients: int, stuck: bool = False) -> list[tuple[str, bool]]:
    return [(names[i % len(names)], stuck) for i in range(clients)]


def _fmt(value: float | None, unit: str = "", spec: str = "{:,.1f}") -> str:
    return "n/a" if value is None else spec.format(value) + unit


def _cpu_line(phase: Phase) -> str:
    cpu = phase.cpu
    lg = "+".join(_fmt(v, "%", "{:.0f}") for v in cpu["loadgen_cpu_pct"])
    line = (
        f"CPU server {_fmt(cpu['server_cpu_pct'], '%')} | redis {_fmt(cpu['redis_cpu_pct'], '%')}"
        f" | loadgen {lg} | publisher {_fmt(cpu['publisher_cpu_pct'], '%', '{:.0f}')}"
        f" | others {_fmt(cpu['others_cpu_pct'], '%', '{:.0f}')}"
        f" | machine {_fmt(cpu['machine_cpu_pct'], '%', '{:.0f}')} of {100 * _ncpu()}%"
    )
    if cpu["others_cpu_pct"] > measure.NOISY_PCT:
        line += (
            f"\n    !! processes outside the bench used {cpu['others_cpu_pct']:.0f}% of the CPU "
            "in this window: these figures are noisy"
        )
    if cpu["bench_limited"]:
        line += (
            f"\n    !! the {' and the '.join(cpu['bench_limited'])} used over "
            f"{measure.SATURATED_PCT:.0f}% of a core: the bench, not the server, is the limit here"
        )
    return line


def _ncpu() -> int:
    import os

    return os.cpu_count() or 1


def _phase_lines(phase: Phase) -> list[str]:
    return [
        f"delivered {phase.delivered_rate:,.0f} msg/s (asked {phase.offered_rate:,.0f}; "
        f"published {phase.published:,} at {phase.publish_rate:,.0f}/s)",
        f"loss {phase.loss:,} of {phase.expected:,} ({phase.loss_pct:.3f} %), "
        f"clients with loss {phase.clients_with_loss}, silent {phase.silent_clients} | "
        f"dup {phase.duplicates} | out-of-order {phase.out_of_order}"
        + (f" | foreign {phase.foreign}" if phase.foreign else ""),
        f"latency p50 {_fmt(phase.p50_ms, ' ms', '{:.2f}')} p99 "
        f"{_fmt(phase.p99_ms, ' ms', '{:.2f}')} max {_fmt(phase.max_ms, ' ms', '{:.1f}')}",
        _cpu_line(phase),
    ]


def _connect_line(conn: dict[str, Any], lg_cpu: list[float] | None = None) -> str:
    line = (
        f"connect {conn['ok']:,} ok"
        + (f", failed {conn['errors']}" if conn["errors"] else "")
        + f" | p50 {_fmt(conn['p50_ms'], ' ms', '{:.0f}')} p99 "
        f"{_fmt(conn['p99_ms'], ' ms', '{:.0f}')} | all in {conn['burst_s']:.2f} s"
    )
    if lg_cpu is not None:
        line += " | loadgen CPU " + "+".join(f"{v:.0f}%" for v in lg_cpu)
        if max(lg_cpu, default=0.0) >= measure.SATURATED_PCT:
            line += " (saturated: connect times include the load generator's own queueing)"
    return line


def _wait_idle(server: RunningServer, limit_s: float = 10.0, below_pct: float = 10.0) -> None:
    """Give the server a moment to finish what the previous step left it (closes, GC)."""
    deadline = time.monotonic() + limit_s
    meter = procstat.CpuMeter.tree(server.pid)
    while time.monotonic() < deadline:
        meter.start()
        time.sleep(0.5)
        if meter.stop() < below_pct:
            return


def _measure(ctx: Context, server: RunningServer, **kwargs: Any) -> Phase:
    return measure.publish_and_measure(
        ctx.lg, ctx.pub, server_pid=server.pid, redis_pid=ctx.redis_pid, **kwargs
    )


def _connect(
    ctx: Context,
    server: RunningServer,
    plan: list[tuple[str, bool]],
    *,
    prime: bool = False,
    query: str = "",
) -> tuple[dict[str, Any], list[float]]:
    """Open `plan` at once; connect figures and the load generator's CPU % meanwhile.
    `query` goes on every client's URL (`?bars=1m`).

    With `prime`, the first client of each ticker connects (and subscribes) first and the rest
    follow at once: a throughput test should not turn into a test of the subscribe race,
    which `fresh` measures on its own.
    """
    if prime:
        firsts = list(dict.fromkeys(plan))
        first = ctx.lg.connect(HOST, server.port, firsts, query=query)
        time.sleep(0.5)
        plan = list(plan)
        for item in firsts:
            plan.remove(item)
        if first.ok < len(firsts):
            ctx.say(f"only {first.ok} of {len(firsts)} first clients connected: {first.errors}")
    meters = [procstat.CpuMeter([pid]) for pid in ctx.lg.pids]
    for m in meters:
        m.start()
    result = ctx.lg.connect(HOST, server.port, plan, query=query)
    return measure.connect_summary(result), [m.stop() for m in meters]


# -- scenarios ----------------------------------------------------------------------------


class ConnScenario:
    name: ClassVar[str] = "conn"
    help: ClassVar[str] = (
        "N clients opened at once: connect p50/p99, server CPU and RSS per connection"
    )
    columns: ClassVar[list[Column]] = [
        Column("kib_per_conn", "KiB/conn", "lower", "{:,.1f}"),
        Column("connect_p99_ms", "conn p99 ms", "lower", "{:,.0f}"),
        Column("cpu_us_per_conn", "conn CPU us", "lower", "{:,.0f}"),
    ]

    def supports(self, spec: ServerSpec) -> bool:
        return True

    def run(self, ctx: Context, session: Session) -> dict[str, Any]:
        size = ctx.sizes.conn
        server = session.get()
        # Warm up: the first connections pay one-time costs (imports, the Redis connection).
        ctx.lg.connect(HOST, server.port, _plan(ctx.names.fresh(size.tickers), 20))
        time.sleep(0.5)
        ctx.lg.disconnect()
        _wait_idle(server)
        before = measure.settle_rss(server.pid, wait_s=3.0)
        names = ctx.names.fresh(size.tickers)
        # The server's own CPU for the whole burst (accept, handshake, subscribe, first
        # message), up to when it is idle again: unlike connect times, this does not
        # depend on how fast the load generator opens connections.
        tree = procstat.descendants(server.pid)
        cpu_before = procstat.cpu_seconds(tree)
        conn, lg_cpu = _connect(ctx, server, _plan(names, size.clients))
        after = measure.settle_rss(server.pid, wait_s=size.settle_s)
        cpu_used = procstat.cpu_seconds(tree) - cpu_before
        server.check()
        per_conn = (after - before) / conn["ok"] / 1024 if conn["ok"] else None
        cpu_us = cpu_used / conn["ok"] * 1e6 if conn["ok"] else None
        ctx.say(f"{size.clients:,} clients over {size.tickers} tickers, opened at once")
        ctx.say(_connect_line(conn, lg_cpu))
        ctx.say(
            f"server CPU {cpu_used:.2f} s for the burst: {_fmt(cpu_us, ' us', '{:,.0f}')} "
            "per connection"
        )
        ctx.say(
            f"server RSS {before / 2**20:,.1f} MiB -> {after / 2**20:,.1f} MiB with "
            f"{conn['ok']:,} idle clients: {_fmt(per_conn, ' KiB', '{:.1f}')} per connection"
        )
        ctx.lg.disconnect()
        return {
            "summary": {
                "kib_per_conn": per_conn,
                "connect_p99_ms": conn["p99_ms"],
                "cpu_us_per_conn": cpu_us,
            },
            "connect": conn,
            "loadgen_cpu_pct": lg_cpu,
            "rss_before": before,
            "rss_after": after,
            "size": size,
        }


class RateScenario:
    name: ClassVar[str] = "rate"
    help: ClassVar[str] = "N clients over K tickers at a fixed delivered rate: CPU, latency, loss"
    columns: ClassVar[list[Column]] = [
        Column("cpu_pct", "CPU% @rate", "lower", "{:,.1f}"),
        Column("p99_ms", "p99 ms @rate", "lower", "{:,.2f}"),
        Column("loss_pct", "loss% @rate", "lower", "{:,.3f}"),
    ]

    def supports(self, spec: ServerSpec) -> bool:
        return True

    def run(self, ctx: Context, session: Session) -> dict[str, Any]:
        size = ctx.sizes.rate
        server = session.get()
        names = ctx.names.fresh(size.tickers)
        conn, lg_cpu = _connect(ctx, server, _plan(names, size.clients), prime=True)
        time.sleep(1.0)
        phase = _measure(
            ctx,
            server,
            tickers=names,
            readers_per_ticker=size.clients / size.tickers,
            rate=size.rate,
            duration=size.duration,
        )
        server.check()
        ctx.lg.disconnect()
        ctx.say(
            f"{size.clients:,} clients over {size.tickers} tickers, {size.rate:,.0f} msg/s "
            f"for {size.duration:g} s"
        )
        for line in [_connect_line(conn, lg_cpu), *_phase_lines(phase)]:
            ctx.say(line)
        return {
            "summary": {
                "cpu_pct": phase.cpu["server_cpu_pct"],
                "p99_ms": phase.p99_ms,
                "loss_pct": phase.loss_pct,
            },
            "connect": conn,
            "phase": phase.to_json(),
            "size": size,
        }


class MaxScenario:
    name: ClassVar[str] = "max"
    help: ClassVar[str] = "--find-max: highest delivered msg/s with p99 <= limit and no loss"
    columns: ClassVar[list[Column]] = [Column("max_rate", "max msg/s", "higher", "{:,.0f}")]

    def supports(self, spec: ServerSpec) -> bool:
        return True

    def run(self, ctx: Context, session: Session) -> dict[str, Any]:
        size = ctx.sizes.max
        readers = size.clients / size.tickers
        names = self._connect(ctx, session)
        probes: list[dict[str, Any]] = []
        best: float | None = None
        fail: float | None = None
        rate = size.start
        ctx.say(
            f"{size.clients:,} clients over {size.tickers} tickers, {size.probe_s:g} s probes, "
            f"pass = no loss and p99 <= {size.p99_limit_ms:g} ms"
        )
        while len(probes) < size.max_probes:
            server = session.get()
            _wait_idle(server)
            phase = _measure(
                ctx,
                server,
                tickers=names,
                readers_per_ticker=readers,
                rate=rate,
                duration=size.probe_s,
            )
            ok = phase.clean and phase.p99_ms is not None and phase.p99_ms <= size.p99_limit_ms
            ok = ok and server.alive()
            probes.append({"rate": rate, "pass": ok, "phase": phase.to_json()})
            limited = phase.cpu["bench_limited"]
            ctx.say(
                f"  {rate:>11,.0f} msg/s: {'pass' if ok else 'FAIL'} | delivered "
                f"{phase.delivered_rate:,.0f}/s | loss {phase.loss_pct:.3f} % | p99 "
                f"{_fmt(phase.p99_ms, ' ms', '{:.1f}')} | server CPU "
                f"{_fmt(phase.cpu['server_cpu_pct'], '%', '{:.0f}')} | loadgen "
                + "+".join(f"{v:.0f}%" for v in phase.cpu["loadgen_cpu_pct"])
                + f" | machine {phase.cpu['machine_cpu_pct']:.0f}%"
                + (f"  <- {' and '.join(limited)} saturated" if limited else "")
            )
            if ok:
                best = rate
            else:
                fail = rate
            if fail is None:
                rate *= 2
                if rate > size.ceiling:
                    break
            elif best is None:
                rate = _round_rate(rate / 2)
                if rate < 1000:
                    break
            elif (fail - best) / best <= size.tolerance:
                break
            else:
                rate = _round_rate((best + fail) / 2)
            if not ok:
                # An overloaded server may still hold seconds of backlog: go on with a fresh one.
                ctx.lg.disconnect()
                session.restart()
                names = self._connect(ctx, session)
        ctx.lg.disconnect()
        limited_at_edge = [
            p["rate"]
            for p in probes
            if p["rate"] in (best, fail) and p["phase"]["cpu"]["bench_limited"]
        ]
        if best is None:
            ctx.say("no rate passed")
        else:
            ctx.say(
                f"max {best:,.0f} msg/s"
                + (f" (first failing rate {fail:,.0f})" if fail else " (ceiling reached)")
            )
        if limited_at_edge:
            ctx.say(
                "  !! the load generator or publisher was saturated at the deciding rate(s): "
                "the real maximum may be higher (try --procs 2)"
            )
        return {
            "summary": {"max_rate": best},
            "first_fail": fail,
            "bench_limited_at_edge": bool(limited_at_edge),
            "probes": probes,
            "size": size,
        }

    @staticmethod
    def _connect(ctx: Context, session: Session) -> list[str]:
        size = ctx.sizes.max
        server = session.get()
        names = ctx.names.fresh(size.tickers)
        conn, _ = _connect(ctx, server, _plan(names, size.clients), prime=True)
        if conn["errors"]:
            ctx.say(f"  not every client connected: {conn['errors']}")
        time.sleep(1.0)
        return names


def _round_rate(rate: float) -> float:
    """Three significant digits: rates read better and repeat across runs."""
    digits = len(str(int(rate))) - 3
    step = 10 ** max(0, digits)
    return float(round(rate / step) * step)


class FreshScenario:
    name: ClassVar[str] = "fresh"
    help: ClassVar[str] = "N clients subscribe to fresh tickers at the instant publishing starts"
    columns: ClassVar[list[Column]] = [Column("loss_pct", "fresh loss%", "lower", "{:,.2f}")]

    def supports(self, spec: ServerSpec) -> bool:
        return True

    def run(self, ctx: Context, session: Session) -> dict[str, Any]:
        size = ctx.sizes.fresh
        server = session.get()
        names = ctx.names.fresh(size.tickers)
        readers = size.clients / size.tickers
        ctx.lg.reset()
        meters = measure.Meters.create(server.pid, ctx.lg, ctx.pub, ctx.redis_pid)
        meters.start()
        ctx.lg.start_connect(HOST, server.port, _plan(names, size.clients))
        ctx.pub.start(names, size.rate / readers, size.duration)
        result = ctx.lg.finish_connect()
        since_ms = (time.time() + size.settle_s) * 1000.0
        phase = _measure(
            ctx,
            server,
            tickers=names,
            readers_per_ticker=readers,
            rate=size.rate,
            duration=size.duration,
            since_ms=since_ms,
            already_started=True,
            meters=meters,
        )
        server.check()
        ctx.lg.disconnect()
        conn = measure.connect_summary(result)
        ctx.say(
            f"{size.clients:,} clients subscribe to {size.tickers} fresh tickers while "
            f"{size.rate:,.0f} msg/s publishing starts; loss counted from {size.settle_s:g} s "
            "after the last client connected"
        )
        for line in [_connect_line(conn), *_phase_lines(phase)]:
            ctx.say(line)
        if phase.expected == 0:
            ctx.say("  !! nothing was published after the window opened: raise the duration")
        return {
            "summary": {"loss_pct": phase.loss_pct if phase.expected else None},
            "connect": conn,
            "phase": phase.to_json(),
            "size": size,
        }


class SlowScenario:
    name: ClassVar[str] = "slow"
    help: ClassVar[str] = "M stuck clients that never read among normal ones: RSS, others' p99"
    columns: ClassVar[list[Column]] = [
        Column("p99_base_ms", "slow: p99 base", "lower", "{:,.2f}"),
        Column("p99_stuck_ms", "p99 stuck", "lower", "{:,.2f}"),
        Column("rss_growth_mib", "RSS +MiB", "lower", "{:,.1f}", ratio_floor=1.0),
    ]

    def supports(self, spec: ServerSpec) -> bool:
        return True

    def run(self, ctx: Context, session: Session) -> dict[str, Any]:
        size = ctx.sizes.slow
        server = session.get()
        names = ctx.names.fresh(size.tickers)
        readers = size.normal / size.tickers
        conn, _ = _connect(ctx, server, _plan(names, size.normal), prime=True)
        time.sleep(1.0)
        ctx.say(
            f"{size.normal} normal clients over {size.tickers} tickers, {size.rate:,.0f} msg/s "
            f"delivered to them ({size.rate / size.normal:,.0f} msg/s each)"
        )
        base = _measure(
            ctx,
            server,
            tickers=names,
            readers_per_ticker=readers,
            rate=size.rate,
            duration=size.baseline_s,
        )
        ctx.say(
            f"without stuck clients ({size.baseline_s:g} s): p99 "
            f"{_fmt(base.p99_ms, ' ms', '{:.2f}')}, loss {base.loss_pct:.3f} %, "
            f"server CPU {_fmt(base.cpu['server_cpu_pct'], '%')}"
        )
        stuck_conn, _ = _connect(ctx, server, _plan(names, size.stuck, stuck=True))
        time.sleep(0.5)
        pid, port, stuck_ports = server.pid, server.port, ctx.lg.stuck_ports()

        def sample(t: float) -> dict[str, Any]:
            return {
                "t": t,
                "rss_mib": procstat.tree_rss(pid) / 2**20,
                "stuck": procstat.server_side_states(port, stuck_ports),
            }

        phase = _measure(
            ctx,
            server,
            tickers=names,
            readers_per_ticker=readers,
            rate=size.rate,
            duration=size.stuck_s,
            sampler=sample,
            sample_every=size.sample_s,
        )
        ctx.say(
            f"with {stuck_conn['ok']} stuck clients (never read; "
            f"{size.stuck_s:g} s): p99 {_fmt(phase.p99_ms, ' ms', '{:.2f}')}, "
            f"loss {phase.loss_pct:.3f} %, server CPU {_fmt(phase.cpu['server_cpu_pct'], '%')}"
        )
        samples = phase.samples
        ctx.say(
            "server RSS (MiB) over time: "
            + ", ".join(f"{s['t']:g}s {s['rss_mib']:,.1f}" for s in samples)
        )
        ctx.say(
            "stuck connections the server still holds open over time: "
            + ", ".join(f"{s['t']:g}s {s['stuck'].get('open', 0)}" for s in samples)
            + f" (at the end: {samples[-1]['stuck']})"
        )
        # Let the stuck clients read again: whatever close the server sent them arrives.
        ctx.lg.release_stuck()
        time.sleep(size.release_s)
        closes = ctx.lg.collect({})
        ctx.say(
            f"after reading again, closes by code: stuck {closes['stuck_closes']} | normal "
            f"{closes['closes']} (1006: no close frame; open: still connected)"
        )
        server.check()
        ctx.lg.disconnect()
        growth = samples[-1]["rss_mib"] - samples[0]["rss_mib"] if len(samples) >= 2 else None
        return {
            "summary": {
                "p99_base_ms": base.p99_ms,
                "p99_stuck_ms": phase.p99_ms,
                "rss_growth_mib": growth,
                "loss_pct_stuck": phase.loss_pct,
            },
            "connect": conn,
            "stuck_connect": stuck_conn,
            "baseline": base.to_json(),
            "phase": phase.to_json(),
            "stuck_closes": closes["stuck_closes"],
            "normal_closes": closes["closes"],
            "size": size,
        }


class BarsScenario:
    """What candles cost: `rate`'s load twice in the same run, each window on a new stockfeed
    process: once with plain subscribers, once with every subscriber asking for candles
    (`/ws/stocks/{T}?bars=1m`), same clients, tickers and publish rate. Price updates are
    measured as in `rate` (delivered, loss, latency); `bar` messages are counted apart.
    Printed side by side with bars / plain ratios: on a shared machine the ratio of two
    windows a few seconds apart says more than either figure against an older run."""

    name: ClassVar[str] = "bars"
    help: ClassVar[str] = (
        "stockfeed only: `rate` with plain subscribers, then with every one asking ?bars=1m"
    )
    columns: ClassVar[list[Column]] = [
        Column("cpu_ratio", "bars: CPU x", "lower", "{:,.2f}"),
        Column("p99_ratio", "p99 x", "lower", "{:,.2f}"),
        Column("bar_rate", "bar msg/s", "higher", "{:,.0f}"),
    ]

    def __init__(self) -> None:
        self.runs = 0  # with --repeat, every other run measures the bars window first

    def supports(self, spec: ServerSpec) -> bool:
        return spec.name == SUBJECT  # `?bars=` is stockfeed's protocol; the peers have none

    def run(self, ctx: Context, session: Session) -> dict[str, Any]:
        size = ctx.sizes.bars
        label = "bars " + ",".join(size.intervals)
        variants = [("plain", ""), (label, "?bars=" + ",".join(size.intervals))]
        if self.runs % 2:
            variants.reverse()
        self.runs += 1
        ctx.say(
            f"{size.clients:,} clients over {size.tickers} tickers, {size.rate:,.0f} price "
            f"updates/s for {size.duration:g} s, twice, each on a new server: "
            + " then ".join(name for name, _ in variants)
        )
        windows: dict[str, dict[str, Any]] = {}
        phases: dict[str, Phase] = {}
        for i, (name, query) in enumerate(variants):
            server = session.get() if i == 0 else session.restart()
            phases[name], windows[name] = self._window(ctx, server, name, query)
        plain, bars = phases["plain"], phases[label]
        rss = {name: windows[name]["rss_peak_mib"] for name in windows}
        rows: list[tuple[str, float | None, float | None, str]] = [
            ("delivered updates/s", plain.delivered_rate, bars.delivered_rate, "{:,.0f}"),
            ("latency p50 ms", plain.p50_ms, bars.p50_ms, "{:,.2f}"),
            ("latency p99 ms", plain.p99_ms, bars.p99_ms, "{:,.2f}"),
            (
                "server CPU %",
                plain.cpu["server_cpu_pct"],
                bars.cpu["server_cpu_pct"],
                "{:,.1f}",
            ),
            ("server RSS MiB (peak)", rss["plain"], rss[label], "{:,.1f}"),
            ("bar messages/s", plain.bar_rate, bars.bar_rate, "{:,.0f}"),
            ("loss %", plain.loss_pct, bars.loss_pct, "{:,.3f}"),
        ]
        ctx.say("side by side:")
        for line in _side_by_side(rows, "plain", label):
            ctx.say("  " + line)
        if not bars.bar_messages:
            ctx.say("  !! no `bar` message arrived in the bars window: candles were not measured")
        cpu_ratio = _ratio_of(bars.cpu["server_cpu_pct"], plain.cpu["server_cpu_pct"])
        return {
            "summary": {
                "cpu_ratio": cpu_ratio,
                "p99_ratio": _ratio_of(bars.p99_ms, plain.p99_ms),
                "bar_rate": bars.bar_rate,
            },
            "order": [name for name, _ in variants],
            "intervals": list(size.intervals),
            "plain": windows["plain"],
            "bars": windows[label],
            "size": size,
        }

    @staticmethod
    def _window(
        ctx: Context, server: RunningServer, name: str, query: str
    ) -> tuple[Phase, dict[str, Any]]:
        size = ctx.sizes.bars
        names = ctx.names.fresh(size.tickers)
        conn, lg_cpu = _connect(ctx, server, _plan(names, size.clients), prime=True, query=query)
        time.sleep(1.0)
        tree = procstat.descendants(server.pid)

        def sample(t: float) -> dict[str, Any]:
            return {"t": t, "rss_mib": procstat.rss_bytes(tree) / 2**20}

        phase = _measure(
            ctx,
            server,
            tickers=names,
            readers_per_ticker=size.clients / size.tickers,
            rate=size.rate,
            duration=size.duration,
            sampler=sample,
            sample_every=2.0,
        )
        server.check()
        ctx.lg.disconnect()
        peak = max(s["rss_mib"] for s in phase.samples)
        per_update = phase.bar_messages / phase.received if phase.received else 0.0
        ctx.say(f"-- {name}{' (' + query + ')' if query else ''}")
        for line in [_connect_line(conn, lg_cpu), *_phase_lines(phase)]:
            ctx.say(line)
        ctx.say(
            f"bar messages {phase.bar_messages:,} ({phase.bar_rate:,.0f}/s, "
            f"{per_update:.2f} per price update received) | server RSS peak {peak:,.1f} MiB"
            + (f" | other messages {phase.other_messages}" if phase.other_messages else "")
        )
        return phase, {
            "connect": conn,
            "loadgen_connect_cpu_pct": lg_cpu,
            "phase": phase.to_json(),
            "rss_peak_mib": peak,
        }


class WideScenario:
    name: ClassVar[str] = "wide"
    help: ClassVar[str] = (
        "2,000 tickers, one client each at 10k/20k/40k msg/s, then five each: the cost of "
        "taking a message in"
    )
    columns: ClassVar[list[Column]] = [
        Column("cpu_10k", "CPU% @10k wide", "lower", "{:,.1f}"),
        Column("us_per_msg_10k", "us/published msg @10k", "lower", "{:,.1f}"),
        Column("p99_10k", "p99 ms @10k wide", "lower", "{:,.2f}"),
        Column("cpu_20k", "CPU% @20k wide", "lower", "{:,.1f}"),
        Column("p99_20k", "p99 ms @20k wide", "lower", "{:,.2f}"),
        Column("p99_40k", "p99 ms @40k wide", "lower", "{:,.2f}"),
        Column("loss_40k", "lost @40k wide", "lower", "{:,.0f}"),
        Column("cpu_x5", "CPU% x5 readers", "lower", "{:,.1f}"),
        Column("p99_x5", "p99 ms x5 readers", "lower", "{:,.2f}"),
    ]

    def supports(self, spec: ServerSpec) -> bool:
        return True

    def _window(
        self, ctx: Context, session: Session, readers: int, rate: float, profile: Path | None
    ) -> Phase:
        size = ctx.sizes.wide
        server = session.restart()  # each window on a fresh server: no backlog carried over
        names = ctx.names.fresh(size.tickers)
        plan = _plan(names, size.tickers * readers)
        conn, lg_cpu = _connect(ctx, server, plan, prime=readers > 1)
        time.sleep(1.0)
        spy = _py_spy(server.pid, size.duration, profile) if profile is not None else None
        phase = _measure(
            ctx,
            server,
            tickers=names,
            readers_per_ticker=readers,
            rate=rate,
            duration=size.duration,
        )
        if spy is not None:
            _py_spy_done(spy, profile, ctx.say)
        server.check()
        ctx.lg.disconnect()
        ctx.say(
            f"{size.tickers:,} tickers x {readers} client(s), {rate:,.0f} msg/s delivered "
            f"({rate / readers:,.0f} published) for {size.duration:g} s"
        )
        for line in [_connect_line(conn, lg_cpu), *_phase_lines(phase)]:
            ctx.say("  " + line)
        per_msg = _us_per_published(phase)
        if per_msg is not None:
            user = _us_per_published(phase, "server_user_pct")
            system = _us_per_published(phase, "server_system_pct")
            split = f" (user {user:,.1f}, system {system:,.1f})" if user and system else ""
            ctx.say(f"  server CPU per published message {per_msg:,.1f} us{split}")
        return phase

    def run(self, ctx: Context, session: Session) -> dict[str, Any]:
        size = ctx.sizes.wide
        phases: dict[str, Phase] = {}
        for i, rate in enumerate(size.rates):
            want = size.profile and i == 0 and session.spec_name == SUBJECT
            name = f"wide-{rate:.0f}-{ctx.run_id}.folded.txt"
            profile = ctx.results_dir / name if want else None
            phases[f"{rate:.0f}"] = self._window(ctx, session, 1, rate, profile)
        shared = self._window(ctx, session, size.shared_readers, size.shared_rate, None)
        by = dict(phases)

        def get(rate: int, attr: str) -> Any:
            phase = by.get(str(rate))
            return None if phase is None else getattr(phase, attr)

        summary = {
            "cpu_10k": (by["10000"].cpu["server_cpu_pct"] if "10000" in by else None),
            "us_per_msg_10k": _us_per_published(by["10000"]) if "10000" in by else None,
            "p99_10k": get(10000, "p99_ms"),
            "cpu_20k": (by["20000"].cpu["server_cpu_pct"] if "20000" in by else None),
            "p99_20k": get(20000, "p99_ms"),
            "p99_40k": get(40000, "p99_ms"),
            "loss_40k": get(40000, "loss"),
            "cpu_x5": shared.cpu["server_cpu_pct"],
            "p99_x5": shared.p99_ms,
        }
        return {
            "summary": summary,
            "phases": {k: p.to_json() for k, p in phases.items()},
            "shared": shared.to_json(),
            "size": size,
        }


def _us_per_published(phase: Phase, key: str = "server_cpu_pct") -> float | None:
    """Server CPU per message published (µs): what taking one message in costs (`key`:
    server_user_pct or server_system_pct for its part in user or kernel time)."""
    cpu = phase.cpu.get(key)
    if cpu is None or phase.publish_rate <= 0:
        return None
    return float(cpu) / 100.0 * 1e6 / phase.publish_rate


def _py_spy(pid: int, seconds: float, out: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy recording the server for the window (None when py-spy is missing), as
    folded stacks (`--format raw`: one line per stack and its sample count; greppable,
    and what flamegraph tools such as inferno or speedscope take)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if out is None or not Path(exe).exists():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    return subprocess.Popen(
        [*argv, "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _py_spy_done(spy: subprocess.Popen[bytes], out: Path | None, say: Printer) -> None:
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
    if out is not None and out.exists():
        say(f"  profile of this window: {out}")
        for line in profile_summary(out.read_text()):
            say("    " + line)


_LINE = re.compile(r":\d+\)$")


def profile_summary(folded: str, top: int = 8) -> list[str]:
    """Where the event loop's thread spent its samples: the frames with the most samples
    in their own code (self) and in what they called (total), as shares of that thread.
    Other threads (idle executor workers) are left out."""
    self_: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or "Runner.run" not in stack:
            continue
        n = int(count)
        samples += n
        # "func (file.py:line)" -> "func (file.py)": per function, not per line
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        self_[frames[-1]] = self_.get(frames[-1], 0) + n
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + n
    if not samples:
        return []
    out = [f"event loop thread: {samples:,} samples; most in their own code:"]
    for frame, n in sorted(self_.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * n / samples:5.1f} % {frame}")
    out.append("most including what they call (stockfeed's own frames):")
    ours = [(f, n) for f, n in total.items() if "stockfeed" in f or "fast_" in f]
    for frame, n in sorted(ours, key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * n / samples:5.1f} % {frame}")
    return out


def _ratio_of(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def _side_by_side(
    rows: list[tuple[str, float | None, float | None, str]], left: str, right: str
) -> list[str]:
    """Rows of `figure | left | right | right / left`, aligned."""
    cells = [["", left, right, f"{right} / {left}"]]
    for label, a, b, spec in rows:
        ratio = _ratio_of(b, a)
        cells.append([label, _fmt(a, "", spec), _fmt(b, "", spec), _fmt(ratio, "x", "{:.2f}")])
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    return [
        "  ".join(
            [
                row[0].ljust(widths[0]),
                *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
            ]
        )
        for row in cells
    ]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        ConnScenario(),
        RateScenario(),
        FreshScenario(),
        SlowScenario(),
        MaxScenario(),
        BarsScenario(),
        WideScenario(),
    )
}
DEFAULT = ["conn", "rate", "wide", "fresh", "slow"]
