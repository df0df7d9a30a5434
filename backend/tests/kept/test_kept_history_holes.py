"""`/api/history` of a server started and stopped several times on one data directory
(SQLite, the default) has no hole: the simulator can draw any past bar, so a missing bar
means the store answered for a time it does not hold.

The first server's clock is a day ahead of the next one's (a clock set back, or a data
directory another process with a later clock wrote: the dashboard's browser tests ran
servers at fixed future times on the default data directory). Its bars are the newest
kept; the next server must neither fold its updates into them nor serve them. Then a
third run three hours later fills the time nobody published from the source.

BTC-USD trades around the clock: any gap longer than the bar is a hole.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from itertools import pairwise
from pathlib import Path

import pytest

from tests.kept.test_kept_serve import faketime, get, minute_ends_in
from tests.servers import Server, StartServer

pytestmark = pytest.mark.process

T = "BTC-USD"
STEP = {"1m": 60, "5m": 300}


async def holes(server: Server, interval: str, now: float) -> list[str]:
    """What is wrong with the ticker's `interval` bars over 5d on a server whose clock
    says `now`: gaps longer than a bar, bars after the one forming now."""
    answer = await get(server.base, f"/api/history/{T}", interval=interval, range="5d")
    assert answer.status_code == 200, answer.text
    times = [bar["time"] for bar in answer.json()["bars"]]
    step = STEP[interval]
    problems = [f"{interval}: {len(times)} bars"] if len(times) < 4 * 86400 // step else []
    problems += [
        f"{interval}: {b - a} s from {a} to {b}" for a, b in pairwise(times) if b - a != step
    ]
    # The bar forming on this server's clock is the newest there can be (a second of
    # slack: the request and this look at the clock apart).
    problems += [f"{interval}: bar at {t}, after now ({now:.0f})" for t in times if t > now + 1]
    return problems


def built_bars(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "stockfeed.db") as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM bars WHERE ticker = ? AND origin = 'built'", (T,)
        ).fetchone()
    return int(count)


async def test_restarts_leave_no_hole_in_history(
    start_server: StartServer, own_data_dir: Path
) -> None:
    args = ("--source", "sim", "--tickers", T)
    data = {"STOCKFEED_DATA_DIR": str(own_data_dir)}

    # A day ahead: it keeps bars of a time the next server has not reached yet.
    ahead = start_server(*args, env={**faketime("+90000"), **data})
    deadline = time.monotonic() + 20
    while not (own_data_dir / "stockfeed.db").exists() or built_bars(own_data_dir) < 5:
        assert time.monotonic() < deadline, "the first server kept no bars"
        await asyncio.sleep(0.5)
    ahead.stop()

    # Now: the store's newest bars are a day ahead of this clock. A minute ends 12 s after
    # the start, so bars are built (and must be kept) after the first answers.
    env, shift = minute_ends_in(12)
    minute_end = time.time() + 12
    server = start_server(*args, env={**env, **data})
    for interval in STEP:
        assert not await holes(server, interval, time.time() + shift)
    await asyncio.sleep(max(0.0, minute_end + 4 - time.time()))  # a bar built, and kept
    for interval in STEP:
        assert not await holes(server, interval, time.time() + shift)
    server.stop()

    # Three hours later: nobody published meanwhile.
    later = shift + 3 * 3600
    server = start_server(*args, env={**faketime(f"+{later:.0f}"), **data})
    await asyncio.sleep(2)
    for interval in STEP:
        assert not await holes(server, interval, time.time() + later)
