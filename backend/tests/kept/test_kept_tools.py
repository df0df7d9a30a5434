"""What is kept, used: `stockfeed export` writes it as CSV and Parquet, and `stockfeed serve
--source replay --from ... --to ... --speed 10` plays the kept updates back through the
same protocol, the replay clock in health."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.servers import StartServer

pytestmark = pytest.mark.process


def stockfeed(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stockfeed.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def test_kept_updates_export_and_replay(start_server: StartServer, tmp_path: Path) -> None:
    data = tmp_path / "kept"
    env = {"STOCKFEED_DATA_DIR": str(data)}
    started = time.time()
    live = start_server("--source", "sim", "--tickers", "AAPL,MSFT", "--keep-ticks", env=env)
    await asyncio.sleep(5)
    live.stop()  # SIGTERM: the last batch is written
    ended = time.time()

    base_env = {k: v for k, v in live.env.items() if not k.startswith("STOCKFEED_")}
    base_env.update(env)
    ticks = stockfeed("export", "--ticker", "AAPL", "--ticks", env=base_env)
    assert ticks.returncode == 0, ticks.stderr
    rows = list(csv.DictReader(io.StringIO(ticks.stdout)))
    assert len(rows) >= 3 and {r["ticker"] for r in rows} == {"AAPL"}
    seqs = [int(r["seq"]) for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(started * 1e6 <= int(r["time_us"]) <= ended * 1e6 for r in rows)

    bars = stockfeed("export", "--ticker", "aapl", "--interval", "1m", "--from",
                     time.strftime("%Y-%m-%d", time.gmtime(started)), env=base_env)  # fmt: skip
    assert bars.returncode == 0, bars.stderr
    kept = list(csv.DictReader(io.StringIO(bars.stdout)))
    assert kept and kept[0].keys() >= {"time", "open", "high", "low", "close", "volume"}
    out = tmp_path / "aapl.parquet"
    parquet = stockfeed("export", "--ticker", "AAPL", "--interval", "1m", "--format",
                        "parquet", "--out", str(out), env=base_env)  # fmt: skip
    assert parquet.returncode == 0, parquet.stderr
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    table = pq.read_table(out)
    assert table.num_rows >= len(kept) and table.column("close").to_pylist()[0] is not None
    bad = stockfeed("export", "--ticker", "AAPL", "--interval", "1m", "--from", "yesterday",
                    env=base_env)  # fmt: skip
    assert bad.returncode == 2 and "not a time" in bad.stderr

    # The kept updates, replayed ten times faster: the same prices in the same order.
    replay = start_server("--source", "replay", "--from", f"{started:.3f}", "--to",
                          f"{ended:.3f}", "--speed", "10", env=env)  # fmt: skip
    prices: list[float] = []
    async with connect(f"{replay.ws}/ws/stocks/AAPL") as ws:
        deadline = time.monotonic() + 20
        while len(prices) < len(rows) and time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if msg["type"] == "price_update":
                prices.append(msg["data"]["price"])
    expected = [float(r["price"]) for r in rows]
    # The client may join after the first few were played, and a replay starts again at
    # its end: what it got is a run of them, played round.
    looped = expected * 3
    assert prices and any(looped[i : i + len(prices)] == prices for i in range(len(expected))), (
        prices,
        expected,
    )
    source = replay.health()["source"]
    assert source["active"] == "replay"
    assert started * 1000 <= source["replay_clock_ms"] <= ended * 1000
