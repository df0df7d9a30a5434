"""A client that stops reading never hurts the others: its updates are conflated per
ticker while its socket is full, and it is closed with 4408 if it stays stuck.

Real sockets throughout: the slow client is a real WebSocket client with a tiny receive
buffer that simply does not read, so the server's kernel and transport buffers fill up.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.servers import StartServer
from tests.wsutil import contract_update, recv_until, slow_client, wait_subscribed

pytestmark = pytest.mark.process

N = 5000
PAD = "x" * 2000  # 2 KB per message: 10 MB in all, far more than the socket buffers hold


async def publish_all(r: aioredis.Redis, ticker: str, start: int, count: int) -> None:
    pipe = r.pipeline(transaction=False)
    for seq in range(start, start + count):
        pipe.publish(f"market:{ticker}", contract_update(ticker, seq, pad=PAD))
        if seq % 100 == 0:
            await pipe.execute()
            pipe = r.pipeline(transaction=False)
            await asyncio.sleep(0.03)  # a steady 3k msg/s (6 MB/s) a reading client keeps up with
    await pipe.execute()


async def read_all(ws: ClientConnection, until_seq: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
        out.append(msg)
        if msg.get("type") == "price_update" and msg["seq"] >= until_seq:
            return out


# Only the fast path: with uvicorn's stock protocol the transport never pauses the app
# (seen here: a stuck client grew the server to 115 MB), so the portable fallback cannot
# see a stuck client at all. The fallback's own queue/conflation is exercised elsewhere.
@pytest.mark.parametrize("fast_path", ["true"])
async def test_slow_client_is_conflated_and_others_lose_nothing(
    start_server: StartServer, redis_url: str, fast_path: str
) -> None:
    server = start_server(
        "--source",
        "none",
        "--broker",
        redis_url,
        env={
            "STOCKFEED_FAST_PATH": fast_path,
            "STOCKFEED_CLIENT_QUEUE_SIZE": "256",
            "STOCKFEED_SLOW_CLIENT_TIMEOUT": "60",
        },
    )
    assert server.health()["fast_path_connections"] == 0
    r = aioredis.Redis.from_url(redis_url)
    url = server.ws + "/ws/stocks/SLOWX"
    slow = await slow_client(url)
    async with connect(url, max_size=None) as fast:
        await recv_until(fast, "market_status")
        health = server.health()
        assert health["fast_path_connections"] == (2 if fast_path == "true" else 0)
        await wait_subscribed(r, "market:SLOWX")
        publisher = asyncio.create_task(publish_all(r, "SLOWX", 1, N))
        fast_got = await read_all(fast, N)
        await publisher
    fast_seqs = [m["seq"] for m in fast_got if m["type"] == "price_update"]
    assert fast_seqs == list(range(1, N + 1)), "the fast client lost or reordered updates"

    # Now the slow client reads what it was left with.
    got = await read_all(slow, N)
    await slow.close()
    updates = [m for m in got if m["type"] == "price_update"]
    notices = [m for m in got if m["type"] == "conflated"]
    seqs = [m["seq"] for m in updates]
    assert seqs == sorted(set(seqs)) and seqs[-1] == N
    assert notices, f"the slow client was not conflated: {len(updates)} updates, {server.health()}"
    assert all(n["ticker"] == "SLOWX" and n["dropped"] > 0 for n in notices)
    # Every update is accounted for: delivered or counted as dropped, none silently lost.
    assert len(updates) + sum(n["dropped"] for n in notices) == N
    assert len(updates) < N
    assert server.health()["conflated"] >= sum(n["dropped"] for n in notices)
    await r.aclose()


@pytest.mark.parametrize("fast_path", ["true"])
async def test_stuck_client_is_closed_4408(
    start_server: StartServer, redis_url: str, fast_path: str
) -> None:
    server = start_server(
        "--source",
        "none",
        "--broker",
        redis_url,
        env={
            "STOCKFEED_FAST_PATH": fast_path,
            "STOCKFEED_CLIENT_QUEUE_SIZE": "256",
            "STOCKFEED_SLOW_CLIENT_TIMEOUT": "1",
        },
    )
    r = aioredis.Redis.from_url(redis_url)
    url = server.ws + "/ws/stocks/STUCK"
    stuck = await slow_client(url)
    async with connect(url, max_size=None) as fast:
        await recv_until(fast, "market_status")
        await wait_subscribed(r, "market:STUCK")
        reader = asyncio.create_task(read_all(fast, N))
        publisher = asyncio.create_task(publish_all(r, "STUCK", 1, N))
        # The stuck check runs on a clock: it need not wait for another update. (The
        # server's log says when: its health may answer late while it relays N.)
        for _ in range(400):
            if "closing 4408" in server.log_path.read_text():
                break
            await asyncio.sleep(0.05)
        # It reads again now, within the grace the server gives a closed client: what
        # was buffered, then the close frame.
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(stuck.recv(), 20)
        await publisher
        fast_got = await reader
        assert len([m for m in fast_got if m["type"] == "price_update"]) == N
    assert info.value.rcvd is not None and info.value.rcvd.code == 4408
    for _ in range(50):
        if server.health()["connections"] == 0:
            break
        await asyncio.sleep(0.1)
    health = server.health()
    assert health["connections"] == 0
    assert health["slow_closed"] == 1
    await r.aclose()
