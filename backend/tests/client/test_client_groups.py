"""The Python client against two real ticker groups: `stockfeed serve --ticker-group 1/2`
and `2/2`, each with its own simulator on the memory broker (enough for the routing, which
is all this is about; tests/deploy/test_ticker_groups.py runs the real deployment, one
Redis behind nginx, and the client through it). There is no balancer here, so `route_url`
sends a route key straight to its group's process, as nginx's `hash` would. The same test
as clients/js/test/groups.test.ts. AAPL and MSFT are group 2's, GOOG and TSLA group 1's.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from stockfeed.client import (
    Backoff,
    ConnectionState,
    ErrorMessage,
    Message,
    PriceUpdate,
    Snapshot,
    StockfeedClient,
)
from stockfeed.ticker_groups import group_of, route_key
from tests.client.test_client_sdk import restart_on
from tests.servers import StartServer

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")
ALL = ("AAPL", "GOOG", "MSFT", "TSLA")


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.02)


class Feed:
    """Reads the client in the background (the test watches its state meanwhile)."""

    def __init__(self, client: StockfeedClient) -> None:
        self.messages: list[Message] = []
        self._task = asyncio.create_task(self._read(client))

    async def _read(self, client: StockfeedClient) -> None:
        async for msg in client:
            self.messages.append(msg)

    def count(self, ticker: str) -> int:
        return sum(
            isinstance(m, PriceUpdate | Snapshot) and m.ticker == ticker for m in self.messages
        )

    def problems(self) -> list[str]:
        """Per ticker, what breaks the client's promise: a seq that does not go up by
        one, unless a gap snapshot says history broke there (a new epoch starts anew)."""
        out: list[str] = []
        last: dict[str, int] = {}
        for m in self.messages:
            if not isinstance(m, PriceUpdate | Snapshot):
                continue
            before = last.get(m.ticker)
            last[m.ticker] = m.seq
            if before is None or (isinstance(m, Snapshot) and m.gap):
                continue
            if m.seq != before + 1:
                out.append(f"{m.ticker}: {before} then {m.seq}")
        return out

    def gaps(self) -> set[str]:
        return {m.ticker for m in self.messages if isinstance(m, Snapshot) and m.gap}

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def active(server: Any) -> set[str]:
    """The tickers a process holds (and so reads from its broker)."""
    return set(httpx.get(f"{server.base}/api/tickers", timeout=5).json()["active"])


def test_the_tickers_are_two_of_each_group() -> None:
    assert {t: group_of(t, 2) for t in ALL} == {"AAPL": 2, "GOOG": 1, "MSFT": 2, "TSLA": 1}


async def test_follows_wrong_group_to_the_other_process_and_survives_its_restart(
    start_server: StartServer,
) -> None:
    g1, g2 = (start_server(*FAST_SIM, "--ticker-group", f"{k}/2") for k in (1, 2))
    routed_to: list[str] = []

    def route_url(key: str) -> str:
        routed_to.append(key)
        return g2.ws if key.startswith("g2-") else g1.ws

    # Connected to group 1, as a balancer would send `/ws` anywhere.
    client = StockfeedClient(
        g1.ws, ALL, backoff=Backoff(initial=0.2, maximum=0.5), route_url=route_url
    )
    await client.start()
    feed = Feed(client)
    try:
        await until(lambda: all(feed.count(t) >= 10 for t in ALL), "10 prices of each")
        assert routed_to == [route_key(2, 2)]
        assert [m for m in feed.messages if isinstance(m, ErrorMessage)] == []
        (route,) = client.routes()
        assert (route.key, route.url, route.state) == ("g2-0", f"{g2.ws}/ws", "connected")
        assert sorted(route.tickers) == ["AAPL", "MSFT"]
        assert client.state == ConnectionState.CONNECTED
        assert feed.problems() == []
        # Each process holds its own group's tickers only.
        assert await asyncio.to_thread(active, g1) == {"GOOG", "TSLA"}
        assert await asyncio.to_thread(active, g2) == {"AAPL", "MSFT"}

        # Group 2's process dies: its tickers are not live (the state says so), group 1's
        # flow on.
        await asyncio.to_thread(g2.stop, signal.SIGKILL)
        await until(lambda: client.state == ConnectionState.RECONNECTING, "reconnecting")
        assert client.routes()[0].state == ConnectionState.RECONNECTING
        goog = feed.count("GOOG")
        await until(lambda: feed.count("GOOG") >= goog + 10, "group 1 still streaming")
        aapl = feed.count("AAPL")
        restart_on(start_server, g2, *FAST_SIM, "--ticker-group", "2/2", env={})
        await until(lambda: client.state == ConnectionState.CONNECTED, "connected again")
        await until(
            lambda: feed.count("AAPL") >= aapl + 10 and feed.count("MSFT") > 0,
            "group 2 streaming again",
        )
        # A restarted memory broker is a new epoch: a gap, said (never a silent one).
        assert feed.gaps() >= {"AAPL", "MSFT"}
        assert feed.problems() == []
        assert client.reconnects == 1

        # Group 2's tickers dropped: its connection closes; group 1's stay.
        await client.unsubscribe("AAPL", "MSFT")
        await until(lambda: client.routes() == [], "the route connection closed")
        assert client.tickers == ("GOOG", "TSLA")
        tsla = feed.count("TSLA")
        await until(lambda: feed.count("TSLA") >= tsla + 5, "group 1 still streaming")
        assert client.state == ConnectionState.CONNECTED
        await until(lambda: not (active(g2) & {"AAPL", "MSFT"}), "group 2 let them go")
    finally:
        await client.close()
        await feed.close()
