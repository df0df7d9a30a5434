"""Limits, each answered with a clear refusal and never a crash, on a real server.

Per-IP limits are tested from distinct client addresses: the server takes the client IP
from `X-Forwarded-For` when the peer is a trusted proxy (here 127.0.0.1, configured), so
each test client claims its own TEST-NET address. Plain loopback clients are exempt by
default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.servers import Server
from tests.wsutil import recv_json, recv_until

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(
        tmp_path_factory.mktemp("limits"),
        *FAST_SIM,
        "--max-connections-per-ip",
        "3",
        "--handshake-rate",
        "0.01",  # no refill within a test: the burst is all there is
        "--handshake-burst",
        "10",
        env={
            "STOCKFEED_MAX_SUBSCRIPTIONS": "3",
            "STOCKFEED_MAX_MESSAGE_BYTES": "4096",
            "STOCKFEED_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    try:
        yield running.wait_ready()
    finally:
        running.stop()


def from_ip(ip: str) -> dict[str, Any]:
    return {"additional_headers": {"X-Forwarded-For": ip}}


async def live(ws: ClientConnection) -> None:
    """The connection streams (a snapshot or an update arrives)."""
    while (await recv_json(ws))["type"] not in ("snapshot", "price_update"):
        pass


async def test_connections_per_ip(server: Server) -> None:
    url = server.ws + "/ws/stocks/AAPL"
    async with contextlib.AsyncExitStack() as stack:
        held = [
            await stack.enter_async_context(connect(url, **from_ip("203.0.113.1")))
            for _ in range(3)
        ]
        for ws in held:
            await live(ws)
        # The fourth from the same address: accepted, told why, closed with 4429.
        async with connect(url, **from_ip("203.0.113.1")) as extra:
            error = await recv_until(extra, "error")
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(extra)
        assert error == {
            "type": "error",
            "code": "too_many_connections",
            "message": "at most 3 connections per address",
        }
        assert info.value.rcvd is not None and info.value.rcvd.code == 4429
        # Other addresses, and loopback (exempt), are not affected.
        async with connect(url, **from_ip("203.0.113.2")) as other:
            await live(other)
        async with contextlib.AsyncExitStack() as local:
            for _ in range(5):
                await live(await local.enter_async_context(connect(url)))
        # Every connection still held keeps streaming.
        for ws in held:
            await live(ws)
        # A closed connection gives its slot back.
        await held[0].close()
        for _attempt in range(5):
            async with connect(url, **from_ip("203.0.113.1")) as again:
                first = await recv_json(again)
                if first["type"] != "error":
                    break
            await asyncio.sleep(0.2)  # the server has not seen the close yet
        assert first["type"] != "error", first


async def test_handshake_rate_per_ip(server: Server) -> None:
    url = server.ws + "/ws/stocks/AAPL"
    for _ in range(10):  # the burst
        async with connect(url, **from_ip("198.51.100.7")) as ws:
            await live(ws)
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, **from_ip("198.51.100.7")):
            pass
    response = info.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "100"  # 1 / 0.01 handshakes a second
    assert json.loads(response.body)["error"]["code"] == "rate_limited"
    # Refused attempts do not hurt other addresses, nor the multiplexed endpoint's users.
    async with connect(server.ws + "/ws", **from_ip("198.51.100.8")) as ws:
        await ws.send(json.dumps({"type": "ping", "id": 1}))
        assert (await recv_until(ws, "pong"))["id"] == 1


async def test_subscriptions_per_connection(server: Server) -> None:
    async with connect(server.ws + "/ws") as ws:
        await ws.send(
            json.dumps({"action": "subscribe", "tickers": ["AAPL", "MSFT", "GOOGL", "TSLA"]})
        )
        error = await recv_until(ws, "error")
        assert (error["code"], error["ticker"]) == ("subscription_limit", "TSLA")
        assert (await recv_until(ws, "subscribed"))["tickers"] == ["AAPL", "GOOGL", "MSFT"]
        # Too many in one message is refused whole, and the connection stays usable.
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["X"] * 7}))
        assert (await recv_until(ws, "error"))["message"] == "too many tickers in one message"
        await ws.send(json.dumps({"type": "ping", "id": 2}))
        assert (await recv_until(ws, "pong"))["id"] == 2


async def test_bad_frames(server: Server) -> None:
    async with connect(server.ws + "/ws") as ws:
        await ws.send(b"\x00\x01binary")
        assert (await recv_until(ws, "error"))["code"] == "bad_message"
        await ws.send("{not json")
        assert (await recv_until(ws, "error"))["code"] == "bad_message"
        await ws.send("[1, 2]")
        assert (await recv_until(ws, "error"))["code"] == "bad_message"
        await ws.send(json.dumps({"type": "ping", "id": 3}))
        assert (await recv_until(ws, "pong"))["id"] == 3
    # A text frame that is not UTF-8: the protocol's 1007.
    async with connect(server.ws + "/ws") as ws:
        await ws.send(b'{"type":"ping","id":"\xff"}', text=True)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1007
    # ...said in one line, not an error-level traceback per bad frame.
    assert "Traceback" not in server.log() and "Invalid UTF-8" not in server.log()
    # Bigger than STOCKFEED_MAX_MESSAGE_BYTES: 1009.
    async with connect(server.ws + "/ws", max_size=None) as ws:
        await ws.send(json.dumps({"type": "ping", "id": "x" * 5000}))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_a_flood_does_not_starve_other_clients(server: Server) -> None:
    flood_closes: list[int] = []

    async def flood() -> None:
        """Bursts of 200 junk messages as fast as the socket takes them, over and over
        on fresh connections; after each burst, read until the server cuts it off."""
        junk = json.dumps({"type": "nonsense", "pad": "x" * 3000})
        while True:
            try:
                async with connect(server.ws + "/ws") as ws:
                    for _ in range(200):
                        await ws.send(junk)
                    while True:
                        await ws.recv()
            except ConnectionClosed as exc:
                flood_closes.append(exc.rcvd.code if exc.rcvd else 1006)

    async with connect(server.ws + "/ws/stocks/MSFT") as watcher:
        await live(watcher)
        flooder = asyncio.create_task(flood())
        try:
            updates = []
            while len(updates) < 40 or len(flood_closes) < 3:
                msg = await recv_json(watcher, timeout=20)
                if msg["type"] == "price_update":
                    updates.append(msg["seq"])
        finally:
            flooder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flooder
    # The watcher got every update in order while the flooder was cut off with 1008.
    assert updates == list(range(updates[0], updates[0] + len(updates)))
    assert 1008 in flood_closes
    assert "Exception in ASGI application" not in server.log()
