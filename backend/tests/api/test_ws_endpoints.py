"""The WebSocket endpoints' logic in-process (tests/inprocess.py): the app `stockfeed
serve` runs, in this event loop, with no socket and no process. Validation, pings, bad
messages, the message rate, heartbeats, on-demand tickers and the per-connection limit;
what needs a real socket or a real broker is in test_ws_single.py and test_ws_multi.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.api.test_ws_multi import check_many_tickers_with_per_ticker_errors
from tests.inprocess import InProcessApp
from tests.wsutil import recv_json, recv_until, recv_updates

# Around the clock, as the process harness runs it: tests that wait for price updates pass
# at night and on weekends too.
FAST_SIM: dict[str, Any] = {"source": "sim", "sim_tick_interval": 0.05, "sim_market_hours": False}


async def test_on_demand_ticker_outside_watchlist() -> None:
    async with InProcessApp(**FAST_SIM, tickers=["AAPL"]) as app:
        async with app.connect("/ws/stocks/brk-b") as ws:
            updates = await recv_updates(ws, 3, types=("price_update", "snapshot"))
        assert {u["ticker"] for u in updates} == {"BRK-B"}
        hub = app.services.hub
        for _ in range(100):  # the session's end lets it go
            if not hub.subscriber_counts():
                break
            await asyncio.sleep(0.01)
        assert hub.subscriber_counts() == {}


@pytest.mark.parametrize("bad", ["TOO_LONG_TICKER_NAME", "AA%20PL", "a$b", "ÄAPL"])
async def test_invalid_ticker_gets_error_and_4400(bad: str) -> None:
    async with InProcessApp(**FAST_SIM) as app, app.connect("/ws/stocks/" + bad) as ws:
        msg = await recv_json(ws)
        assert msg["type"] == "error"
        assert msg["code"] == "invalid_ticker"
        with pytest.raises(ConnectionClosed) as info:
            await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4400


async def test_ping_pong_and_bad_messages_do_not_kill_the_connection() -> None:
    async with InProcessApp(**FAST_SIM) as app, app.connect("/ws/stocks/MSFT") as ws:
        await ws.send(json.dumps({"type": "ping", "id": 7}))
        assert (await recv_until(ws, "pong")) == {"type": "pong", "id": 7}
        for bad in [
            "not json",
            "[1,2]",
            '{"type":"nope"}',
            '{"action":"subscribe","tickers":["A"]}',
        ]:
            await ws.send(bad)
            err = await recv_until(ws, "error")
            assert err["code"] == "bad_message", bad
            assert err["message"]
        await ws.send(b"\x00\x01binary")
        assert (await recv_until(ws, "error"))["code"] == "bad_message"
        await ws.send(json.dumps({"type": "ping", "id": "abc"}))
        assert (await recv_until(ws, "pong"))["id"] == "abc"
        # Still streaming after all that.
        assert (await recv_until(ws, "price_update"))["ticker"] == "MSFT"


async def test_flooding_client_is_closed_1008() -> None:
    async with InProcessApp(**FAST_SIM) as app, app.connect("/ws/stocks/MSFT") as ws:
        with pytest.raises(ConnectionClosed) as info:
            for i in range(500):
                await ws.send(json.dumps({"type": "ping", "id": i}))
            for _ in range(2000):
                await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008


async def test_heartbeat() -> None:
    async with InProcessApp(**FAST_SIM, heartbeat_interval=0.3) as app:
        async with app.connect("/ws/stocks/AAPL") as ws:
            beat = await recv_until(ws, "heartbeat", timeout=5)
    assert set(beat) == {"type", "timestamp"}
    assert isinstance(beat["timestamp"], int | float)


async def test_many_tickers_with_per_ticker_errors() -> None:
    async with InProcessApp(**FAST_SIM, max_subscriptions=3) as app, app.connect("/ws") as ws:
        await check_many_tickers_with_per_ticker_errors(ws)
