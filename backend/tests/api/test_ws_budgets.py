"""Each bound of issue 20's WebSocket side, hit over a real socket against a real server:
replies to a client that does not read are bounded and end with 4408 even when no price
update ever comes; a WebSocket ping flood is counted like messages (1008); a refused
subscribe evicts nobody's lingering ticker; a REST first look counts in the process's
ticker budget."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.servers import StartServer, faketime_env
from tests.wsutil import recv_until, slow_client

pytestmark = pytest.mark.process

# Tickers the simulator quotes (its symbol directory): a full watchlist.
WATCHLIST = [
    "AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA", "META", "NFLX", "AMD", "INTC",
    "ORCL", "IBM", "CSCO", "ADBE", "CRM", "QCOM", "TXN", "AVGO", "PYPL", "SHOP",
    "UBER", "SPY", "QQQ", "DIA", "IWM", "JPM", "BAC", "WFC", "GS", "MS",
    "V", "MA", "KO", "PEP", "WMT", "COST", "HD", "NKE", "DIS", "MCD",
]  # fmt: skip


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_replies_to_a_client_that_never_reads_are_bounded_and_end_in_4408(
    start_server: StartServer,
) -> None:
    """The attack of issue 20: one /ws connection that never reads subscribes to a
    watchlist with bars, then unsubscribes and subscribes again and again. Whatever
    replies it causes, the server holds at most its budget for it, stops reading it once
    backed up, and closes it 4408 after the stuck timeout, though (market hours on, at
    night) no update ever comes."""
    # Monday 22:30 in New York: the market is closed, no equity update comes at all.
    server = start_server(
        "--source",
        "sim",
        env={
            "STOCKFEED_SIM_MARKET_HOURS": "true",
            "STOCKFEED_SLOW_CLIENT_TIMEOUT": "2",
            "STOCKFEED_CLIENT_BUFFER_BYTES": "262144",
            **faketime_env("2026-12-08 03:30:00"),
        },
    )
    before = rss_mib(server.pid)
    ws = await slow_client(server.ws + "/ws")
    assert ws.transport is not None
    ws.transport.pause_reading()  # never reads a byte
    subscribe = json.dumps({"action": "subscribe", "tickers": WATCHLIST, "bars": ["1m"]})
    unsubscribe = json.dumps({"action": "unsubscribe", "tickers": WATCHLIST})
    await ws.send(subscribe)
    sent = 1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.health()["slow_closed"] == 0:
        try:  # a send that blocks: the server stopped reading this client
            await asyncio.wait_for(ws.send(unsubscribe), 0.5)
            await asyncio.wait_for(ws.send(subscribe), 0.5)
            sent += 2
        except TimeoutError:
            await asyncio.sleep(0.5)
            continue
        await asyncio.sleep(0.1)
    health = server.health()
    assert health["slow_closed"] == 1, f"not closed after {sent} messages: {health}"
    assert rss_mib(server.pid) - before < 40  # the 40 tickers' books, not the replies
    # A client that reads gets its stream on the same server.
    async with connect(server.ws + "/ws/stocks/AAPL") as good:
        assert (await recv_until(good, "market_status"))["type"] == "market_status"
    ws.transport.abort()


async def test_websocket_pings_count_against_the_message_rate(start_server: StartServer) -> None:
    server = start_server("--source", "sim", env={"STOCKFEED_CLIENT_MESSAGE_BURST": "10"})
    async with connect(server.ws + "/ws", ping_interval=None) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(200):  # protocol-level pings, far over 10 at once
                await ws.ping()
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg["type"] == "error":
                    assert msg["code"] == "rate_limited"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_refused_subscribe_evicts_no_lingering_ticker(start_server: StartServer) -> None:
    server = start_server(
        "--source",
        "sim",
        env={"STOCKFEED_MAX_TICKERS": "2", "STOCKFEED_LINGER_MIN": "60"},
    )
    async with connect(server.ws + "/ws") as ws:
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL", "MSFT"]}))
        await recv_until(ws, "market_status")
        await ws.send(json.dumps({"action": "unsubscribe", "tickers": ["MSFT"]}))
        await recv_until(ws, "unsubscribed")
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["NOSUCHTICKER1"]}))
        error = await recv_until(ws, "error")
        assert error["code"] == "unknown_ticker" and error["ticker"] == "NOSUCHTICKER1"
        assert (await recv_until(ws, "subscribed"))["tickers"] == ["AAPL"]
        tickers = server.health()["tickers"]
        assert tickers["lingering"] == 1 and tickers["evicted"] == 0
        # A ticker the source knows takes MSFT's place, as it may.
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["GOOGL"]}))
        assert (await recv_until(ws, "subscribed"))["tickers"] == ["AAPL", "GOOGL"]
        for _ in range(50):
            if server.health()["tickers"]["evicted"] == 1:
                break
            await asyncio.sleep(0.1)
        assert server.health()["tickers"]["evicted"] == 1


async def test_a_rest_first_look_counts_in_the_ticker_budget(start_server: StartServer) -> None:
    # The updater warms up only AAPL: the others are produced only when someone asks.
    server = start_server(
        "--source", "sim", "--tickers", "AAPL", env={"STOCKFEED_MAX_TICKERS": "2"}
    )
    async with connect(server.ws + "/ws") as ws:
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL"]}))
        await recv_until(ws, "market_status")
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
            first = await http.get("/api/quotes/MSFT")  # the second ticker: room for it
            assert first.status_code == 200, first.text
            full = await http.get("/api/quotes/GOOGL")  # a third: none, and MSFT stays
            assert full.status_code == 503
            assert full.json()["error"]["code"] == "ticker_limit"
            assert full.headers["retry-after"]
        tickers = server.health()["tickers"]
        assert tickers["held"] == 2 and tickers["evicted"] == 0
