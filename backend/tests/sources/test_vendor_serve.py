"""`stockfeed serve --source <vendor>` against each fake vendor: a real server process, the
fake in this process, real sockets between. Clients get the vendor's tickers in the v1
protocol (every message checked against the AsyncAPI document by wsutil), each update
saying where it came from; the bars built from the vendor's trades agree with the bars the
vendor itself serves; /api/symbols lists the vendor's instruments."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import StartServer, faketime_env
from tests.sources.vendor_fakes.alpaca import FakeAlpaca
from tests.sources.vendor_fakes.base import eventually
from tests.sources.vendor_fakes.coinbase import FakeCoinbase
from tests.sources.vendor_fakes.finnhub import FakeFinnhub
from tests.sources.vendor_fakes.massive import FakeMassive
from tests.wsutil import recv_json

pytestmark = pytest.mark.process
NEW_YORK = ZoneInfo("America/New_York")

V1_FIELDS = [
    "price",
    "change",
    "change_percent",
    "volume",
    "open",
    "high",
    "low",
    "prev_close",
    "market_time",
]


class Feed:
    """A client on /ws reading in the background, keeping what it got by type."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            self.messages.append(await recv_json(self.ws, timeout=120))

    def of(self, kind: str, ticker: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages
            if m["type"] == kind and (ticker is None or m.get("ticker") == ticker)
        ]

    def quotes(self, ticker: str) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages
            if m["type"] in ("snapshot", "price_update") and m.get("ticker") == ticker
        ]

    def bars(self, ticker: str, interval: str = "1m") -> dict[int, dict[str, Any]]:
        """Every bar seen, by time, the latest version of each."""
        out: dict[int, dict[str, Any]] = {}
        for m in self.messages:
            if m.get("ticker") != ticker or m.get("interval") != interval:
                continue
            for bar in (
                m["bars"] if m["type"] == "bars" else [m["bar"]] if m["type"] == "bar" else []
            ):
                out[bar["time"]] = bar
        return out


def check_seqs(quotes: list[dict[str, Any]]) -> None:
    """Contiguous seqs after the first message, or a flagged gap snapshot."""
    last = None
    for msg in quotes:
        if last is not None and not msg.get("gap"):
            assert msg["seq"] == last + 1, f"seq jumped {last} -> {msg['seq']} silently"
        last = msg["seq"]


@pytest.fixture
async def coinbase() -> AsyncIterator[FakeCoinbase]:
    fake = await FakeCoinbase(heartbeat_interval=0.5).start()
    yield fake
    await fake.stop_market()
    await fake.stop()


def coinbase_env(fake: FakeCoinbase) -> dict[str, str]:
    return {
        "STOCKFEED_COINBASE_URL": fake.ws_url,
        "STOCKFEED_COINBASE_REST_URL": fake.http_url,
    }


async def serve(start_server: StartServer, *args: str, env: dict[str, str]) -> Any:
    # Started without blocking this loop: the fake vendor lives in it.
    server = start_server(*args, env=env, wait=False)
    await asyncio.to_thread(server.wait_ready)
    return server


async def test_coinbase_streams_its_trades_in_the_v1_protocol_with_bars_that_agree(
    start_server: StartServer, coinbase: FakeCoinbase
) -> None:
    server = await serve(
        start_server, "--source", "coinbase", "--tickers", "BTC-USD", env=coinbase_env(coinbase)
    )
    # Trades stamped in two whole minutes a little in the past, then one in the next:
    # the server's bars of those minutes are final and built from these trades alone.
    minute = (time.time_ns() // 60_000_000_000 - 4) * 60_000_000_000
    prices = {
        0: ["21932.98", "21940.10", "21925.55", "21933.01"],
        1: ["21933.50", "21901.25", "21950.75", "21944.44"],
    }
    async with connect(server.ws + "/ws") as ws:
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["BTC-USD"], "bars": ["1m"]}))
        feed = Feed(ws)
        await eventually(lambda: coinbase.subscribed() == {"BTC-USD"}, timeout=30)
        for m, row in prices.items():
            for i, price in enumerate(row):
                at = minute + m * 60_000_000_000 + (i + 1) * 10_000_000_000
                await coinbase.trade("BTC-USD", price, f"0.{i + 1}", at_ns=at)
        await coinbase.trade("BTC-USD", "21960.00", "1.5", at_ns=minute + 125_000_000_000)
        await eventually(lambda: len(feed.quotes("BTC-USD")) >= 9, timeout=30)
        await eventually(lambda: len(feed.bars("BTC-USD")) >= 3, timeout=30)
        feed.task.cancel()
    quotes = feed.quotes("BTC-USD")
    for msg in quotes:
        data = msg["data"]
        assert list(data)[: len(V1_FIELDS)] == V1_FIELDS, "the v1 fields, in order"
        assert (data["source"], data["feed"], data["delayed"]) == ("coinbase", None, 0)
        assert data["volume"] is None, "Coinbase has no day volume: never a sum of sizes"
    updates = [m for m in quotes if m["type"] == "price_update"]
    assert [u["data"]["price"] for u in updates[-9:]] == [
        float(p) for p in prices[0] + prices[1] + ["21960.00"]
    ]
    assert updates[-1]["data"]["market_time"] == (minute + 125_000_000_000) // 1_000_000
    assert updates[-1]["data"]["volume_24h"] > 0
    check_seqs(quotes)
    # The vendor's own candles (its REST history) and the server's bars from its trades.
    wire = feed.bars("BTC-USD")
    async with httpx.AsyncClient(base_url=server.base) as http:
        history = (await http.get("/api/history/BTC-USD?interval=1m&range=1d")).json()
        symbols = (await http.get("/api/symbols?q=ethereum")).json()
    rest = {b["time"]: b for b in history["bars"]}
    for m in (0, 1):
        start = (minute + m * 60_000_000_000) // 10**9
        vendor = coinbase.candles("BTC-USD", 60, start, start + 60)[0]
        bar = wire[start]
        assert bar["final"] is True
        assert (bar["open"], bar["high"], bar["low"], bar["close"]) == tuple(
            float(vendor[k]) for k in ("open", "high", "low", "close")
        )
        assert bar["volume"] is None  # the day volume the wire's bar volume needs: none
        assert rest[start]["close"] == bar["close"] and rest[start]["high"] == bar["high"]
    assert symbols["symbols"][0]["symbol"] == "ETH-USD"
    assert symbols["symbols"][0]["exchange"] == "Coinbase"
    health = server.health()
    assert health["source"]["active"] == "coinbase"
    assert health["source"]["vendors"]["coinbase"]["connected"] is True
    assert coinbase.connections == 1


async def test_coinbase_snapshots_carry_the_provenance(
    start_server: StartServer, coinbase: FakeCoinbase
) -> None:
    coinbase.start_market(["BTC-USD"], interval=0.2)
    server = await serve(
        start_server, "--source", "coinbase", "--tickers", "BTC-USD", env=coinbase_env(coinbase)
    )
    async with connect(server.ws + "/ws/stocks/BTC-USD") as ws:
        while (await recv_json(ws, timeout=30))["type"] != "price_update":
            pass
    async with connect(server.ws + "/ws/stocks/BTC-USD") as ws:
        snap = await recv_json(ws, timeout=10)
    assert snap["type"] == "snapshot"
    assert (snap["data"]["source"], snap["data"]["delayed"]) == ("coinbase", 0)
    assert Decimal(str(snap["data"]["price"])) > 0


# -- Alpaca -------------------------------------------------------------------------------

KEY_ENV = {"APCA_API_KEY_ID": "PKTEST", "APCA_API_SECRET_KEY": "s3cret"}


@pytest.fixture
async def alpaca() -> AsyncIterator[FakeAlpaca]:
    fake = await FakeAlpaca(feeds=("iex", "test")).start()
    yield fake
    await fake.stop()


def alpaca_env(fake: FakeAlpaca, feed: str = "iex") -> dict[str, str]:
    return {
        **KEY_ENV,
        "STOCKFEED_ALPACA_URL": f"{fake.ws_url}/v2/{feed}",
        "STOCKFEED_ALPACA_CRYPTO_URL": f"{fake.ws_url}/v1beta3/crypto/us",
        "STOCKFEED_ALPACA_REST_URL": fake.http_url,
        "STOCKFEED_ALPACA_TRADING_URL": fake.http_url,
    }


async def test_alpaca_streams_in_the_v1_protocol_and_its_bars_agree_with_the_wire(
    start_server: StartServer, alpaca: FakeAlpaca
) -> None:
    server = await serve(
        start_server, "--source", "alpaca", "--tickers", "AAPL", env=alpaca_env(alpaca)
    )
    minute = (time.time_ns() // 60_000_000_000 - 4) * 60
    day = int(
        datetime.fromtimestamp(minute, NEW_YORK).replace(hour=0, minute=0, second=0).timestamp()
    )
    prices = {
        0: ["126.55", "126.80", "126.40", "126.61"],
        1: ["126.70", "126.05", "127.20", "126.99"],
    }
    async with connect(server.ws + "/ws") as ws:
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL"], "bars": ["1m"]}))
        feed = Feed(ws)
        await eventually(lambda: alpaca.subscribed("trades", "iex") == {"AAPL"}, timeout=30)
        for m, row in prices.items():
            start = minute + 60 * m
            for i, price in enumerate(row):
                await alpaca.trade(
                    "AAPL", price, str(100 * (i + 1)), at_ns=(start + 10 * i + 5) * 10**9
                )
            # Right after each minute, as Alpaca sends them: its bar, then the day so far.
            await alpaca.minute_bar("AAPL", start)
            await alpaca.daily_bar("AAPL", day)
        await alpaca.trade("AAPL", "127.01", "50", at_ns=(minute + 125) * 10**9)
        await eventually(lambda: len(feed.bars("AAPL")) >= 3, timeout=30)
        await eventually(
            lambda: feed.quotes("AAPL") and feed.quotes("AAPL")[-1]["data"]["price"] == 127.01
        )
        feed.task.cancel()
    quotes = feed.quotes("AAPL")
    check_seqs(quotes)
    for msg in quotes:
        data = msg["data"]
        assert list(data)[: len(V1_FIELDS)] == V1_FIELDS
        assert (data["source"], data["feed"], data["delayed"]) == ("alpaca", "iex", 0)
    last = quotes[-1]["data"]
    assert last["volume"] == 2000, "the daily bar's cumulative volume (1000 + 1000)"
    assert (last["open"], last["high"], last["low"]) == (126.55, 127.2, 126.05)
    wire = feed.bars("AAPL")
    for m in (0, 1):
        start = minute + 60 * m
        vendor = alpaca.bar_of("AAPL", start, 60)
        assert vendor is not None
        bar = wire[start]
        assert bar["final"] is True
        assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
            vendor["o"],
            vendor["h"],
            vendor["l"],
            vendor["c"],
        )
    # The second minute's volume is the daily bar's growth: the vendor's minute volume.
    assert wire[minute + 60]["volume"] == alpaca.bar_of("AAPL", minute + 60, 60)["v"] == 1000  # type: ignore[index]
    async with httpx.AsyncClient(base_url=server.base) as http:
        history = (await http.get("/api/history/AAPL?interval=1m&range=1d")).json()
        symbols = (await http.get("/api/symbols?q=berkshire")).json()
    rest = {b["time"]: b for b in history["bars"]}
    assert rest[minute + 60]["close"] == wire[minute + 60]["close"]
    assert [(s["symbol"], s["exchange"]) for s in symbols["symbols"]] == [("BRK-B", "NYSE")]
    assert alpaca.connections == 1 and len(alpaca.authenticated()) == 1


async def test_two_processes_one_vendor_connection_handed_over_when_the_leader_dies(
    start_server: StartServer, alpaca: FakeAlpaca, redis_url: str
) -> None:
    args = ("--source", "alpaca", "--tickers", "AAPL", "--broker", redis_url, "--leader-ttl", "1")
    a = await serve(start_server, *args, env=alpaca_env(alpaca))
    b = await serve(start_server, *args, env=alpaca_env(alpaca))
    await eventually(lambda: alpaca.subscribed("trades", "iex") == {"AAPL"}, timeout=30)
    feeds = []
    sockets = []
    for server in (a, b):
        ws = await connect(server.ws + "/ws")
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL"]}))
        sockets.append(ws)
        feeds.append(Feed(ws))
    try:
        for feed in feeds:
            await eventually(lambda feed=feed: feed.of("subscribed"), timeout=20)
        for i in range(20):
            await alpaca.trade("AAPL", f"{130 + i / 100:.2f}")
            await asyncio.sleep(0.02)
        for feed in feeds:
            await eventually(
                lambda feed=feed: len(feed.of("price_update", "AAPL")) >= 20, timeout=20
            )
        assert alpaca.connections == 1 and alpaca.max_open == 1, "one socket per key"
        for feed in feeds:  # both processes' clients got every update, in order
            check_seqs(feed.quotes("AAPL"))
        leader = a if a.health()["updater"]["is_leader"] else b
        other = b if leader is a else a
        survivor = feeds[1] if leader is a else feeds[0]
        leader.kill()
        await eventually(lambda: alpaca.connections == 2, timeout=30)
        await eventually(lambda: alpaca.subscribed("trades", "iex") == {"AAPL"}, timeout=30)
        assert alpaca.max_open == 1, "never two at once"
        assert other.health()["updater"]["is_leader"] is True
        before = len(survivor.of("price_update", "AAPL"))
        for i in range(10):
            await alpaca.trade("AAPL", f"{140 + i / 100:.2f}")
            await asyncio.sleep(0.02)
        await eventually(
            lambda: len(survivor.of("price_update", "AAPL")) >= before + 10, timeout=20
        )
        check_seqs(survivor.quotes("AAPL"))
        assert survivor.quotes("AAPL")[-1]["data"]["price"] == 140.09
    finally:
        for feed in feeds:
            feed.task.cancel()
        for ws in sockets:
            await ws.close()


# -- Massive ------------------------------------------------------------------------------


async def test_massive_streams_in_the_v1_protocol_and_its_bars_agree_with_the_wire(
    start_server: StartServer,
) -> None:
    massive = await FakeMassive().start()
    env = {
        "MASSIVE_API_KEY": "MASSIVEKEY",
        "STOCKFEED_MASSIVE_URL": f"{massive.ws_url}/stocks",
        "STOCKFEED_MASSIVE_REST_URL": massive.http_url,
    }
    try:
        server = await serve(start_server, "--source", "massive", "--tickers", "AAPL", env=env)
        minute = (time.time_ns() // 60_000_000_000 - 4) * 60
        prices = {
            0: ["114.125", "114.40", "113.90", "114.20"],
            1: ["114.30", "113.75", "114.95", "114.60"],
        }
        async with connect(server.ws + "/ws") as ws:
            await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL"], "bars": ["1m"]}))
            feed = Feed(ws)
            await eventually(lambda: massive.subscribed("T") == {"AAPL"}, timeout=30)
            await eventually(lambda: feed.of("subscribed"), timeout=30)
            for m, row in prices.items():
                start = minute + 60 * m
                for i, price in enumerate(row):
                    second = start + 10 * i + 5
                    await massive.trade("AAPL", price, str(100 * (i + 1)), at_ns=second * 10**9)
                    await massive.second_agg("AAPL", second)  # the day's volume so far
                await massive.minute_agg("AAPL", start)
            await massive.trade("AAPL", "114.80", "50", at_ns=(minute + 125) * 10**9)
            await eventually(lambda: len(feed.bars("AAPL")) >= 3, timeout=30)
            await eventually(
                lambda: feed.quotes("AAPL") and feed.quotes("AAPL")[-1]["data"]["price"] == 114.8
            )
            feed.task.cancel()
        quotes = feed.quotes("AAPL")
        check_seqs(quotes)
        for msg in quotes:
            data = msg["data"]
            assert list(data)[: len(V1_FIELDS)] == V1_FIELDS
            assert (data["source"], data["feed"], data["delayed"]) == ("massive", "realtime", 0)
        last = quotes[-1]["data"]
        assert last["volume"] == 2000, "av: the day's accumulated volume"
        assert last["open"] == 114.125, "op: the official open"
        wire = feed.bars("AAPL")
        for m in (0, 1):
            start = minute + 60 * m
            vendor = massive.aggregate("AAPL", start, 60, "AM")
            assert vendor is not None
            bar = wire[start]
            assert bar["final"] is True
            assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
                vendor["o"],
                vendor["h"],
                vendor["l"],
                vendor["c"],
            )
        # The second minute's volume is av's growth: the vendor's own minute volume.
        second_bar = massive.aggregate("AAPL", minute + 60, 60, "AM")
        assert second_bar is not None and wire[minute + 60]["volume"] == second_bar["v"] == 1000
        async with httpx.AsyncClient(base_url=server.base) as http:
            history = (await http.get("/api/history/AAPL?interval=1m&range=1d")).json()
            symbols = (await http.get("/api/symbols?q=berkshire")).json()
        rest = {b["time"]: b for b in history["bars"]}
        assert rest[minute + 60]["close"] == wire[minute + 60]["close"]
        assert [(s["symbol"], s["exchange"]) for s in symbols["symbols"]] == [("BRK-B", "XNYS")]
        health = server.health()["source"]
        assert health["active"] == "massive" and health["vendors"]["massive"]["connected"]
        assert massive.connections == 1 and len(massive.authenticated()) == 1
        assert "MASSIVEKEY" not in server.log() + json.dumps(server.health())
    finally:
        await massive.stop()


# -- Finnhub ------------------------------------------------------------------------------


async def test_finnhub_streams_its_trades_and_never_shows_the_key_in_its_url(
    start_server: StartServer,
) -> None:
    finnhub = await FakeFinnhub(ping_interval=0.5).start()
    key = "fhkey123"
    env = {
        "FINNHUB_API_KEY": key,
        "STOCKFEED_FINNHUB_URL": finnhub.ws_url,
        "STOCKFEED_FINNHUB_REST_URL": f"{finnhub.http_url}/api/v1",
        "STOCKFEED_LOG_LEVEL": "debug",
    }
    try:
        server = await serve(start_server, "--source", "finnhub", "--tickers", "MSFT", env=env)
        minute = (time.time_ns() // 60_000_000_000 - 3) * 60
        prices = ["402.10", "402.55", "401.80", "402.25", "403.00"]
        async with connect(server.ws + "/ws") as ws:
            await ws.send(json.dumps({"action": "subscribe", "tickers": ["MSFT"], "bars": ["1m"]}))
            feed = Feed(ws)
            await eventually(lambda: finnhub.subscribed() == {"MSFT"}, timeout=30)
            await eventually(lambda: feed.of("subscribed"), timeout=30)
            for i, price in enumerate(prices[:4]):
                await finnhub.trade("MSFT", price, "10", at_ns=(minute + 10 * i + 1) * 10**9)
            await finnhub.trade("MSFT", prices[4], "5", at_ns=(minute + 61) * 10**9)
            await eventually(lambda: len(feed.of("price_update", "MSFT")) >= 5, timeout=30)
            await eventually(lambda: len(feed.bars("MSFT")) >= 2, timeout=30)
            feed.task.cancel()
        quotes = feed.quotes("MSFT")
        check_seqs(quotes)
        updates = [m for m in quotes if m["type"] == "price_update"]
        assert [u["data"]["price"] for u in updates[-5:]] == [float(p) for p in prices]
        for msg in quotes:
            data = msg["data"]
            assert list(data)[: len(V1_FIELDS)] == V1_FIELDS
            assert (data["source"], data["feed"], data["delayed"]) == ("finnhub", None, 0)
            assert data["volume"] is None, "trade sizes are never summed into a day volume"
        bar = feed.bars("MSFT")[minute]
        assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["final"]) == (
            402.10,
            402.55,
            401.80,
            402.25,
            True,
        )
        async with httpx.AsyncClient(base_url=server.base) as http:
            symbols = (await http.get("/api/symbols?q=microsoft")).json()
        assert symbols["symbols"][0]["symbol"] == "MSFT"
        health = server.health()
        assert health["source"]["vendors"]["finnhub"]["connected"] is True
        assert finnhub.ws_paths == [f"/?token={key}"] and finnhub.connections == 1
        shown = server.log() + json.dumps(health)
        assert key not in shown, "the key in the socket's URL is masked everywhere"
    finally:
        await finnhub.stop()


# -- failover, in a server process ---------------------------------------------------------


async def test_a_failover_run_loses_no_update_silently_and_says_where_each_came_from(
    start_server: StartServer, alpaca: FakeAlpaca, coinbase: FakeCoinbase
) -> None:
    env = {
        **alpaca_env(alpaca),
        **coinbase_env(coinbase),
        "STOCKFEED_SOURCE_MUTE_AFTER": "1",
        "STOCKFEED_SOURCE_FAIL_BACK_AFTER": "1",
        "STOCKFEED_SOURCE_RECONNECT_MAX": "1",
    }
    server = await serve(
        start_server, "--source", "alpaca,coinbase", "--tickers", "BTC-USD", env=env
    )
    stop = asyncio.Event()

    async def pump() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            if alpaca.server is not None:
                await alpaca.trade("BTC/USD", f"{50000 + i % 40}.5", "0.01")
            await coinbase.trade("BTC-USD", f"{60000 + i % 40}.25", "0.02")
            await asyncio.sleep(0.05)

    trading = asyncio.create_task(pump())
    try:
        async with connect(server.ws + "/ws") as ws:
            await ws.send(json.dumps({"action": "subscribe", "tickers": ["BTC-USD"]}))
            feed = Feed(ws)

            def sources() -> list[str]:
                return [m["data"]["source"] for m in feed.quotes("BTC-USD")]

            await eventually(lambda: sources()[-5:] == ["alpaca"] * 5, timeout=30)
            port = alpaca.port
            await alpaca.stop()  # the first source killed mid-session
            await eventually(lambda: sources()[-5:] == ["coinbase"] * 5, timeout=30)
            health = server.health()["source"]
            assert health["failed_over"] == {"BTC-USD": "coinbase"}
            await alpaca.start(port)  # and restored
            await eventually(lambda: sources()[-5:] == ["alpaca"] * 5, timeout=30)
            feed.task.cancel()
    finally:
        stop.set()
        await trading
    quotes = feed.quotes("BTC-USD")
    check_seqs(quotes)
    runs = [s for i, s in enumerate(sources()) if i == 0 or sources()[i - 1] != s]
    assert runs == ["alpaca", "coinbase", "alpaca"]
    for msg in quotes:
        price, source = msg["data"]["price"], msg["data"]["source"]
        assert (price < 51000) == (source == "alpaca"), "each price is its own source's"
    status = server.health()["source"]
    assert status["switches"] == 2 and status["gaps"]["total"] >= 1


# -- market hours: a server on a fixed clock (Debian's faketime) ----------------------------


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        ("2026-12-08 03:00:00", False),  # Monday 22:00 in New York: night
        ("2026-12-08 13:00:00", False),  # Tuesday 08:00: pre-market
        ("2026-12-25 15:30:00", False),  # Christmas, a Friday: a holiday
        ("2026-12-08 15:30:00", True),  # Tuesday 10:30: the regular session
    ],
    ids=["night", "pre-market", "holiday", "regular"],
)
async def test_silence_fails_a_stock_over_only_while_its_market_is_open(
    start_server: StartServer, alpaca: FakeAlpaca, moment: str, is_open: bool
) -> None:
    env = {
        **alpaca_env(alpaca),
        **faketime_env(moment),
        "STOCKFEED_SOURCE_MUTE_AFTER": "1",
        "STOCKFEED_SIM_MARKET_HOURS": "true",
    }
    server = await serve(start_server, "--source", "alpaca,sim", "--tickers", "AAPL", env=env)
    await eventually(lambda: alpaca.subscribed("trades", "iex") == {"AAPL"}, timeout=30)
    # Alpaca sends nothing for AAPL: normal at night, on a holiday and before the open;
    # a mute feed while the market is open.
    if is_open:
        await eventually(
            lambda: server.health()["source"].get("failed_over") == {"AAPL": "sim"}, timeout=30
        )
        async with connect(server.ws + "/ws/stocks/AAPL") as ws:
            while True:
                msg = await recv_json(ws, timeout=20)
                if msg["type"] == "price_update":
                    break
        assert msg["data"]["source"] == "sim"
        status = server.health()["source"]["vendors"]["alpaca"]
        assert status["stale_tickers"] == ["AAPL"]
    else:
        await asyncio.sleep(4)  # four times the silence that would fail it over if open
        source = server.health()["source"]
        assert source.get("failed_over") == {}, source
        assert source["vendors"]["alpaca"]["stale_tickers"] == []
        assert alpaca.connections == 1, "a quiet closed market is not a mute socket"


async def test_alpaca_test_stream_smoke_check_with_fakepaca(
    start_server: StartServer, alpaca: FakeAlpaca
) -> None:
    # Alpaca's 24/7 test stream (v2/test, symbol FAKEPACA): the smoke check at any hour.
    server = await serve(
        start_server,
        "--source",
        "alpaca",
        "--tickers",
        "FAKEPACA",
        env=alpaca_env(alpaca, feed="test"),
    )
    await eventually(lambda: alpaca.subscribed("trades", "test") == {"FAKEPACA"}, timeout=30)
    async with connect(server.ws + "/ws/stocks/FAKEPACA") as ws:
        await alpaca.trade("FAKEPACA", "12.34")
        # Published before or after this client's subscription: a snapshot or an update.
        while (msg := await recv_json(ws, timeout=20))["type"] not in ("snapshot", "price_update"):
            pass
    assert (msg["data"]["price"], msg["data"]["source"], msg["data"]["feed"]) == (
        12.34,
        "alpaca",
        "test",
    )
