"""Several processes on one Redis: one updater, one stream, takeover when it dies."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.servers import StartServer
from tests.wsutil import recv_updates

pytestmark = pytest.mark.process

ARGS = ("--source", "sim", "--sim-tick-interval", "0.05", "--leader-ttl", "1", "--tickers", "AAPL")


def leader_of(servers: list[Any]) -> list[Any]:
    return [s for s in servers if s.health()["updater"]["is_leader"]]


async def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_one_updater_same_stream_and_takeover(
    start_server: StartServer, redis_url: str
) -> None:
    a = start_server(*ARGS, "--broker", redis_url)
    b = start_server(*ARGS, "--broker", redis_url)
    servers = [a, b]
    leaders = await wait_for(lambda: leader_of(servers))
    assert len(leaders) == 1
    health = b.health()
    assert health["updater"]["leader"] == leaders[0].health()["updater"]["this_process"]

    async with connect(a.ws + "/ws/stocks/AAPL") as wa, connect(b.ws + "/ws/stocks/AAPL") as wb:
        ua = await recv_updates(wa, 15)
        ub = await recv_updates(wb, 15)
    # Same bytes on both processes for the same seq; no seq twice on either.
    by_seq_a = {m["seq"]: m for m in ua}
    common = [m for m in ub if m["seq"] in by_seq_a]
    assert common, "the two processes saw disjoint streams"
    for m in common:
        assert m == by_seq_a[m["seq"]]
    for stream in (ua, ub):
        seqs = [m["seq"] for m in stream]
        assert seqs == sorted(set(seqs))

    # Kill the updater's process hard: the other takes over within the lock's TTL.
    old = leaders[0]
    survivor = b if old is a else a
    async with connect(survivor.ws + "/ws/stocks/AAPL") as ws:
        before = await recv_updates(ws, 3)
        old.proc.send_signal(signal.SIGKILL)
        old.proc.wait(5)
        killed_at = time.monotonic()
        await wait_for(lambda: survivor.health()["updater"]["is_leader"], timeout=10)
        took_over_in = time.monotonic() - killed_at
        after = await recv_updates(ws, 40, timeout=15)
    # Within the lock's TTL (1 s) plus one renewal round and the health poll.
    print(f"takeover after {took_over_in:.2f}s")
    seqs = [m["seq"] for m in before + after]
    assert seqs == sorted(set(seqs)), "seq went back or repeated across the takeover"
    assert seqs[-1] > seqs[0]


async def test_workers_flag_shares_the_port(start_server: StartServer, redis_url: str) -> None:
    # Each worker is a fresh interpreter importing everything: on a loaded machine that
    # alone took 18 s once, so this start gets a longer wait than the others.
    server = start_server(*ARGS, "--broker", redis_url, "--workers", "2", wait=False)
    server.wait_ready(timeout=90)
    pids: set[str] = set()
    deadline = time.monotonic() + 20
    while len(pids) < 2 and time.monotonic() < deadline:
        # New connections land on either worker (the kernel balances accepts).
        async with httpx.AsyncClient() as client:
            health = (await client.get(server.base + "/api/ws/health")).json()
        pids.add(health["updater"]["this_process"])
        await asyncio.sleep(0.05)
    assert len(pids) == 2, pids
    leaders = set()
    for _ in range(30):
        async with httpx.AsyncClient() as client:
            h = (await client.get(server.base + "/api/ws/health")).json()
        if h["updater"]["leader"]:
            leaders.add(h["updater"]["leader"])
    assert len(leaders) == 1
    async with connect(server.ws + "/ws/stocks/AAPL") as ws:
        updates = await recv_updates(ws, 10)
    seqs = [m["seq"] for m in updates]
    assert seqs == list(range(seqs[0], seqs[0] + 10))
