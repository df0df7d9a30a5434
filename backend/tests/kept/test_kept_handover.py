"""PostgreSQL and two processes on Redis: every process serves the same history, and
killing the writer (the process whose updater leads) hands the writing to the new leader
with no bar lost or doubled: the bars a client of the survivor saw made final, across
the kill, are the store's, and the survivor's REST history.

The servers' clocks are shifted (libfaketime, one offset for both) so that minutes end a
few seconds after they start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import httpx
import psycopg
import pytest
from websockets.asyncio.client import connect

from tests.kept.test_kept_serve import Wire, minute_ends_in, rest
from tests.servers import StartServer

pytestmark = pytest.mark.process

T = "AAPL"


async def until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        await asyncio.sleep(0.2)


def leads(server: Any) -> bool:
    try:
        return bool(server.health()["updater"]["is_leader"])
    except httpx.HTTPError:
        return False


async def test_killing_the_writer_hands_the_store_over_with_no_bar_lost(
    start_server: StartServer, redis_url: str, postgres_url: str
) -> None:
    env, shift = minute_ends_in(20)
    args = ("--source", "sim", "--tickers", T, "--broker", redis_url, "--store", postgres_url,
            "--leader-ttl", "1")  # fmt: skip
    first = start_server(*args, env=env)
    second = start_server(*args, env=env)
    await until(lambda: leads(first) or leads(second), "leader")
    writer, survivor = (first, second) if leads(first) else (second, first)

    async with connect(f"{survivor.ws}/ws/stocks/{T}?bars=1m") as ws:
        wire = Wire(ws)
        await wire.read_for(3)
        # The same history from both processes (the store's, and the same live book).
        answers = []
        for server in (first, second):
            async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
                got = await http.get(f"/api/history/{T}", params={"interval": "1m", "range": "1d"})
            assert got.status_code == 200
            answers.append({b["time"]: b for b in got.json()["bars"]})
        common = sorted(set(answers[0]) & set(answers[1]))[:-1]  # all but the forming one
        assert common and all(answers[0][t] == answers[1][t] for t in common)

        # Past a minute's end (a bar made final by the first writer), then the kill.
        await wire.read_for(max(0.0, 60 - (time.time() + shift) % 60) + 3)
        os.killpg(writer.pid, signal.SIGKILL)
        await until(lambda: leads(survivor), "takeover", timeout=20)
        # Past the next minute's end: the new writer made a bar final.
        await wire.read_for(max(0.0, 60 - (time.time() + shift) % 60) + 4)
    finals = {t for t in wire.live_finals()}
    assert len(finals) >= 2, f"bars made final while watching: {sorted(finals)}"
    seen = wire.latest()

    await asyncio.sleep(1.5)  # the survivor's last batch
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT start, body, final, origin FROM bars WHERE ticker = %s AND interval = '1m' "
            "ORDER BY start",
            (T,),
        ).fetchall()
    kept = {start: (json.loads(body), final, origin) for start, body, final, origin in rows}
    assert len(kept) == len(rows)  # one row per minute: nothing doubled
    for t in sorted(finals):
        assert t in kept, f"bar {t} lost"
        body, final, origin = kept[t]
        assert final and origin == "built"
        assert body == rest(seen[t]), (t, body, seen[t])
    async with httpx.AsyncClient(base_url=survivor.base, timeout=30) as http:
        got = await http.get(f"/api/history/{T}", params={"interval": "1m", "range": "1d"})
    by_time = {b["time"]: b for b in got.json()["bars"]}
    assert all(by_time[t] == rest(seen[t]) for t in finals)
    assert survivor.health()["store"]["writing"] is True
