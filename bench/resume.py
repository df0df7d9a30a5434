"""Resume after an outage: do reconnecting clients see every `seq` exactly once?

`python -m bench.resume` starts stockfeed (relay only, Redis broker) and a publisher,
connects N clients to `/ws` over K tickers, reads for a while, drops every connection for
`--outage` seconds while publishing goes on, reconnects them all at once with
`resume: {T: {"seq": last, "epoch": e}}`, and reads on. It prints, over all clients:
the updates replayed (expected vs received), gaps (snapshots flagged `gap`), duplicates
and out-of-order updates, and the reconnect time. Only stockfeed: none of the peers has
a resume at all (a peer's client simply misses the outage).

Two variants run, both relay-only with this bench's own publisher:
- `same`: the clients come back to the process they left. It kept listening to their
  tickers (the resume window), so the replay should be complete: missing 0, gaps 0.
- `other`: they come back to a second process on the same Redis that never carried these
  tickers. An outside publisher keeps no shared history (stockfeed's own updater does, in
  Redis `history:{T}`; tests/api/test_ws_multi.py covers that case), so every client must get
  a `gap` snapshot instead of a replay: the figure shows the gap is reported, not silent.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from websockets.asyncio.client import ClientConnection, connect

from bench.publisher import Quote, price_update
from bench.servers import SERVERS, launch

RESULTS = Path(__file__).resolve().parent / "results"


def publish(redis_url: str, tickers: list[str], rate: float, seconds: float) -> None:
    """A steady `rate` msg/s over `tickers` for `seconds` (its own process)."""
    import random

    rng = random.Random(7)
    r = redis.Redis.from_url(redis_url)
    quotes = {t: Quote.start(rng) for t in tickers}
    seqs = dict.fromkeys(tickers, 0)
    interval = 1.0 / rate
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        ticker = tickers[n % len(tickers)]
        seqs[ticker] += 1
        quotes[ticker].step(rng)
        r.publish(
            f"market:{ticker}",
            price_update(ticker, seqs[ticker], time.time() * 1000, quotes[ticker]),
        )
        n += 1
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)


@dataclass
class ClientState:
    tickers: list[str]
    last: dict[str, int] = field(default_factory=dict)
    epochs: dict[str, str] = field(default_factory=dict)
    seen: dict[str, list[int]] = field(default_factory=dict)
    gaps: int = 0
    replay_snapshots: int = 0


async def read_for(ws: ClientConnection, state: ClientState, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        left = end - loop.time()
        if left <= 0:
            return
        try:
            raw = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            return
        msg: dict[str, Any] = json.loads(raw)
        kind = msg.get("type")
        if kind == "subscribed":
            state.epochs.update(msg.get("epochs", {}))
        elif kind in ("price_update", "snapshot"):
            ticker = msg["ticker"]
            if kind == "snapshot":
                if msg.get("gap"):
                    state.gaps += 1
                state.last[ticker] = msg["seq"]
                continue
            state.seen.setdefault(ticker, []).append(msg["seq"])
            state.last[ticker] = msg["seq"]


async def session(url: str, state: ClientState, seconds: float, resume: bool) -> float:
    t0 = time.perf_counter()
    async with connect(url, max_size=None, ping_interval=None) as ws:
        connected = time.perf_counter() - t0
        body: dict[str, Any] = {"action": "subscribe", "tickers": state.tickers}
        if resume:
            body["resume"] = {
                t: {"seq": state.last[t], "epoch": state.epochs.get(t)}
                for t in state.tickers
                if t in state.last
            }
        await ws.send(json.dumps(body))
        await read_for(ws, state, seconds)
    return connected


def score(states: list[ClientState], marks: list[dict[str, int]]) -> dict[str, Any]:
    """Over every client and ticker: what came after the outage mark, exactly once?"""
    missing = duplicates = out_of_order = received = 0
    for state, mark in zip(states, marks, strict=True):
        for ticker, seqs in state.seen.items():
            after = [s for s in seqs if s > mark.get(ticker, 0)]
            received += len(after)
            duplicates += len(after) - len(set(after))
            out_of_order += sum(1 for a, b in itertools.pairwise(after) if b < a)
            if after:
                expected = set(range(mark.get(ticker, 0) + 1, max(after) + 1))
                missing += len(expected - set(after))
    return {
        "received_after_outage": received,
        "missing": missing,
        "duplicates": duplicates,
        "out_of_order": out_of_order,
        "gap_snapshots": sum(s.gaps for s in states),
    }


async def run_variant(
    base_url: str, resume_url: str, n: int, k: int, outage: float, read_s: float, tag: str
) -> dict[str, Any]:
    tickers = [f"BR{tag}{i}" for i in range(k)]
    states = [ClientState([tickers[i % k]]) for i in range(n)]
    await asyncio.gather(*(session(base_url, s, read_s, resume=False) for s in states))
    marks = [dict(s.last) for s in states]
    before = sum(len(v) for s in states for v in s.seen.values())
    await asyncio.sleep(outage)  # every client is away; the publisher goes on
    times = await asyncio.gather(*(session(resume_url, s, read_s, resume=True) for s in states))
    result = score(states, marks)
    times.sort()
    result.update(
        clients=n,
        tickers=k,
        outage_s=outage,
        received_before_outage=before,
        reconnect_p50_ms=round(times[len(times) // 2] * 1000, 1),
        reconnect_p99_ms=round(times[int(len(times) * 0.99) - 1] * 1000, 1),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--tickers", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0, help="published msg/s in all")
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument("--read", type=float, default=4.0, help="seconds read each side")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    logs = RESULTS / "logs" / time.strftime("resume-%Y%m%d-%H%M%S")
    spec = SERVERS["stockfeed"]
    results: dict[str, Any] = {}
    total = args.read * 2 + args.outage + 6
    with launch(spec, args.redis, logs) as a, launch(spec, args.redis, logs) as b:
        for variant, target in (("same", a), ("other", b)):
            tag = f"{int(time.time()) % 100000}{variant[0].upper()}"
            tickers = [f"BR{tag}{i}" for i in range(args.tickers)]
            pub = mp.Process(target=publish, args=(args.redis, tickers, args.rate, total))
            pub.start()
            base = f"ws://127.0.0.1:{a.port}/ws"
            again = f"ws://127.0.0.1:{target.port}/ws"
            results[variant] = asyncio.run(
                run_variant(base, again, args.clients, args.tickers, args.outage, args.read, tag)
            )
            pub.join()
            r = results[variant]
            health = httpx.get(f"http://127.0.0.1:{target.port}/api/ws/health", timeout=5).json()
            r["server_replayed"] = health["replayed"]  # updates the server sent from history
            r["server_gaps"] = health["gaps"]
            print(
                f"resume [{variant} process] {r['clients']} clients, {r['outage_s']:.0f} s outage: "
                f"{r['received_after_outage']} updates after the outage, missing {r['missing']}, "
                f"duplicates {r['duplicates']}, out of order {r['out_of_order']}, "
                f"gap snapshots {r['gap_snapshots']}, "
                f"replayed by the server {r['server_replayed']}, "
                f"reconnect p99 {r['reconnect_p99_ms']} ms",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / time.strftime("resume-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({"argv": vars(args), "results": results}, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
