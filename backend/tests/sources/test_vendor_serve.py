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
from decimal import Decimal
from typing import Any

import httpx
import pytest
from vendor_fakes.base import eventually
from vendor_fakes.coinbase import FakeCoinbase
from websockets.asyncio.client import ClientConnection, connect
from wsutil import recv_json

pytestmark = pytest.mark.process

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


async def serve(start_server: Any, *args: str, env: dict[str, str]) -> Any:
    # Started without blocking this loop: the fake vendor lives in it.
    server = start_server(*args, env=env, wait=False)
    await asyncio.to_thread(server.wait_ready)
    return server


async def test_coinbase_streams_its_trades_in_the_v1_protocol_with_bars_that_agree(
    start_server: Any, coinbase: FakeCoinbase
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
    start_server: Any, coinbase: FakeCoinbase
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
