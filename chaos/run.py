"""`python -m chaos.run [--quick] [--only NAME ...] [--attacks NAME ...]`: break things,
print what it cost.

Scenarios (chaos/scenarios.py): a Redis outage under load, the updater's process killed
with SIGKILL among three workers, a reconnect storm after a restart, a leak check, and
`hostile`: hostile clients (ticker flood, REST flood, slowloris, subscribe churn, many
connections from one IP, pipelined HTTP never read, slow request bodies; chaos/hostile.py,
`--attacks` picks some), each against a fresh server with a
well-behaved client alongside, and `cluster-failover` / `sentinel-failover`: a Redis
Cluster primary, or the Sentinel primary, SIGKILLed under 200 resuming clients of two
processes (chaos/failover.py). Everything runs on free ports (with its own redis-server,
cluster or Sentinel set where Redis is needed); logs go to chaos/logs/.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import resource
import sys
import time

from chaos.hostile import ATTACKS
from chaos.scenarios import SCENARIOS, Rows, Sizes


def table(title: str, rows: Rows, seconds: float) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [f"== {title} ({seconds:.0f} s)"]
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


async def main(names: list[str], sizes: Sizes) -> int:
    failed = 0
    for name in names:
        started = time.monotonic()
        try:
            rows = await SCENARIOS[name](sizes)
        except Exception as exc:  # report and go on with the next scenario
            rows = [("FAILED", f"{type(exc).__name__}: {exc}")]
            failed += 1
        print(table(name, rows, time.monotonic() - started), flush=True)
        # Lost or repeated updates, a dead server, or an acceptance not met ("NO: why")
        # fail the run (exit status 1).
        broken = [
            k
            for k, v in rows
            if v == "NO"
            or v.startswith("NO: ")
            or (k.startswith(("messages lost", "duplicates")) and v != "0")
        ]
        if broken:
            print(f"  FAILED: {', '.join(broken)}", flush=True)
            failed += 1
    return 1 if failed else 0


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller and shorter (~2 min)")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run only these")
    parser.add_argument(
        "--attacks",
        nargs="+",
        choices=[name for name, _, _ in ATTACKS],
        help="with hostile: run only these attacks",
    )
    args = parser.parse_args()
    # Thousands of client sockets in this process.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.attacks:
        sizes = dataclasses.replace(sizes, hostile_attacks=tuple(args.attacks))
    names = args.only or list(SCENARIOS)
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main(names, sizes)))
    sys.exit(uvloop.run(main(names, sizes)))


if __name__ == "__main__":
    cli()
