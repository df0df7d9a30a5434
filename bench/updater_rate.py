"""How many updates a second the updater publishes, on the embedded broker and on Redis.

A `stockfeed serve --source sim` with TICKERS of the simulator's directory on its
watchlist, ticking every INTERVAL s (market hours off: all trade), so the source offers
TICKERS / INTERVAL updates a second. Reads the updater's `published` count from
/api/ws/health over a window, once with `memory://` and once with Redis (and with
`--cluster` once more, on a Redis Cluster of 3 primaries without replicas that it starts),
and prints the rate each reached and the server's CPU:

    .venv/bin/python -m bench.updater_rate [--tickers 300] [--interval 0.05] [--window 10]
        [--redis URL] [--cluster]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from importlib import resources
from pathlib import Path

import httpx
import redis
from stockfeed.testing.processes import StockfeedServer
from stockfeed.testing.redis_topologies import ClusterTopology

from bench import procstat
from bench.servers import BENCH

LOGS = BENCH / "results" / "logs"


def _symbols(count: int) -> list[str]:
    text = resources.files("stockfeed.data").joinpath("symbols.csv").read_text()
    rows = [line for line in text.splitlines() if not line.startswith("#")]
    return [row["symbol"] for row in csv.DictReader(rows)][:count]


def _published(server: StockfeedServer) -> int:
    body = httpx.get(server.base + "/api/ws/health", timeout=5).json()
    return int(body["source"].get("published", 0))


def measure(broker: str, tickers: list[str], interval: float, window: float) -> None:
    args = ["--source", "sim", "--broker", broker, "--sim-tick-interval", str(interval)]
    args += ["--tickers", ",".join(tickers), "--log-level", "warning"]
    env = {"STOCKFEED_SIM_MARKET_HOURS": "false"}
    server = StockfeedServer(args, LOGS / "updater_rate.log", env=env).start()
    try:
        server.wait_ready()
        time.sleep(3.0)  # leader elected, the first rounds out
        n0, c0, t0 = _published(server), procstat.cpu_seconds([server.pid]), time.monotonic()
        time.sleep(window)
        n1, c1, t1 = _published(server), procstat.cpu_seconds([server.pid]), time.monotonic()
        rate = (n1 - n0) / (t1 - t0)
        offered = len(tickers) / interval
        name = "redis+cluster://" if broker.startswith("redis+cluster://") else broker
        print(
            f"{name:<28} {rate:>9,.0f} updates/s published of {offered:,.0f} offered"
            f" ({100 * rate / offered:5.1f} %), server CPU {100 * (c1 - c0) / (t1 - t0):5.1f} %"
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cluster", action="store_true", help="and on a Redis Cluster")
    args = parser.parse_args()
    tickers = _symbols(args.tickers)
    redis.Redis.from_url(args.redis).ping()  # fail early when Redis is not there
    for broker in ("memory://", args.redis):
        measure(broker, tickers, args.interval, args.window)
    if args.cluster:
        cluster = ClusterTopology(Path(tempfile.mkdtemp(prefix="bench-updater-")), replicas=0)
        try:
            cluster.start()
            measure(cluster.url, tickers, args.interval, args.window)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
