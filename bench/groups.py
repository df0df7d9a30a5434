"""What ticker groups save: the many-tickers shape on one process, then on two ticker
groups (docs/scaling.md#ticker-groups), in one run.

Relay-only servers (`--source none`) on the Redis broker; TICKERS tickers, one client
each (picows, bench/loadgen.py), the publisher at RATE msg/s over all of them. First one
process holds every ticker; then two processes, `--ticker-group 1/2` and `2/2`, each with
the clients of its own group's tickers (connected straight to it, as nginx's `hash` rule
would route them, so that nginx's CPU stays out of the figures). Prints per process its
CPU (% of a core over the publishing window) and its CPU per published message of the
whole market, with delivery p99 and loss:

    .venv/bin/python -m bench.groups [--tickers 2000] [--rate 20000] [--duration 8]
"""

from __future__ import annotations

import argparse
import time

from stockfeed.testing.processes import StockfeedServer
from stockfeed.ticker_groups import group_of

from bench import procstat
from bench.loadgen import LoadGen
from bench.measure import publish_and_measure, redis_pid
from bench.publisher import Publisher
from bench.servers import BENCH
from bench.tickers import TickerNames

LOGS = BENCH / "results" / "logs"
HOST = "127.0.0.1"


def _servers(redis_url: str, groups: int) -> list[StockfeedServer]:
    args = ["--source", "none", "--broker", redis_url, "--log-level", "warning"]
    out = []
    for k in range(1, groups + 1):
        extra = ["--ticker-group", f"{k}/{groups}"] if groups > 1 else []
        log = LOGS / f"groups-{groups}-{k}.log"
        out.append(StockfeedServer([*args, *extra], log).start())
    for server in out:
        server.wait_ready()
    return out


def _window(
    lg: LoadGen, pub: Publisher, redis_url: str, groups: int, tickers: int, rate: float, s: float
) -> None:
    servers = _servers(redis_url, groups)
    try:
        names = TickerNames().fresh(tickers)
        for k, server in enumerate(servers, start=1):
            mine = [t for t in names if groups == 1 or group_of(t, groups) == k]
            lg.connect(HOST, server.port, [(t, False) for t in mine])
        time.sleep(1.0)
        cpu0 = [procstat.cpu_seconds([srv.pid]) for srv in servers]
        t0 = time.monotonic()
        phase = publish_and_measure(
            lg,
            pub,
            tickers=names,
            readers_per_ticker=1,
            rate=rate,
            duration=s,
            server_pid=None,
            redis_pid=redis_pid(redis_url),
        )
        wall = time.monotonic() - t0  # the window and its drain
        cpu = [procstat.cpu_seconds([srv.pid]) - c for srv, c in zip(servers, cpu0, strict=True)]
        lg.disconnect()
        label = "one process" if groups == 1 else f"{groups} ticker groups"
        print(
            f"{label}: {tickers:,} tickers x 1 client, {phase.publish_rate:,.0f} msg/s published"
            f" for {s:g} s; p99 {phase.p99_ms or 0:,.2f} ms, lost {phase.loss:,}"
        )
        for k, used in enumerate(cpu, start=1):
            per_msg = 1e6 * used / max(1, phase.published)
            print(
                f"  process {k}: {100 * used / wall:5.1f} % of a core over {wall:.1f} s,"
                f" {per_msg:5.1f} us per published message of the market"
            )
        total = 1e6 * sum(cpu) / max(1, phase.published)
        print(f"  all processes: {total:5.1f} us per published message")
    finally:
        for server in servers:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    lg = LoadGen(1)
    pub = Publisher(args.redis)
    try:
        for groups in (1, 2):
            _window(lg, pub, args.redis, groups, args.tickers, args.rate, args.duration)
    finally:
        lg.close()
        pub.close()


if __name__ == "__main__":
    main()
