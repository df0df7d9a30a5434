"""The market-data store as a user of `stockfeed serve` sees it, with no setting at all
(SQLite in the data directory, the memory broker):

- after `kill -9` and a restart, the day's 1m bars on the wire are the ones clients had
  (at most the last second of the forming one lost), `/api/history` serves them from the
  store without asking the source, and what the store holds is what REST answers;
- at night, a ticker a client looked at once still has its last price after its linger
  and after a restart (REST and a snapshot), marked stale, never a 404.

Clocks: the servers run under libfaketime (Debian's faketime), shifted so that a minute
ends a few seconds after they start (relative offsets: a restart continues the same
clock), or fixed at night in New York.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import IN_CI, StartServer

pytestmark = pytest.mark.process

FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
T = "AAPL"


def faketime(value: str) -> dict[str, str]:
    """libfaketime with FAKETIME=`value` (`@2026-12-08 08:30:00`: a fixed start; `+12`:
    12 s ahead of the real clock). FAKETIME_DONT_FAKE_MONOTONIC stays unset: with this
    libfaketime it makes time.sleep fail; the monotonic clock moves in step instead."""
    if not FAKETIME_LIB.exists():
        if IN_CI:
            pytest.fail("faketime is required under CI (.ci/run installs it)")
        pytest.skip("no faketime (apt-get install faketime)")
    return {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": value, "TZ": "UTC"}


def minute_ends_in(seconds: float) -> tuple[dict[str, str], float]:
    """A clock shifted so that a minute ends `seconds` from now; (env, shift in s)."""
    now = time.time()
    shift = round((60 - seconds) - now % 60) % 60
    return faketime(f"+{shift}"), float(shift)


class Wire:
    """One client of /ws/stocks/AAPL?bars=1m: every version of every bar it was sent."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.versions: dict[int, list[dict[str, Any]]] = {}
        self.first_bars: list[dict[str, Any]] | None = None
        self.snapshot: dict[str, Any] | None = None  # or the newest price_update

    async def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                return
            msg = json.loads(raw)
            if msg["type"] == "bars":
                if self.first_bars is None:
                    self.first_bars = msg["bars"]
                for bar in msg["bars"]:
                    self.versions.setdefault(bar["time"], []).append(bar)
            elif msg["type"] == "bar":
                self.versions.setdefault(msg["bar"]["time"], []).append(msg["bar"])
            elif msg["type"] in ("snapshot", "price_update"):
                self.snapshot = msg  # the newest price it has

    def latest(self) -> dict[int, dict[str, Any]]:
        return {t: v[-1] for t, v in self.versions.items()}

    def live_finals(self) -> set[int]:
        """Times of bars made final while this client watched (built from the stream)."""
        return {t for t, v in self.versions.items() if v[-1]["final"] and not v[0]["final"]}


def rest(bar: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in bar.items() if k != "final"}


async def get(base: str, path: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        return await http.get(path, params=params)


async def test_the_days_bars_survive_kill_9_and_come_from_the_store(
    start_server: StartServer,
) -> None:
    env, shift = minute_ends_in(12)
    args = ("--source", "sim", "--tickers", T)
    server = start_server(*args, env=env)
    async with connect(f"{server.ws}/ws/stocks/{T}?bars=1m") as ws:
        before = Wire(ws)
        # Past the minute's end: a bar made final on the wire, then a few seconds more
        # of the next one.
        await before.read_for(18)
        assert before.live_finals(), "no bar was made final while the client watched"
        await asyncio.sleep(1.2)  # more than a batch interval after the last bar read
    os.killpg(server.pid, signal.SIGKILL)
    server.stop()
    server.start()  # the same port, data directory and clock shift
    server.wait_ready()
    wire_before = before.latest()
    forming = max(wire_before)
    async with connect(f"{server.ws}/ws/stocks/{T}?bars=1m") as ws:
        after = Wire(ws)
        await after.read_for(3)
    assert after.first_bars is not None
    again = {bar["time"]: bar for bar in after.first_bars}
    # Every bar before the one forming at the kill is what the client had, byte for byte.
    older = [t for t in wire_before if t < forming and t >= min(again)]
    assert older and all(again[t] == wire_before[t] for t in older), [
        (wire_before[t], again.get(t)) for t in older if again.get(t) != wire_before[t]
    ]
    assert before.live_finals() <= set(older)  # the live-built ones included
    # The forming one goes on from where it was kept (its open, its volume so far).
    kept = again[forming]
    assert kept["open"] == wire_before[forming]["open"]
    seen = [v["volume"] for v in before.versions[forming]]
    assert kept["volume"] >= (seen[-2] if len(seen) > 1 else seen[-1])

    # REST after the restart: the same bars, from the store, the source not asked. `1d`
    # is the current session: the harness's simulator trades around the clock in UTC
    # days, so from 00:00 UTC; the wire's 120 bars reach into the day before until 02:00.
    day_start = int(time.time() + shift) // 86400 * 86400
    answer = await get(server.base, f"/api/history/{T}", interval="1m", range="1d")
    assert answer.status_code == 200
    by_time = {bar["time"]: bar for bar in answer.json()["bars"]}
    assert min(by_time) == day_start
    assert all(by_time[t] == rest(wire_before[t]) for t in older if t >= day_start)
    store = server.health()["store"]
    assert store["kind"] == "sqlite" and store["writing"] is True
    assert store["history"]["with_source"] == 0 and store["history"]["source_only"] == 0
    assert store["history"]["from_store"] >= 1
    # Over five sessions, every bar the client had before the kill, the day before's too.
    answer = await get(server.base, f"/api/history/{T}", interval="1m", range="5d")
    by_time = {bar["time"]: bar for bar in answer.json()["bars"]}
    assert all(by_time[t] == rest(wire_before[t]) for t in older)

    # The store holds those very bars (their REST text), all final.
    db = Path(server.env["STOCKFEED_DATA_DIR"]) / "stockfeed.db"
    with sqlite3.connect(db) as conn:
        rows = dict(
            conn.execute(
                "SELECT start, body FROM bars WHERE ticker = ? AND interval = '1m' AND final",
                (T,),
            ).fetchall()
        )
    assert all(json.loads(rows[t]) == rest(wire_before[t]) for t in older)


async def test_a_closed_market_keeps_its_last_price_after_linger_and_restart(
    start_server: StartServer,
) -> None:
    """03:30 in New York on a Tuesday: a client looks at AAPL (not on the watchlist) and
    leaves; after its linger, and after a restart, AAPL still has its last price."""
    env = {
        **faketime("@2026-12-08 08:30:00"),
        "STOCKFEED_SIM_MARKET_HOURS": "true",
        "STOCKFEED_LINGER_MIN": "1",
        "STOCKFEED_RESUME_WINDOW": "1",
    }
    server = start_server("--source", "sim", "--tickers", "MSFT", env=env)
    async with connect(f"{server.ws}/ws/stocks/{T}") as ws:
        first = Wire(ws)
        deadline = time.monotonic() + 15
        while first.snapshot is None and time.monotonic() < deadline:
            await first.read_for(0.5)
    assert first.snapshot is not None, "no price at night"
    price = first.snapshot["data"]["price"]
    await asyncio.sleep(3)  # its linger (1 s) is over: the process holds AAPL no more
    quote = await get(server.base, f"/api/quotes/{T}")
    assert quote.status_code == 200, quote.text
    assert quote.json()["data"]["price"] == price

    os.killpg(server.pid, signal.SIGKILL)
    server.stop()
    server.env.update(faketime("@2026-12-08 08:31:00"))
    server.start()
    server.wait_ready()
    quote = await get(server.base, f"/api/quotes/{T}")
    assert quote.status_code == 200, quote.text
    body = quote.json()
    assert body["data"]["price"] == price and body["seq"] >= first.snapshot["seq"]
    async with connect(f"{server.ws}/ws/stocks/{T}") as ws:
        again = Wire(ws)
        deadline = time.monotonic() + 10
        while again.snapshot is None and time.monotonic() < deadline:
            await again.read_for(0.5)
    assert again.snapshot is not None and again.snapshot["data"]["price"] == price
    # A seq is never given twice: the restarted process counts on from the kept one.
    assert again.snapshot["seq"] >= first.snapshot["seq"]
