"""The market-data store's figures: writes/s, bytes per bar and per tick, /api/history
latency for a year of 1m bars, and a sizing check. `python -m bench.store` (or `make
bench-store`) measures SQLite and PostgreSQL (a server of its own, when Debian's
postgresql is installed) and prints:

- **fold**: what the updater's side costs the event loop per published update
  (`Keeper.published`: the five bar books' fold, the tick kept), and per ticker for a
  batch handed to the writer (`Keeper.flush`): the fan-out path's share of the store.
- **writes**: updates/s through the real Keeper and writer thread (370 tickers, a second
  apart in market time, ticks kept), end to end until everything is committed, and the
  rows/s that made.
- **bytes per bar / per tick**: a year of 1m bars (252 sessions x 390 = 98,280 bars) and
  the ticks of the writes run, measured as the store's growth (SQLite: its used pages;
  PostgreSQL: its tables' and indexes' size) divided by the rows.
- **history**: `GET /api/history/AAPL?interval=1m&range=1y` (the whole year: 98,280 bars,
  ~10 MB of JSON) and `?interval=1m&range=5d` against a real `stockfeed serve --source
  none` on that store, p50/p99/max over N requests. Too big for the answer cache, the year
  is read from the store each time.
- **sizing**: what 30 trading days of 370 tickers at 1 update/s in the regular session
  (23,400 updates a day each) with ticks kept come to, from the measured bytes per row:
  ticks x bytes/tick + bars (390 + 78 + 26 + 7 + 1 a day: 1m, 5m, 15m, 1h, 1d) x
  bytes/bar; checked against the writes run, whose store size is compared with the same
  formula applied to its own row counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from stockfeed import protocol
from stockfeed.kept.base import Batch, KeptBar, KeptStore, KeptTick
from stockfeed.kept.keeper import Keeper
from stockfeed.kept.postgres import PostgresStore
from stockfeed.kept.sqlite import SqliteStore
from stockfeed.kept.writer import Writer
from stockfeed.models import Tick
from stockfeed.testing.processes import PostgresServer, StockfeedServer, postgres_bin

SESSION_MINUTES = 390
YEAR_SESSIONS = 252
BARS_PER_DAY = 390 + 78 + 26 + 7 + 1  # 1m, 5m, 15m, 1h, 1d of a regular session
# A year of sessions ending yesterday, each from 14:30 UTC (New York's 09:30 in winter).
T0 = int(time.time()) // 86400 * 86400 - YEAR_SESSIONS * 86400 + 14 * 3600 + 1800


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def size_of(store: KeptStore) -> int:
    def run() -> int:
        writer = store.open_writer()
        try:
            writer.compact()
            return writer.size_bytes()
        finally:
            writer.close()

    return await asyncio.to_thread(run)


async def write_batch(store: KeptStore, batch: Batch) -> None:
    def run() -> None:
        writer = store.open_writer()
        try:
            writer.write(batch)
        finally:
            writer.close()

    await asyncio.to_thread(run)


def year_of_bars(ticker: str) -> list[KeptBar]:
    rng = random.Random(1)
    price = 190.0
    out = []
    for day in range(YEAR_SESSIONS):
        start = T0 + day * 86400
        for minute in range(SESSION_MINUTES):
            o = price
            c = round(max(1.0, o + rng.gauss(0, 0.08)), 2)
            h = round(max(o, c) + abs(rng.gauss(0, 0.03)), 2)
            low = round(min(o, c) - abs(rng.gauss(0, 0.03)), 2)
            price = c
            volume = rng.randint(100, 90_000)
            out.append(KeptBar(ticker, "1m", start + 60 * minute, o, h, low, c, volume, True))
    return out


def tick_row(i: int) -> KeptTick:
    """The i-th of a run of 370 tickers' ticks, a second apart per ticker."""
    second = T0 + i // 370
    return KeptTick(
        second * 1_000_000 + i % 370,
        f"K{i % 370:03d}",
        i // 370 + 1,
        100.0 + (i % 997) / 100,
        i * 7,
        second * 1000,
        100.0,
        101.0,
        99.0,
        99.5,
        2,
        "sim",
    )


async def fold_costs(store: KeptStore) -> dict[str, float]:
    """µs per `published` call and per ticker of a flush, on this thread (the loop's)."""
    writer = Writer(store)
    keeper = Keeper(store, writer, epoch=lambda: "e", wanted=frozenset, keep_ticks=True)
    keeper.lead(True)
    tickers = [f"F{i:03d}" for i in range(370)]
    seq = 0
    for t in tickers:  # load every fold first (their kept state: none)
        seq += 1
        tick = Tick(t, 100.0, market_time=T0 * 1000, volume=1)
        keeper.published(tick, seq, T0 * 1000.0, "{}")
    await keeper.settled()
    rounds = 60
    ticks = [
        [Tick(t, 100.0 + r * 0.01, market_time=(T0 + r) * 1000, volume=10 + r) for t in tickers]
        for r in range(1, rounds + 1)
    ]
    started = time.perf_counter()
    for r, batch in enumerate(ticks, 1):
        for tick in batch:
            seq += 1
            keeper.published(tick, seq, (T0 + r) * 1000.0, "{}")
    fold_us = (time.perf_counter() - started) / (rounds * len(tickers)) * 1e6
    started = time.perf_counter()
    await keeper.flush()
    flush_us = (time.perf_counter() - started) / len(tickers) * 1e6
    return {"published_us": fold_us, "flush_us_per_ticker": flush_us}


async def writes(store: KeptStore, tickers: int, seconds: int) -> dict[str, float]:
    """`seconds` of market time for `tickers` tickers at one update a second through the
    real Keeper and writer thread, as fast as they go; timed until all is committed."""
    writer = Writer(store)
    writer.start()
    keeper = Keeper(store, writer, epoch=lambda: "e", wanted=frozenset, keep_ticks=True)
    keeper.lead(True)
    names = [f"W{i:03d}" for i in range(tickers)]
    rng = random.Random(2)
    prices = {t: 100.0 + i for i, t in enumerate(names)}
    volumes = dict.fromkeys(names, 0)
    seqs = dict.fromkeys(names, 0)
    before = await size_of(store)
    started = time.perf_counter()
    for second in range(seconds):
        now_ms = (T0 + second) * 1000.0
        for t in names:
            prices[t] = round(prices[t] + rng.gauss(0, 0.02), 2)
            volumes[t] += rng.randint(1, 500)
            seqs[t] += 1
            tick = Tick(
                t,
                prices[t],
                market_time=int(now_ms),
                volume=volumes[t],
                open=100.0,
                high=200.0,
                low=50.0,
                prev_close=99.0,
                source="sim",
            )
            raw = protocol.price_update(tick, seqs[t], now_ms)
            keeper.published(tick, seqs[t], now_ms, raw)
        if second == 0:
            await keeper.settled()  # each ticker's kept state read (live: while it streams)
        if second % 2 == 1:  # a batch every 2 s of market time (live: every 0.5 s)
            await keeper.flush()
            await asyncio.sleep(0)
    await keeper.flush()
    await writer.stop()
    elapsed = time.perf_counter() - started
    after = await size_of(store)
    updates = tickers * seconds
    return {
        "updates": updates,
        "updates_per_s": updates / elapsed,
        "rows_per_s": writer.rows / elapsed,
        "rows": writer.rows,
        "bytes": after - before,
        "elapsed_s": elapsed,
    }


async def history_latency(url_or_path: str, requests: int) -> dict[str, dict[str, float]]:
    """p50/p99/max ms of /api/history against a real server reading the store."""
    with tempfile.TemporaryDirectory() as tmp:
        server = StockfeedServer(
            ["--source", "none", "--store", url_or_path, "--log-level", "warning"],
            Path(tmp) / "server.log",
        ).start()
        try:
            server.wait_ready(timeout=60)
            out: dict[str, dict[str, float]] = {}
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            try:
                for label, query in (
                    ("1m over 1y", "interval=1m&range=1y"),
                    ("1m over 5d", "interval=1m&range=5d"),
                ):
                    times = []
                    body = b""
                    for _ in range(requests):
                        started = time.perf_counter()
                        body = await http_get(reader, writer, f"/api/history/AAPL?{query}")
                        times.append((time.perf_counter() - started) * 1000)
                    out[label] = {
                        "bars": len(json.loads(body)["bars"]),
                        "bytes": len(body),
                        "p50_ms": statistics.median(times),
                        "p99_ms": pct(times, 0.99),
                        "max_ms": max(times),
                    }
            finally:
                writer.close()
            return out
        finally:
            server.stop()


async def http_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    """One GET on a kept-alive connection, read to its last byte: a client that costs
    next to nothing (httpx spends tens of ms on a 9 MB body), so the figure is the
    server's."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    if status != b"200":
        raise RuntimeError(f"{path}: {status.decode()} {body[:200]!r}")
    return body


def sizing(bytes_per_tick: float, bytes_per_bar: float) -> dict[str, float]:
    tickers, days, per_day = 370, 30, 23_400
    ticks = tickers * days * per_day
    bars = tickers * days * BARS_PER_DAY
    return {
        "ticks": ticks,
        "bars": bars,
        "bytes": ticks * bytes_per_tick + bars * bytes_per_bar,
        "per_ticker_day_bars_only": BARS_PER_DAY * bytes_per_bar,
        "per_ticker_day_with_ticks": per_day * bytes_per_tick + BARS_PER_DAY * bytes_per_bar,
    }


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


async def measure(name: str, store: KeptStore, target: str, args: argparse.Namespace) -> None:
    print(f"\n== {name}")
    await store.open()
    try:
        costs = await fold_costs(store)
        print(
            f"  fold (on the event loop): {costs['published_us']:.1f} us per published "
            f"update (5 intervals, tick kept); flush {costs['flush_us_per_ticker']:.1f} us "
            "per ticker per batch"
        )
        bars = year_of_bars("AAPL")
        before = await size_of(store)
        started = time.perf_counter()
        for i in range(0, len(bars), 20_000):
            await write_batch(store, Batch(bars=bars[i : i + 20_000]))
        elapsed = time.perf_counter() - started
        per_bar = (await size_of(store) - before) / len(bars)
        print(
            f"  a year of 1m bars: {len(bars):,} bars written in {elapsed:.1f} s "
            f"({len(bars) / elapsed:,.0f} bars/s, 20,000 a transaction); "
            f"{per_bar:.0f} bytes per bar"
        )
        ticks = [tick_row(i) for i in range(args.ticks)]
        before = await size_of(store)
        for i in range(0, len(ticks), 50_000):
            await write_batch(store, Batch(ticks=ticks[i : i + 50_000]))
        per_tick = (await size_of(store) - before) / len(ticks)
        print(f"  {len(ticks):,} ticks alone: {per_tick:.0f} bytes per tick")
        run = await writes(store, args.tickers, args.seconds)
        # The run's rows: a tick per update, the bars it made (5 intervals).
        n_ticks = run["updates"]
        per_ticker = sum(args.seconds // step + 1 for step in (60, 300, 900, 3600)) + 1
        n_bars = args.tickers * per_ticker
        print(
            f"  writes: {run['updates']:,.0f} updates of {args.tickers} tickers folded and "
            f"kept (ticks on) in {run['elapsed_s']:.1f} s: {run['updates_per_s']:,.0f} "
            f"updates/s, {run['rows_per_s']:,.0f} rows/s"
        )
        predicted = n_ticks * per_tick + n_bars * per_bar
        print(
            f"  check: that run ({n_ticks:,.0f} ticks, {n_bars:,} bars) grew the store by "
            f"{mib(run['bytes'])}; predicted from the bytes per row above: {mib(predicted)} "
            f"({run['bytes'] / predicted:.2f}x)"
        )
        size = sizing(per_tick, per_bar)
        print(
            f"  sizing: 30 trading days x 370 tickers x 1 update/s (regular session) with "
            f"ticks: {size['ticks']:,} ticks + {size['bars']:,} bars = {mib(size['bytes'])}; "
            f"per ticker and day {size['per_ticker_day_with_ticks'] / 2**20:.2f} MiB with "
            f"ticks, {size['per_ticker_day_bars_only'] / 1024:.0f} KiB bars only"
        )
    finally:
        await store.close()
    latency = await history_latency(target, args.requests)
    for label, figures in latency.items():
        print(
            f"  /api/history {label}: {figures['bars']:,.0f} bars, {mib(figures['bytes'])}: "
            f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
            f"max {figures['max_ms']:.1f} ms over {args.requests} requests"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=370)
    parser.add_argument("--seconds", type=int, default=600, help="market seconds written")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=500_000, help="ticks for bytes/tick")
    parser.add_argument("--quick", action="store_true", help="60 s of writes, 20 requests")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.requests, args.ticks = 60, 20, 100_000
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "sqlite"):
            path = Path(tmp) / "bench.db"
            await measure("SQLite (WAL)", SqliteStore(path), f"sqlite:///{path}", args)
        if args.only in (None, "postgresql"):
            if postgres_bin() is None:
                print("\n== PostgreSQL: skipped (no server: apt-get install postgresql)")
                return
            server = PostgresServer().start()
            try:
                url = server.new_database("bench")
                await measure("PostgreSQL", PostgresStore(url), url, args)
            finally:
                server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
