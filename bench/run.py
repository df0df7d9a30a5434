"""Run the benchmark: stockfeed and the baseline peers under the same load, side by side.

    python -m bench.run                      # conn, rate, fresh, slow against every server
    python -m bench.run --find-max           # ... plus the max-rate search
    python -m bench.run rate conn --servers stockfeed,node_ws --quick
    python -m bench.run bars --servers stockfeed    # the cost of candles (?bars=1m)

Each server is started on a free port (a new process for every scenario), the scenarios
run against it one after the other, and it is stopped; then the next server. Figures are
printed as they come, then a summary table with stockfeed / peer ratios; everything is also
written to bench/results/*.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from stockfeed.sources.base import INTERVALS

from bench import measure, report
from bench.loadgen import LoadGen, raise_nofile
from bench.publisher import Publisher
from bench.scenarios import DEFAULT, SCENARIOS, Context, Scenario, Session, Sizes
from bench.servers import BENCH, SERVERS, SUBJECT, ServerFailed, ServerSpec, baseline, launch
from bench.tickers import TickerNames

RESULTS = BENCH / "results"
RUN_ORDER = [
    "conn",
    "rate",
    "wide",
    "bars",
    "fresh",
    "slow",
    "max",
]  # RSS per connection first, on a new server


def _parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<6} {s.help}" for name, s in SCENARIOS.items())
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        epilog=f"scenarios:\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"what to run (default: {' '.join(DEFAULT)}); one of {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--find-max", action="store_true", help="also run the max-rate search")
    parser.add_argument(
        "--bars",
        metavar="INTERVALS",
        help="also run `bars` (stockfeed only), its subscribers asking for these candle "
        "intervals, comma-separated (default 1m; e.g. 1m,5m)",
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated, from {','.join(SERVERS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: ~1-2 minutes")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run stockfeed from this checkout (e.g. a `git worktree` of the commit "
        "before a change) as `stockfeed_base`, for before/after figures in one run",
    )
    parser.add_argument("--repeat", type=int, default=1, help="run everything N times; medians")
    parser.add_argument("--procs", type=int, default=1, help="load generator processes (default 1)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    parser.add_argument(
        "--rate", type=float, help="delivered msg/s of `rate` and `bars` (default 10000)"
    )
    parser.add_argument("--duration", type=float, help="seconds of `rate` and `bars` publishing")
    parser.add_argument("--clients", type=int, help="clients of `rate`, `bars`, `fresh`, `max`")
    parser.add_argument("--conn-clients", type=int, help="clients of `conn` (default 5000)")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/run-*.json)")
    return parser


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.rate is not None:
        sizes.rate.rate = sizes.bars.rate = args.rate
    if args.duration is not None:
        sizes.rate.duration = sizes.bars.duration = args.duration
    if args.clients is not None:
        sizes.rate.clients = sizes.bars.clients = args.clients
        sizes.fresh.clients = sizes.max.clients = args.clients
    if args.bars:
        sizes.bars.intervals = tuple(dict.fromkeys(i.strip() for i in args.bars.split(",") if i))
    if args.conn_clients is not None:
        sizes.conn.clients = args.conn_clients
    return sizes


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "?"


def _version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def _machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    packages: dict[str, str | None] = {}
    for name in (
        "stockfeed",
        "uvicorn",
        "websockets",
        "fastapi",
        "picows",
        "broadcaster",
        "redis",
    ):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _version(["node", "--version"]),
        "somaxconn": _read("/proc/sys/net/core/somaxconn"),
        "open_files_limit": raise_nofile(),
        "packages": packages,
    }


def _background_busy() -> float:
    """% of the machine busy (100 % = all cores) over one second before we start."""
    busy0, total0 = measure.machine_busy_seconds()
    time.sleep(1.0)
    busy1, total1 = measure.machine_busy_seconds()
    return 100.0 * (busy1 - busy0) / max(1e-9, total1 - total0)


def _node_ready() -> str | None:
    if not (BENCH / "peers" / "node_ws" / "node_modules" / "ws").is_dir():
        return "bench/peers/node_ws/node_modules is missing: run `bash bench/setup.sh`"
    return None


def _run_scenario(
    ctx: Context, scenario: Scenario, spec: ServerSpec, redis_url: str, log_dir: Path
) -> dict[str, Any]:
    """One scenario on a new server process (none inherits another's memory, connections or
    broken state); tried a second time if the server dies under it."""
    errors: list[str] = []
    for attempt in (1, 2):
        session = Session(lambda: launch(spec, redis_url, log_dir), spec.name)
        try:
            outcome = scenario.run(ctx, session)
            if errors:
                outcome["earlier_errors"] = errors
            return outcome
        except ServerFailed as exc:
            errors.append(str(exc))
            print(f"  !! {exc}", flush=True)
            with contextlib.suppress(Exception):
                ctx.lg.disconnect()
            if attempt == 1:
                print("  !! trying this scenario once more on a new server", flush=True)
        except Exception as exc:  # a bench failure: report it, go on with the next scenario
            print(f"  !! the scenario failed: {type(exc).__name__}: {exc}", flush=True)
            if ctx.lg.broken:
                procs = len(ctx.lg.pids)
                ctx.lg.close()
                ctx.lg = LoadGen(procs)
            else:
                with contextlib.suppress(Exception):
                    ctx.lg.disconnect()
            return {"error": f"{type(exc).__name__}: {exc}", "earlier_errors": errors}
        finally:
            session.stop()
    return {"error": errors[-1], "earlier_errors": errors[:-1]}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        print(
            f"unknown scenario {', '.join(unknown)}: use {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    if args.bars is not None:
        bad_intervals = [i for i in args.bars.split(",") if i.strip() not in INTERVALS]
        if bad_intervals or not args.bars.strip():
            print(f"--bars: use intervals of {', '.join(INTERVALS)}", file=sys.stderr)
            return 2
    wanted = set(args.scenarios or DEFAULT)
    if args.find_max:
        wanted.add("max")
    if args.bars is not None:
        wanted.add("bars")
    scenarios = [SCENARIOS[n] for n in RUN_ORDER if n in wanted]
    scenarios += [SCENARIOS[n] for n in sorted(wanted) if n not in RUN_ORDER]
    names = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [n for n in names if n not in SERVERS]
    if bad:
        print(
            f"unknown server {', '.join(bad)}: use {', '.join(SERVERS)}",
            file=sys.stderr,
        )
        return 2
    specs: list[ServerSpec] = []
    if args.baseline is not None:
        if not (args.baseline / "backend" / "src" / "stockfeed").is_dir():
            print(f"--baseline: no stockfeed checkout at {args.baseline}", file=sys.stderr)
            return 2
        specs.append(baseline(args.baseline))
    for name in names:
        spec = SERVERS[name]
        why = spec.missing() or (_node_ready() if name == "node_ws" else None)
        if why:
            print(f"skipping {name}: {why}", file=sys.stderr)
            continue
        specs.append(spec)
    try:
        redis.Redis.from_url(args.redis).ping()
    except redis.RedisError as exc:
        print(f"cannot reach Redis at {args.redis}: {exc}", file=sys.stderr)
        return 2

    started = time.strftime("%Y%m%d-%H%M%S")
    out_path = args.out or RESULTS / f"run-{started}{'-quick' if args.quick else ''}.json"
    machine = _machine()
    busy = _background_busy()
    sizes = _sizes(args)
    print(
        f"stockfeed bench: {', '.join(s.name for s in scenarios)} against "
        f"{', '.join(s.name for s in specs)}"
        f"{' (quick)' if args.quick else ''}, {args.repeat} run(s), {args.procs} loadgen proc(s)"
    )
    print(
        f"machine: {machine['cpus']} CPUs, somaxconn {machine['somaxconn']}, open files "
        f"{machine['open_files_limit']}, node {machine['node']}, picows "
        f"{machine['packages']['picows']}; busy before start: {busy:.0f} %"
    )
    if busy > 15:
        print(
            f"!! the machine was {busy:.0f} % busy before the bench started: other processes "
            "compete for the CPU and the figures will be noisy"
        )

    results: report.Results = {s.name: {} for s in specs}
    document: dict[str, Any] = {
        "started": started,
        "argv": sys.argv[1:],
        "machine": machine,
        "busy_before_start_pct": busy,
        "sizes": sizes,
        "results": results,
    }
    lg = LoadGen(args.procs)
    pub = Publisher(args.redis)
    ctx = Context(
        sizes=sizes,
        redis_url=args.redis,
        lg=lg,
        pub=pub,
        names=TickerNames(),
        redis_pid=measure.redis_pid(args.redis),
        say=lambda text: print("  " + text, flush=True),
        results_dir=RESULTS,
        run_id=started,
    )
    log_dir = RESULTS / "logs" / started
    t_start = time.monotonic()
    try:
        for rep in range(args.repeat):
            for spec in specs:
                for scenario in scenarios:
                    if not scenario.supports(spec):
                        continue
                    tag = f" (run {rep + 1}/{args.repeat})" if args.repeat > 1 else ""
                    print(f"\n== {spec.name} · {scenario.name}{tag}", flush=True)
                    t0 = time.monotonic()
                    outcome = _run_scenario(ctx, scenario, spec, args.redis, log_dir)
                    outcome["seconds"] = round(time.monotonic() - t0, 1)
                    results[spec.name].setdefault(scenario.name, []).append(outcome)
                    report.write_json(out_path, document)
    except KeyboardInterrupt:
        print("\ninterrupted: the table below holds what finished", file=sys.stderr)
    finally:
        ctx.lg.close()
        pub.close()
    document["seconds"] = round(time.monotonic() - t_start, 1)
    report.write_json(out_path, document)
    names_done = [s.name for s in specs]
    print("\n" + report.table(results, names_done, SUBJECT, scenarios))
    shown = out_path.relative_to(Path.cwd()) if out_path.is_relative_to(Path.cwd()) else out_path
    print(f"\n{document['seconds']:.0f} s; figures in {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
