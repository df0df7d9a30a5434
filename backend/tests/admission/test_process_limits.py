"""Process-wide budgets (docs/protocol.md#limits), each hit through a real socket.

What a client asks for creates state for the whole process: tickers held (subscribed or
lingering), new tickers brought in, subscriptions per address, resume history. Each limit
answers with a per-ticker `error` (or, on `/ws/stocks/{T}`, an error and a close) and
never costs the other clients anything.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.servers import Server, StartServer, wait_health
from tests.wsutil import recv_json, recv_until

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")


# The client IP comes from X-Forwarded-For when the peer is a trusted proxy: the tests'
# servers trust loopback, and each test client claims its own TEST-NET address.
AS_PROXY = {"STOCKFEED_TRUSTED_PROXIES": "127.0.0.1"}


def from_ip(ip: str) -> dict[str, Any]:
    return {"additional_headers": {"X-Forwarded-For": ip}}


async def subscribe(ws: ClientConnection, *tickers: str) -> dict[str, dict[str, Any]]:
    """Send one subscribe; return the per-ticker errors and the acknowledgement."""
    await ws.send(json.dumps({"action": "subscribe", "tickers": list(tickers)}))
    errors: dict[str, dict[str, Any]] = {}
    while True:
        msg = await recv_json(ws)
        if msg["type"] == "error":
            errors[msg["ticker"]] = msg
        elif msg["type"] == "subscribed":
            return {"errors": errors, "ack": msg}


async def unsubscribe(ws: ClientConnection, *tickers: str) -> None:
    await ws.send(json.dumps({"action": "unsubscribe", "tickers": list(tickers)}))
    await recv_until(ws, "unsubscribed")


async def test_ticker_limit_evicts_lingering_then_refuses(start_server: StartServer) -> None:
    server: Server = start_server(
        *FAST_SIM, env={"STOCKFEED_MAX_TICKERS": "3", "STOCKFEED_RESUME_WINDOW": "300"}
    )
    async with connect(server.ws + "/ws") as a, connect(server.ws + "/ws") as b:
        got = await subscribe(a, "DE", "DG", "DIS")
        assert got["errors"] == {}
        # All three held and watched: a fourth has nowhere to go.
        got = await subscribe(b, "DOW")
        assert got["errors"]["DOW"]["code"] == "ticker_limit"
        assert "3 tickers" in got["errors"]["DOW"]["message"]
        assert got["ack"]["tickers"] == []
        # One is left: it lingers, and a new ticker takes its place.
        await unsubscribe(a, "DE")
        got = await subscribe(b, "DOW")
        assert got["errors"] == {}
        assert (await recv_until(b, "price_update"))["ticker"] == "DOW"
        health = server.health()
        assert health["tickers"] == {
            "held": 3,
            "lingering": 0,
            "max": 3,
            "evicted": 1,
            "group": None,
        }
        assert health["refused"] == {"ticker_limit": 1}
        # A ticker already held costs nothing: always accepted.
        got = await subscribe(b, "DG")
        assert got["errors"] == {}
    # The single-ticker endpoint: an error naming the ticker, then 1013 (try again later).
    async with connect(server.ws + "/ws") as c:
        await subscribe(c, "DE", "DG", "DIS")
        async with connect(server.ws + "/ws/stocks/DUK") as d:
            error = await recv_json(d)
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(d)
        assert error["code"] == "ticker_limit" and error["ticker"] == "DUK"
        assert info.value.rcvd is not None and info.value.rcvd.code == 1013


async def test_new_ticker_rate_per_connection(start_server: StartServer) -> None:
    server: Server = start_server(
        *FAST_SIM,
        env={"STOCKFEED_NEW_TICKER_BURST": "3", "STOCKFEED_NEW_TICKERS_PER_MINUTE": "0.01"},
    )
    async with connect(server.ws + "/ws") as a, connect(server.ws + "/ws") as b:
        got = await subscribe(a, "NEE", "NEM", "NET", "NFLX", "NKE")
        assert set(got["errors"]) == {"NFLX", "NKE"}
        assert {e["code"] for e in got["errors"].values()} == {"new_ticker_rate"}
        assert got["ack"]["tickers"] == ["NEE", "NEM", "NET"]
        # Tickers the process already holds are not new: another connection gets them
        # without spending its own budget, then still has its whole burst for new ones.
        got = await subscribe(b, "NEE", "NEM", "NET", "NFLX", "NKE", "NOC", "NOW")
        assert set(got["errors"]) == {"NOW"}
        # Loopback is exempt from per-IP limits, never from per-connection ones.
        assert server.health()["refused"] == {"new_ticker_rate": 3}
        # The refused connection keeps streaming what it holds.
        while (await recv_json(a))["type"] != "price_update":
            pass


async def test_new_ticker_rate_per_ip(start_server: StartServer) -> None:
    server: Server = start_server(
        *FAST_SIM,
        env={
            **AS_PROXY,
            "STOCKFEED_LIMIT_EXEMPT_IPS": "",
            "STOCKFEED_NEW_TICKER_BURST_PER_IP": "4",
            "STOCKFEED_NEW_TICKERS_PER_MINUTE_PER_IP": "0.01",
        },
    )
    url = server.ws + "/ws"
    async with connect(url, **from_ip("203.0.113.7")) as a:
        async with connect(url, **from_ip("203.0.113.7")) as b:
            assert (await subscribe(a, "PEP", "PFE", "PG"))["errors"] == {}
            got = await subscribe(b, "PGR", "PH")
            assert got["errors"]["PH"]["code"] == "new_ticker_rate"
            assert "per address" in got["errors"]["PH"]["message"]
            # Another address has a budget of its own.
            async with connect(url, **from_ip("203.0.113.8")) as c:
                assert (await subscribe(c, "PH"))["errors"] == {}
            # The single-ticker endpoint: the error, then 4429.
            async with connect(server.ws + "/ws/stocks/PLD", **from_ip("203.0.113.7")) as d:
                error = await recv_json(d)
                with pytest.raises(ConnectionClosed) as info:
                    await recv_json(d)
            assert error["code"] == "new_ticker_rate"
            assert info.value.rcvd is not None and info.value.rcvd.code == 4429


async def test_subscriptions_per_ip_across_connections(start_server: StartServer) -> None:
    server: Server = start_server(
        *FAST_SIM,
        env={
            **AS_PROXY,
            "STOCKFEED_LIMIT_EXEMPT_IPS": "",
            "STOCKFEED_MAX_SUBSCRIPTIONS_PER_IP": "3",
        },
    )
    url = server.ws + "/ws"
    async with connect(url, **from_ip("203.0.113.9")) as b:
        async with connect(url, **from_ip("203.0.113.9")) as a:
            assert (await subscribe(a, "AAPL", "MSFT"))["errors"] == {}
            got = await subscribe(b, "GOOGL", "AMZN")
            assert got["errors"]["AMZN"]["code"] == "subscription_limit"
            assert "per address" in got["errors"]["AMZN"]["message"]
            assert got["ack"]["tickers"] == ["GOOGL"]
            # An unsubscribe gives the slot back.
            await unsubscribe(a, "MSFT")
            assert (await subscribe(b, "AMZN"))["errors"] == {}
            assert (await subscribe(b, "TSLA"))["errors"]["TSLA"]["code"] == ("subscription_limit")
        # A closed connection gives back all it held (AAPL).
        deadline = time.monotonic() + 5
        while True:
            got = await subscribe(b, "TSLA")
            if not got["errors"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert got["errors"] == {}
        assert got["ack"]["tickers"] == ["AMZN", "GOOGL", "TSLA"]


async def test_a_flood_touched_ticker_lingers_briefly(start_server: StartServer) -> None:
    server: Server = start_server(
        *FAST_SIM, env={"STOCKFEED_RESUME_WINDOW": "300", "STOCKFEED_LINGER_MIN": "1"}
    )
    async with connect(server.ws + "/ws") as ws:
        await subscribe(ws, "F", "FDX")
        await unsubscribe(ws, "F", "FDX")
        health = await wait_health(server, lambda h: h["tickers"]["lingering"] == 2, 5)
        # Watched for a moment: gone after `linger_min`, not after the 300 s window.
        health = await wait_health(server, lambda h: h["tickers"]["held"] == 0, 10)
        assert health["tickers"]["lingering"] == 0


async def test_resume_history_keeps_to_its_byte_budget(start_server: StartServer) -> None:
    budget = 64 * 1024  # the smallest allowed
    server: Server = start_server(
        "--source",
        "sim",
        "--sim-tick-interval",
        "0.01",
        env={"STOCKFEED_RESUME_HISTORY_BYTES": str(budget), "STOCKFEED_RESUME_HISTORY": "100000"},
    )
    async with connect(server.ws + "/ws") as ws:
        got = await subscribe(ws, "HD", "HON", "HPQ")
        epoch = got["ack"]["epochs"]["HD"]
        first = await recv_until(ws, "price_update")
        while first["ticker"] != "HD":
            first = await recv_until(ws, "price_update")
        health = await wait_health(server, lambda h: h["history"]["shed"] > 0, 20)
        assert health["history"]["bytes"] <= budget
        assert health["history"]["max_bytes"] == budget
    # A resume from before what was kept: the flagged gap snapshot, never silence.
    async with connect(server.ws + "/ws") as ws:
        point = {"seq": first["seq"], "epoch": epoch}
        await ws.send(
            json.dumps({"action": "subscribe", "tickers": ["HD"], "resume": {"HD": point}})
        )
        snap = await recv_until(ws, "snapshot")
        assert snap["gap"] is True
    # A resume within what was kept replays exactly the updates after it.
    async with connect(server.ws + "/ws") as ws:
        await subscribe(ws, "HD")
        recent = await recv_until(ws, "price_update")
    async with connect(server.ws + "/ws") as ws:
        await ws.send(
            json.dumps({"action": "subscribe", "tickers": ["HD"], "resume": {"HD": recent["seq"]}})
        )
        msg = await recv_json(ws)
        while msg["type"] in ("subscribed", "market_status"):
            msg = await recv_json(ws)
        assert msg["type"] == "price_update" and msg["seq"] == recent["seq"] + 1
