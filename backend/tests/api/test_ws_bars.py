"""Bars on the wire against real servers: the memory broker, and two processes over Redis.

The main test runs across a real minute boundary (bars bucket by market time, which is
the wall clock), so it waits for the right second of the minute before it starts; both
deployments run at the same time to pay that wait once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from wsutil import recv_json, recv_until

from stockfeed.client import Backoff, BarData, Bars, Message, Snapshot, StockfeedClient

pytestmark = pytest.mark.process

T = "AAPL"
SIM = ("--source", "sim", "--sim-seed", "11", "--sim-tick-interval", "0.2", "--tickers", T)
# Every instrument trades around the clock, whatever the hour the test runs at.
ENV = {"STOCKFEED_SIM_MARKET_HOURS": "false"}


class Fixed(Backoff):
    """Reconnect after exactly `initial` seconds: the test decides when a client is away."""

    def next_delay(self) -> float:
        return self.initial


class Reader:
    """A StockfeedClient read all along (its candles are kept as messages arrive)."""

    def __init__(self, client: StockfeedClient) -> None:
        self.client = client
        self.messages: list[Message] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        await self.client.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for msg in self.client:
            self.messages.append(msg)
            self._arrived.set()

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def drop(self, away_for: float) -> None:
        """Lose the connection (as a network would), and come back after `away_for` s."""
        self.client.backoff = Fixed(initial=away_for)
        ws = self.client._ws
        assert ws is not None
        ws.transport.abort()

    async def reach(self, seq: int, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while self.client.last_seq.get(T, 0) < seq:
                self._arrived.clear()
                await self._arrived.wait()


async def at(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def history(base: str) -> dict[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base) as http:
        answer = await http.get(f"/api/history/{T}", params={"interval": "1m", "range": "1d"})
    assert answer.status_code == 200, answer.text
    return {bar["time"]: bar for bar in answer.json()["bars"]}


def finals(bars: list[BarData]) -> dict[int, BarData]:
    return {bar.time: bar for bar in bars if bar.final}


async def scenario(label: str, first: Any, second: Any, minute: int) -> None:
    """Client A on `first` all along; B on `second` drops before the minute ends and
    resumes after it, then drops again and comes back after a forced gap. They must end
    with the same 1m bars, and those must be /api/history's."""
    a = Reader(StockfeedClient(first.ws, [T], bars=["1m"]))
    b = Reader(StockfeedClient(second.ws, [T], bars=["1m"]))
    async with a, b:
        await at(minute - 6)
        b.drop(away_for=8)  # away while minute - 60 is made final
        await at(minute + 4)
        assert b.client.reconnects == 1, label
        resumed = len(b.messages)
        b.client.epochs[T] = "forced-gap"  # its resume cannot be replayed: a gap
        b.drop(away_for=1)
        await at(minute + 8)
        assert b.client.reconnects == 2, label
        end = max(a.client.last_seq[T], b.client.last_seq[T]) + 3
        await a.reach(end)
        await b.reach(end)
    # The resume replayed (no snapshot) and sent bars; the gap got its snapshot, then bars.
    after_resume = b.messages[:resumed]
    after_gap = b.messages[resumed:]
    gap = next(i for i, m in enumerate(after_gap) if isinstance(m, Snapshot) and m.gap)
    assert any(isinstance(m, Bars) for m in after_gap[gap:]), f"{label}: no bars after the gap"
    assert sum(isinstance(m, Bars) for m in after_resume) >= 2, label
    assert not [m for m in after_resume if isinstance(m, Snapshot) and m.gap], label
    # Identical bars, final ones at least (the forming one depends on when each stopped).
    mine, theirs = finals(a.client.candles(T, "1m")), finals(b.client.candles(T, "1m"))
    common = set(mine) & set(theirs)
    assert minute - 60 in common, f"{label}: the minute B was away for is missing"
    assert len(common) >= 100, f"{label}: {len(common)} bars in common"
    for when in sorted(common):
        assert mine[when] == theirs[when], f"{label}: bars differ at {when}"
    assert mine[minute - 60].volume, f"{label}: no volume in {mine[minute - 60]}"
    # REST (on each process) says the same for the same range.
    for server in {first.base: first, second.base: second}.values():
        rest = await history(server.base)
        for when, bar in mine.items():
            if when in rest:
                wire = {k: v for k, v in dataclasses.asdict(bar).items() if k != "final"}
                assert rest[when] == wire, f"{label}: REST of {server.base} differs at {when}"
        assert minute - 60 in rest, label


async def test_bars_stay_identical_across_resume_gap_and_processes(
    start_server: Any, redis_url: str
) -> None:
    memory = start_server(*SIM, env=ENV)
    redis_args = (*SIM, "--broker", redis_url)
    leader = start_server(*redis_args, env=ENV)
    other = start_server(*redis_args, env=ENV)
    # The next minute boundary with 12 s to spare before it: the test starts there.
    minute = (int(time.time()) + 12) // 60 * 60 + 60
    await at(minute - 12)
    await asyncio.gather(
        scenario("memory broker", memory, memory, minute),
        scenario("two processes over Redis", leader, other, minute),
    )
    # One of the two Redis processes built its book from the other's shared checkpoint.
    healths = [await asyncio.to_thread(s.health) for s in (leader, other)]
    assert sum(h["bars"]["from_checkpoint"] for h in healths) >= 1, healths


async def test_bars_on_the_single_endpoint_and_refusals(start_server: Any) -> None:
    server = start_server(*SIM, env={**ENV, "STOCKFEED_MAX_BAR_STREAMS": "3"})
    async with connect(server.ws + f"/ws/stocks/{T}?bars=1m,5m") as ws:
        intervals = {(await recv_until(ws, "bars"))["interval"] for _ in range(2)}
        assert intervals == {"1m", "5m"}
        bar = await recv_until(ws, "bar")
        assert bar["ticker"] == T and set(bar["bar"]) >= {"time", "volume", "final"}
    for query, why in (("bars=2m", "unknown interval"), ("bars=1m,5m,15m,1h", "at most 3")):
        async with connect(server.ws + f"/ws/stocks/{T}?{query}") as ws:
            error = await recv_json(ws)
            assert error["code"] == "bad_message" and why in error["message"], error
            with pytest.raises(ConnectionClosed) as closed:
                await recv_json(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    async with connect(server.ws + "/ws") as ws:
        for bars in ("1m", ["1m", "2m"]):
            await ws.send(json.dumps({"action": "subscribe", "tickers": [T], "bars": bars}))
            assert (await recv_until(ws, "error"))["code"] == "bad_message"
        # Three streams fit (two tickers x 1m, then 5m on one); a fourth does not, and
        # nothing of that subscribe is done.
        await ws.send(json.dumps({"action": "subscribe", "tickers": [T, "MSFT"], "bars": ["1m"]}))
        await recv_until(ws, "subscribed")
        await ws.send(json.dumps({"action": "subscribe", "tickers": [T], "bars": ["5m"]}))
        assert (await recv_until(ws, "bars"))["interval"] in ("1m", "5m")
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["TSLA"], "bars": ["1m"]}))
        error = await recv_until(ws, "error")
        assert error["code"] == "bad_message" and "at most 3" in error["message"]
