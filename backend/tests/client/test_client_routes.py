"""The Python client and ticker groups (docs/protocol.md, "Ticker groups"), against a
scripted server: real sockets in this process, every connection's frames seen and every
answer written by the test, as clients/js/test/routes.test.ts does for the TypeScript
client. A `wrong_group` refusal moves the ticker to a connection for its route key
(`/ws?route=KEY`), whose messages come through the same iterator; a route connection left
with nothing to hold is closed, one that drops reconnects and resumes its tickers, and the
state is the worst of all. The same thing against real grouped servers:
test_client_groups.py and tests/deploy/test_ticker_groups.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from stockfeed.client import (
    Backoff,
    Bars,
    ConnectError,
    ConnectionState,
    ErrorMessage,
    MarketStatus,
    Message,
    PriceUpdate,
    RouteInfo,
    Snapshot,
    StockfeedClient,
    Subscribed,
)


async def until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.005)


class Conn:
    """One connection the scripted server accepted: its URL's query, the frames the
    client sent on it (its pings answered and left out), and a way to answer."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.path = ws.request.path if ws.request is not None else ""
        query = parse_qs(urlsplit(self.path).query)
        self.route = query.get("route", [None])[0]
        self.token = query.get("access_token", [None])[0]
        self.frames: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._arrived = asyncio.Queue[dict[str, Any]]()

    async def frame(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame the client sends (not yet read by the test)."""
        return await asyncio.wait_for(self._arrived.get(), timeout)

    def pending(self) -> int:
        return self._arrived.qsize()

    async def send(self, *messages: dict[str, Any]) -> None:
        for msg in messages:
            await self.ws.send(json.dumps(msg))

    def drop(self) -> None:
        """Gone without a closing handshake (a crash, a cut cable)."""
        self.ws.transport.abort()

    async def serve(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("type") == "ping":
                    await self.ws.send(json.dumps({"type": "pong", "id": frame.get("id")}))
                    continue
                self.frames.append(frame)
                self._arrived.put_nowait(frame)
        self.closed.set()


class Scripted:
    def __init__(self) -> None:
        self.conns: list[Conn] = []
        self.url = ""
        self.refuse: Callable[[str], bool] = lambda path: False  # path -> answer HTTP 503

    async def handler(self, ws: ServerConnection) -> None:
        conn = Conn(ws)
        self.conns.append(conn)
        await conn.serve()

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse(request.path):
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "not now\n")
        return None

    async def conn(self, route: str | None = None, index: int = 0) -> Conn:
        """The `index`th connection the client opened for `route` (None: the main one)."""
        await until(lambda: self.count(route) > index, f"connection {index} of route {route}")
        return [c for c in self.conns if c.route == route][index]

    def count(self, route: str | None = None) -> int:
        return sum(c.route == route for c in self.conns)


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    async with serve(
        scripted.handler, "127.0.0.1", 0, process_request=scripted.process_request
    ) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        scripted.url = f"ws://127.0.0.1:{port}"
        yield scripted


class Feed:
    """Reads the client in the background: every message it passes on, and its error."""

    def __init__(self, client: StockfeedClient) -> None:
        self.client = client
        self.messages: list[Message] = []
        self.error: BaseException | None = None
        self.ended = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.client:
                self.messages.append(msg)
        except Exception as exc:
            self.error = exc
        finally:
            self.ended.set()

    def errors(self) -> list[tuple[str | None, str]]:
        return [(m.ticker, m.code) for m in self.messages if isinstance(m, ErrorMessage)]

    def seqs(self, ticker: str) -> list[int]:
        return [
            m.seq
            for m in self.messages
            if isinstance(m, PriceUpdate | Snapshot) and m.ticker == ticker
        ]

    async def until(self, check: Callable[[], bool], what: str) -> None:
        await until(check, f"{what} (last messages: {self.messages[-5:]})")

    async def stop(self) -> None:
        await self.client.close()
        await self.ended.wait()


def data(price: float) -> dict[str, Any]:
    return {"price": price, "volume": 100, "market_time": 1_764_101_234_000}


def update(ticker: str, seq: int) -> dict[str, Any]:
    return {
        "type": "price_update",
        "ticker": ticker,
        "seq": seq,
        "timestamp": 1_764_101_234_000 + seq,
        "data": data(100.0 + seq),
    }


def snapshot(ticker: str, seq: int, epoch: str) -> dict[str, Any]:
    return {**update(ticker, seq), "type": "snapshot", "epoch": epoch}


def subscribed(epochs: dict[str, str]) -> dict[str, Any]:
    return {"type": "subscribed", "tickers": list(epochs), "epochs": epochs}


def wrong_group(ticker: str, route: str) -> dict[str, Any]:
    return {
        "type": "error",
        "code": "wrong_group",
        "message": f"{ticker} is served by ticker group 2 of 2, this process is group 1/2: "
        f"connect by the ticker's name, or with ?route={route}",
        "ticker": ticker,
        "route": route,
    }


def make(server: Scripted, tickers: list[str], **options: Any) -> StockfeedClient:
    options.setdefault("ping_interval", 60.0)
    options.setdefault("backoff", Backoff(initial=0.1, maximum=0.2))
    return StockfeedClient(server.url, tickers, **options)


async def routed(
    server: Scripted, **options: Any
) -> tuple[StockfeedClient, Feed, Conn, Conn | None]:
    """A client on AAPL and MSFT whose main server refuses MSFT to route g2-0."""
    client = make(server, ["AAPL", "MSFT"], **options)
    await client.start()
    feed = Feed(client)
    main = await server.conn()
    first = await main.frame()
    assert first["tickers"] == ["AAPL", "MSFT"]
    await main.send(wrong_group("MSFT", "g2-0"), subscribed({"AAPL": "a1"}))
    await feed.until(lambda: any(isinstance(m, Subscribed) for m in feed.messages), "subscribed")
    route = None if "route_url" in options else await server.conn("g2-0")
    return client, feed, main, route


async def test_follows_wrong_group_to_the_routes_connection_and_passes_no_error(
    server: Scripted,
) -> None:
    client, feed, main, route = await routed(server, bars=["1m"], token="tok")
    assert route is not None
    assert main.frames == [{"action": "subscribe", "tickers": ["AAPL", "MSFT"], "bars": ["1m"]}]
    assert await route.frame() == {"action": "subscribe", "tickers": ["MSFT"], "bars": ["1m"]}
    assert route.token == "tok"  # the same token, the same way
    assert route.path.startswith("/ws?route=g2-0")  # the main URL, routed
    # The refusal followed is not a message: the next one through is a price.
    await main.send(update("AAPL", 1))
    await feed.until(lambda: feed.seqs("AAPL") == [1], "AAPL #1")
    assert [type(m).__name__ for m in feed.messages] == ["Subscribed", "PriceUpdate"]
    assert client.routes() == [
        RouteInfo("g2-0", f"{server.url}/ws?route=g2-0", ConnectionState.CONNECTED, ("MSFT",))
    ]
    assert "tok" not in client.routes()[0].url
    assert client.tickers == ("AAPL", "MSFT")
    assert client.state == ConnectionState.CONNECTED
    assert len(server.conns) == 2
    await feed.stop()


async def test_merges_the_route_connections_messages_deduplicated(server: Scripted) -> None:
    client, feed, main, route = await routed(server, bars=["1m"])
    assert route is not None
    bars = {
        "type": "bars",
        "ticker": "MSFT",
        "interval": "1m",
        "seq": 8,
        "bars": [
            {"time": 60, "open": 1, "high": 2, "low": 1, "close": 2, "volume": 5, "final": False}
        ],
    }
    market = {
        "type": "market_status",
        "market": "XNYS",
        "is_open": True,
        "session": "regular",
        "next_open": None,
        "next_close": None,
    }
    await route.send(subscribed({"MSFT": "m1"}), snapshot("MSFT", 7, "m1"))
    await main.send(snapshot("AAPL", 3, "a1"))
    # A duplicate, on whichever connection it comes, is dropped. (Each connection's
    # messages are read in order; two connections' are waited for, to be in order.)
    await route.send(update("MSFT", 8), update("MSFT", 8), bars, market)
    await feed.until(lambda: any(isinstance(m, MarketStatus) for m in feed.messages), "market")
    await main.send(update("MSFT", 8), update("AAPL", 4))
    await feed.until(lambda: feed.seqs("AAPL") == [3, 4], "AAPL #4")
    assert feed.seqs("MSFT") == [7, 8]
    assert client.duplicates == 2
    assert client.last_seq == {"AAPL": 4, "MSFT": 8}
    assert client.epochs == {"AAPL": "a1", "MSFT": "m1"}
    assert [b.close for b in client.candles("MSFT", "1m")] == [2.0]
    assert [type(m).__name__ for m in feed.messages if isinstance(m, Bars | Subscribed)] == [
        "Subscribed",
        "Subscribed",
        "Bars",
    ]
    assert client.held == ("AAPL", "MSFT")
    await feed.stop()


async def test_routed_tickers_subscribe_and_unsubscribe_on_their_connection(
    server: Scripted,
) -> None:
    client, feed, main, route = await routed(server)
    assert route is not None
    assert await route.frame() == {"action": "subscribe", "tickers": ["MSFT"]}
    await route.send(subscribed({"MSFT": "m1"}), snapshot("MSFT", 5, "m1"))
    await feed.until(lambda: feed.seqs("MSFT") == [5], "MSFT #5")
    await client.subscribe("MSFT")  # already asked for: nothing sent anywhere
    await client.subscribe("IBM")  # unknown to the groups so far: the main connection
    assert await main.frame() == {"action": "subscribe", "tickers": ["IBM"]}
    await client.unsubscribe("MSFT")
    await asyncio.wait_for(route.closed.wait(), 5)
    assert route.ws.close_code == 1000
    assert client.routes() == []
    assert client.state == ConnectionState.CONNECTED
    # Asked for again: straight to a new connection for its route, starting afresh.
    await client.subscribe("MSFT")
    again = await server.conn("g2-0", index=1)
    assert await again.frame() == {"action": "subscribe", "tickers": ["MSFT"]}
    await client.unsubscribe("AAPL", "MSFT")
    assert await main.frame() == {"action": "unsubscribe", "tickers": ["AAPL"]}
    await asyncio.wait_for(again.closed.wait(), 5)
    assert main.pending() == 0  # nothing about MSFT ever went to the main connection
    assert client.tickers == ("IBM",)
    await feed.stop()


async def test_a_dropped_route_connection_reconnects_and_resumes_the_state_says_so(
    server: Scripted,
) -> None:
    client, feed, main, route = await routed(server, backoff=Backoff(initial=0.6, maximum=0.6))
    assert route is not None
    await route.send(subscribed({"MSFT": "m1"}), snapshot("MSFT", 7, "m1"))
    await feed.until(lambda: feed.seqs("MSFT") == [7], "MSFT #7")
    route.drop()
    await feed.until(lambda: client.state == ConnectionState.RECONNECTING, "reconnecting")
    assert [r.state for r in client.routes()] == [ConnectionState.RECONNECTING]
    retry_in = client.retry_in  # the route connection's wait, with its own backoff
    assert retry_in is not None and 0 < retry_in <= 0.6
    again = await server.conn("g2-0", index=1)
    assert await again.frame() == {
        "action": "subscribe",
        "tickers": ["MSFT"],
        "resume": {"MSFT": {"seq": 7, "epoch": "m1"}},
    }
    await feed.until(lambda: client.state == ConnectionState.CONNECTED, "connected")
    assert client.reconnects == 1
    assert not main.closed.is_set() and main.frames == [
        {"action": "subscribe", "tickers": ["AAPL", "MSFT"]}
    ]
    await again.send(update("MSFT", 8))
    await feed.until(lambda: feed.seqs("MSFT") == [7, 8], "MSFT #8")
    await feed.stop()


async def test_route_keys_unfit_for_a_url_are_not_followed(server: Scripted) -> None:
    client = make(server, ["AAPL", "MSFT", "IBM", "SPY"])
    await client.start()
    feed = Feed(client)
    main = await server.conn()
    await main.send(
        wrong_group("MSFT", "../admin?x=1"),
        wrong_group("IBM", "g" * 33),
        {"type": "error", "code": "wrong_group", "message": "elsewhere", "ticker": "SPY"},
        {**wrong_group("AAPL", "g2-0"), "code": "forbidden_ticker"},  # not wrong_group
        update("MSFT", 1),
    )
    await feed.until(lambda: feed.seqs("MSFT") == [1], "MSFT #1")
    assert feed.errors() == [
        ("MSFT", "wrong_group"),
        ("IBM", "wrong_group"),
        ("SPY", "wrong_group"),
        ("AAPL", "forbidden_ticker"),
    ]
    await asyncio.sleep(0.1)
    assert len(server.conns) == 1 and client.routes() == []
    assert client.tickers == ("MSFT", "IBM", "SPY")  # a refusal not followed is kept
    await feed.stop()


async def test_a_route_connections_other_errors_and_its_own_key_come_through(
    server: Scripted,
) -> None:
    _, feed, _, route = await routed(server)
    assert route is not None
    await route.send(
        {"type": "error", "code": "rate_limited", "message": "slow down", "ticker": "MSFT"},
        wrong_group("MSFT", "g2-0"),  # the key of this very connection: a misconfiguration
    )
    await feed.until(lambda: len(feed.errors()) == 2, "two errors")
    assert feed.errors() == [("MSFT", "rate_limited"), ("MSFT", "wrong_group")]
    await asyncio.sleep(0.1)
    assert len(server.conns) == 2
    await feed.stop()


async def test_a_route_connection_whose_last_ticker_is_refused_closes(server: Scripted) -> None:
    client, feed, _, route = await routed(server)
    assert route is not None
    forbidden = {"type": "error", "code": "forbidden_ticker", "message": "no", "ticker": "MSFT"}
    await route.send(forbidden)
    await asyncio.wait_for(route.closed.wait(), 5)
    assert feed.errors() == [("MSFT", "forbidden_ticker")]
    assert client.routes() == [] and client.tickers == ("AAPL",)
    await feed.stop()


async def test_a_main_connection_back_on_the_other_group_moves_its_tickers_resuming(
    server: Scripted,
) -> None:
    client, feed, main, route = await routed(server)
    assert route is not None
    await main.send(snapshot("AAPL", 4, "a1"))
    await feed.until(lambda: feed.seqs("AAPL") == [4], "AAPL #4")
    main.drop()
    main2 = await server.conn(index=1)
    resume = {"AAPL": {"seq": 4, "epoch": "a1"}}
    resume_aapl = {"action": "subscribe", "tickers": ["AAPL"], "resume": resume}
    assert await main2.frame() == resume_aapl
    # `/ws` has no route: the balancer sent it to the other group this time.
    await main2.send(wrong_group("AAPL", "g1-1"))
    g1 = await server.conn("g1-1")
    assert await g1.frame() == resume_aapl
    assert not route.closed.is_set()
    assert [(r.key, r.tickers) for r in client.routes()] == [
        ("g2-0", ("MSFT",)),
        ("g1-1", ("AAPL",)),
    ]
    await g1.send(update("AAPL", 5))
    await feed.until(lambda: feed.seqs("AAPL") == [4, 5], "AAPL #5")
    # The main connection holds nothing now, and stays (it is where new tickers go).
    assert not main2.closed.is_set()
    await feed.stop()


async def test_a_ticker_moves_on_to_another_key_and_the_empty_connection_closes(
    server: Scripted,
) -> None:
    client, feed, _, route = await routed(server)
    assert route is not None
    await route.send(wrong_group("MSFT", "g3-1"))
    await asyncio.wait_for(route.closed.wait(), 5)
    third = await server.conn("g3-1")
    assert await third.frame() == {"action": "subscribe", "tickers": ["MSFT"]}
    assert [r.key for r in client.routes()] == ["g3-1"]
    assert feed.errors() == []
    await feed.stop()


async def test_a_ticker_moved_too_often_is_an_error(server: Scripted) -> None:
    """Groups that keep sending a ticker to each other (a misconfiguration) do not make
    the client open connections for ever: past MAX_ROUTE_HOPS, the refusal comes through."""
    _, feed, _, route = await routed(server)
    assert route is not None
    # Hops 2, 3, 4 (the main connection's refusal was the first); the next is the fifth.
    for key, index in [("g3-1", 0), ("g2-0", 1), ("g3-1", 1)]:
        await route.send(wrong_group("MSFT", key))
        route = await server.conn(key, index)
    await route.send(wrong_group("MSFT", "g2-0"))
    await feed.until(lambda: feed.errors() == [("MSFT", "wrong_group")], "the refusal")
    await asyncio.sleep(0.1)
    assert server.count("g2-0") == 2 and server.count("g3-1") == 2
    # Held where it was sent: the count starts again.
    await route.send(subscribed({"MSFT": "m1"}), wrong_group("MSFT", "g2-0"))
    await server.conn("g2-0", index=2)
    await feed.stop()


async def test_route_url_says_where_a_route_key_connects(server: Scripted) -> None:
    def route_url(key: str) -> str:
        return f"{server.url}/elsewhere?key={key}"

    client, feed, _, _ = await routed(server, route_url=route_url, token="tok")
    await until(lambda: len(server.conns) == 2, "a second connection")
    other = server.conns[1]
    assert other.path == "/elsewhere?key=g2-0&access_token=tok"
    assert await other.frame() == {"action": "subscribe", "tickers": ["MSFT"]}
    assert client.routes()[0].url == f"{server.url}/elsewhere?key=g2-0"
    await feed.stop()


async def test_a_route_url_that_is_no_websocket_url_ends_the_client(server: Scripted) -> None:
    client, feed, main, _ = await routed(server, route_url=lambda key: f"ftp://{key}")
    await asyncio.wait_for(feed.ended.wait(), 5)
    assert isinstance(feed.error, ConnectError)
    assert "route g2-0: not a WebSocket URL: 'ftp://g2-0'" in str(feed.error)
    await asyncio.wait_for(main.closed.wait(), 5)
    assert client.state == ConnectionState.CLOSED
    await client.close()


async def test_a_route_connection_that_gives_up_ends_the_client(server: Scripted) -> None:
    client, feed, main, route = await routed(server, max_reconnect_attempts=2)
    assert route is not None
    server.refuse = lambda path: "route=" in path
    route.drop()
    await asyncio.wait_for(feed.ended.wait(), 5)
    assert isinstance(feed.error, ConnectError) and "HTTP 503" in str(feed.error)
    assert "route=g2-0" in str(feed.error)
    assert client.state == ConnectionState.CLOSED
    await asyncio.wait_for(main.closed.wait(), 5)  # the main one is closed with it
    await client.close()


async def test_close_closes_the_route_connections(server: Scripted) -> None:
    client, feed, main, route = await routed(server)
    assert route is not None
    await feed.stop()
    await asyncio.wait_for(asyncio.gather(main.closed.wait(), route.closed.wait()), 5)
    assert main.ws.close_code == 1000 and route.ws.close_code == 1000
    assert client.routes() == [] and client.state == ConnectionState.CLOSED
    assert feed.error is None
