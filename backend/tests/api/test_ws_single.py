"""`/ws/stocks/{ticker}` against a real server process, with both brokers: what needs a
real socket (uvicorn's frame limit, SIGTERM) or a real broker. The endpoint's logic runs
in-process in test_ws_endpoints.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.servers import StartServer
from tests.wsutil import recv_json, recv_until, recv_updates

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")
DATA_FIELDS = [
    "price",
    "change",
    "change_percent",
    "volume",
    "open",
    "high",
    "low",
    "prev_close",
    "market_time",
    "price_decimals",  # v1.1: the instrument's precision (the simulator always knows it)
    "source",  # v1.2 provenance
    "feed",
    "delayed",
]


def check_update_shape(msg: dict[str, Any], ticker: str) -> None:
    assert list(msg)[:5] == ["type", "ticker", "seq", "timestamp", "data"]
    assert msg["ticker"] == ticker
    assert isinstance(msg["seq"], int) and msg["seq"] >= 1
    assert isinstance(msg["timestamp"], int | float)
    assert list(msg["data"]) == DATA_FIELDS
    data = msg["data"]
    assert data["price"] > 0
    assert data["prev_close"] > 0
    assert data["change"] == pytest.approx(data["price"] - data["prev_close"], abs=1e-3)
    assert data["low"] <= data["price"] <= data["high"]
    assert isinstance(data["market_time"], int)


async def test_snapshot_then_consecutive_updates(
    start_server: StartServer, broker_url: str
) -> None:
    server = start_server(*FAST_SIM, "--broker", broker_url)
    async with connect(server.ws + "/ws/stocks/AAPL") as ws:
        await recv_updates(ws, 2)  # the updater is warm: a snapshot exists from now on
    async with connect(server.ws + "/ws/stocks/aapl") as ws:
        first = await recv_json(ws)
        assert first["type"] == "snapshot"
        check_update_shape(first, "AAPL")
        status = await recv_json(ws)
        assert status["type"] == "market_status"
        # The test servers' simulator trades around the clock: market SIM, for AAPL.
        assert (status["market"], status["ticker"]) == ("SIM", "AAPL")
        updates = await recv_updates(ws, 20)
    for msg in updates:
        check_update_shape(msg, "AAPL")
    seqs = [first["seq"]] + [m["seq"] for m in updates]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


async def test_oversized_frame_is_closed_1009(start_server: StartServer) -> None:
    server = start_server(*FAST_SIM)
    async with connect(server.ws + "/ws/stocks/MSFT", max_size=None) as ws:
        await ws.send(json.dumps({"type": "ping", "id": "x" * 100_000}))
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(1000):
                await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    # The server is fine afterwards.
    async with connect(server.ws + "/ws/stocks/MSFT") as ws:
        await recv_until(ws, "price_update")


async def test_shutdown_sends_notice_then_1001(start_server: StartServer, broker_url: str) -> None:
    server = start_server(*FAST_SIM, "--broker", broker_url)
    async with connect(server.ws + "/ws/stocks/AAPL") as ws:
        await recv_until(ws, "price_update")
        server.proc.send_signal(15)
        notice = await recv_until(ws, "server_shutdown", timeout=10)
        assert notice == {"type": "server_shutdown", "retry_after_ms": 2500}
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    # uvicorn re-raises the signal after a graceful stop, so it ends "killed by SIGTERM".
    assert await asyncio.to_thread(server.proc.wait, 15) in (0, -15)
    assert "Application shutdown complete" in server.log()
