"""Bars on the wire against real servers: the memory broker, and two processes over Redis.

The main test needs a real minute boundary (bars bucket by market time, which is the wall
clock) while a client is away. What needs none (the first bars, a forced gap) is done
first; then the test waits for the next boundary far enough ahead to drop the client
before it, and both deployments run at the same time to pay that wait once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from stockfeed.client import (
    Backoff,
    Bar,
    BarData,
    Bars,
    Message,
    PriceUpdate,
    Snapshot,
    StockfeedClient,
)
from tests.servers import StartServer
from tests.wsutil import recv_json, recv_until

pytestmark = pytest.mark.process

T = "AAPL"
SIM = ("--source", "sim", "--sim-seed", "11", "--sim-tick-interval", "0.2", "--tickers", T)
# Every instrument trades around the clock, whatever the hour the test runs at.
ENV = {"STOCKFEED_SIM_MARKET_HOURS": "false"}
# B drops this many seconds before the boundary and is away this long: back 2 s after it.
DROP_BEFORE = 4.0
AWAY = 6.0


class Fixed(Backoff):
    """Reconnect after exactly `initial` seconds: the test decides when a client is away."""

    def next_delay(self) -> float:
        return self.initial


class Reader:
    """A StockfeedClient read all along (its candles are kept as messages arrive); each
    message is kept with the number of the connection it came on (1 = the first: the
    client's count when the reader takes it, a second or more after the one before)."""

    def __init__(self, client: StockfeedClient) -> None:
        self.client = client
        self.messages: list[tuple[int, Message]] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        await self.client.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for msg in self.client:
            self.messages.append((self.client.connects, msg))
            self._arrived.set()

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on(self, connection: int) -> list[Message]:
        """What arrived on one connection (1 = the first), in order."""
        return [msg for n, msg in self.messages if n == connection]

    def drop(self, away_for: float) -> None:
        """Lose the connection (as a network would), and come back after `away_for` s."""
        self.client.backoff = Fixed(initial=away_for)
        ws = self.client._main.ws
        assert ws is not None
        ws.transport.abort()

    async def until(
        self,
        check: Callable[[], bool],
        what: str,
        timeout: float = 20.0,
        describe: Callable[[], object] | None = None,
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not check():
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            got = "" if describe is None else f": got {describe()}"
            raise AssertionError(f"no {what} within {timeout:g} s{got}") from None

    def seen(self) -> list[tuple[int, str]]:
        """(connection, message) of everything but updates and bars, for failure messages."""
        return [(n, kind(m)) for n, m in self.messages if not isinstance(m, PriceUpdate | Bar)]

    async def reach(self, seq: int, timeout: float = 20.0) -> None:
        await self.until(lambda: self.client.last_seq.get(T, 0) >= seq, f"seq {seq}", timeout)


async def at(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def history(base: str) -> dict[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base) as http:
        answer = await http.get(f"/api/history/{T}", params={"interval": "1m", "range": "1d"})
    assert answer.status_code == 200, answer.text
    return {bar["time"]: bar for bar in answer.json()["bars"]}


def finals(bars: list[BarData]) -> dict[int, BarData]:
    return {bar.time: bar for bar in bars if bar.final}


def bars_in(msg: Message) -> tuple[BarData, ...]:
    if isinstance(msg, Bars):
        return msg.bars
    return (msg.bar,) if isinstance(msg, Bar) else ()


def kind(msg: Message) -> str:
    """A message in a few words, for failure messages."""
    seq = getattr(msg, "seq", None)
    return type(msg).__name__ + ("" if seq is None else f" {seq}") + (" gap" if is_gap(msg) else "")


def is_gap(msg: Message) -> bool:
    return isinstance(msg, Snapshot) and msg.gap


class Pair:
    """Client A on `first` all along; B on `second` comes back after a forced gap, then
    drops before a minute ends and resumes after it. They must end with the same 1m bars,
    and those must be /api/history's."""

    def __init__(self, label: str, first: Any, second: Any) -> None:
        self.label = label
        self.servers = (first, second)
        self.a = Reader(StockfeedClient(first.ws, [T], bars=["1m"]))
        self.b = Reader(StockfeedClient(second.ws, [T], bars=["1m"]))

    async def gap(self) -> None:
        """Both get their bars; then B resumes in an epoch the server never had: it gets a
        gap snapshot, then bars afresh."""
        a, b = self.a, self.b
        await a.until(lambda: any(isinstance(m, Bars) for m in a.on(1)), f"{self.label}: bars")
        await b.until(lambda: any(isinstance(m, Bars) for m in b.on(1)), f"{self.label}: bars")
        # Something to resume from (a server that just started has no update at first).
        await b.reach(1)
        b.client.epochs[T] = "forced-gap"  # its resume cannot be replayed: a gap
        b.drop(away_for=1)

        def bars_after_gap() -> bool:
            second = b.on(2)
            at_gap = next((i for i, m in enumerate(second) if is_gap(m)), None)
            return at_gap is not None and any(isinstance(m, Bars) for m in second[at_gap:])

        await b.until(bars_after_gap, f"{self.label}: gap snapshot, then bars", describe=b.seen)
        assert b.client.reconnects == 1, self.label

    async def across(self, minute: int) -> None:
        """B away while the bar of minute - 60 is made final; both read on after it."""
        a, b = self.a, self.b
        await at(minute - DROP_BEFORE)
        b.drop(away_for=AWAY)
        await b.until(lambda: bool(b.on(3)), f"{self.label}: B back", timeout=AWAY + 20)
        assert b.client.reconnects == 2, self.label
        end = max(a.client.last_seq[T], b.client.last_seq[T]) + 3
        await a.reach(end)
        await b.reach(end)

    async def check(self, minute: int) -> None:
        label, a, b = self.label, self.a, self.b
        # B did not see minute - 60 made final before it dropped: its resume (replayed, no
        # snapshot) brought it, in the bars sent afresh after the replay.
        made_final = minute - 60
        before = [x for m in b.on(1) + b.on(2) for x in bars_in(m) if x.time == made_final]
        assert not [x for x in before if x.final], f"{label}: B saw {made_final} made final"
        resumed = b.on(3)
        assert not [m for m in resumed if is_gap(m)], f"{label}: the resume was a gap"
        fresh = [x for m in resumed if isinstance(m, Bars) for x in m.bars if x.time == made_final]
        assert fresh and all(x.final for x in fresh), f"{label}: {made_final} not final: {fresh}"
        # From the gap snapshot on, B's updates follow one another: the resume lost none.
        after = b.on(2) + resumed
        gap_at = next(i for i, m in enumerate(after) if is_gap(m))
        first = after[gap_at]
        assert isinstance(first, Snapshot)
        seqs = [m.seq for m in after[gap_at + 1 :] if isinstance(m, PriceUpdate)]
        assert seqs == list(range(first.seq + 1, first.seq + 1 + len(seqs))), label
        # Identical bars, final ones at least (the forming one depends on when each stopped).
        mine, theirs = finals(a.client.candles(T, "1m")), finals(b.client.candles(T, "1m"))
        common = set(mine) & set(theirs)
        assert made_final in common, f"{label}: the minute B was away for is missing"
        assert len(common) >= 100, f"{label}: {len(common)} bars in common"
        for when in sorted(common):
            assert mine[when] == theirs[when], f"{label}: bars differ at {when}"
        assert mine[made_final].volume, f"{label}: no volume in {mine[made_final]}"
        # REST (on each process) says the same for the same range.
        for server in {s.base: s for s in self.servers}.values():
            rest = await history(server.base)
            for when, bar in mine.items():
                if when in rest:
                    wire = {k: v for k, v in dataclasses.asdict(bar).items() if k != "final"}
                    assert rest[when] == wire, f"{label}: REST of {server.base} differs at {when}"
            assert made_final in rest, label


async def test_bars_stay_identical_across_resume_gap_and_processes(
    start_server: StartServer, redis_url: str, tmp_path: Path
) -> None:
    redis_args = (*SIM, "--broker", redis_url)
    # The two Redis processes run on one host as a deployment does there: one data
    # directory, so one market-data store (its writer is the leading process).
    shared = {**ENV, "STOCKFEED_DATA_DIR": str(tmp_path / "deployment-data")}
    servers = [
        start_server(*SIM, env=ENV, wait=False),
        start_server(*redis_args, env=shared, wait=False),
        start_server(*redis_args, env=shared, wait=False),
    ]
    memory, leader, other = (server.wait_ready() for server in servers)
    pairs = [Pair("memory broker", memory, memory), Pair("two processes over Redis", leader, other)]
    async with contextlib.AsyncExitStack() as stack:
        for pair in pairs:
            await stack.enter_async_context(pair.a)
            await stack.enter_async_context(pair.b)
        await asyncio.gather(*(pair.gap() for pair in pairs))
        # The next minute boundary with time to drop B before it.
        minute = math.ceil((time.time() + DROP_BEFORE + 1) / 60) * 60
        await asyncio.gather(*(pair.across(minute) for pair in pairs))
    for pair in pairs:
        await pair.check(minute)
    # Each Redis process built its book from the store's fold (the writer's own, or as kept)
    # or from the other's shared checkpoint: never a book of its own from scratch.
    healths = [await asyncio.to_thread(s.health) for s in (leader, other)]
    assert all(h["bars"]["from_checkpoint"] + h["bars"]["from_kept"] >= 1 for h in healths), healths


async def test_bars_on_the_single_endpoint_and_refusals(start_server: StartServer) -> None:
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
