"""Source `none` + Redis: whatever outside publishers put on `market:{T}` reaches every
client unchanged, in order, with no loss; snapshots come from what was relayed."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from tests.servers import StartServer
from tests.wsutil import contract_update, recv_json, recv_until, wait_subscribed

pytestmark = pytest.mark.process


async def test_outside_publisher_reaches_every_client_unchanged(
    start_server: StartServer, redis_url: str
) -> None:
    server = start_server("--source", "none", "--broker", redis_url)
    r = aioredis.Redis.from_url(redis_url)
    n = 500
    sent = [contract_update("RELAYX", i, extra_field={"kept": [1, 2]}) for i in range(1, n + 1)]
    async with (
        connect(server.ws + "/ws/stocks/RELAYX") as a,
        connect(server.ws + "/ws/stocks/relayx") as b,
    ):
        await recv_until(a, "market_status")
        await recv_until(b, "market_status")
        await wait_subscribed(r, "market:RELAYX")
        for raw in sent:
            await r.publish("market:RELAYX", raw)
        for ws in (a, b):
            got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(n)]
            assert got == sent  # byte for byte, in order, none lost
    # A late joiner gets the last relayed update as a snapshot, unknown fields kept.
    async with connect(server.ws + "/ws/stocks/RELAYX") as c:
        snap = await recv_json(c)
    assert snap["type"] == "snapshot"
    assert snap["seq"] == n
    assert snap["extra_field"] == {"kept": [1, 2]}
    health = server.health()
    assert health["relayed"] == n
    await r.aclose()


async def test_bad_messages_on_the_channel_are_dropped_not_fatal(
    start_server: StartServer, redis_url: str
) -> None:
    server = start_server("--source", "none", "--broker", redis_url)
    r = aioredis.Redis.from_url(redis_url)
    async with connect(server.ws + "/ws/stocks/RELAYY") as ws:
        await recv_until(ws, "market_status")
        await wait_subscribed(r, "market:RELAYY")
        for junk in [
            b"\xff\xfe",
            "not json",
            '{"type":"price_update"}',
            "[]",
            contract_update("OTHER", 1),
            '{"type":"price_update","ticker":"RELAYY","seq":"1"}',
        ]:
            await r.publish("market:RELAYY", junk)
        good = contract_update("RELAYY", 1)
        await r.publish("market:RELAYY", good)
        assert await asyncio.wait_for(ws.recv(), 10) == good
    assert server.health()["rejected"] == 6
    await r.aclose()


async def test_relay_never_refuses_a_valid_ticker_and_rest_serves_relayed(
    start_server: StartServer, redis_url: str
) -> None:
    server = start_server("--source", "none", "--broker", redis_url)
    r = aioredis.Redis.from_url(redis_url)
    async with connect(server.ws + "/ws/stocks/ZZZZ.QQ") as ws:
        await recv_until(ws, "market_status")
        await wait_subscribed(r, "market:ZZZZ.QQ")
        await r.publish("market:ZZZZ.QQ", contract_update("ZZZZ.QQ", 41))
        await recv_until(ws, "price_update")
    async with httpx.AsyncClient() as http:
        body = (await http.get(server.base + "/api/quotes/ZZZZ.QQ")).json()
    assert body["seq"] == 41 and body["type"] == "price_update"
    await r.aclose()
