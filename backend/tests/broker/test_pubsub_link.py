"""The broker's own pub/sub connection (broker/pubsub_link.py) against a real Redis with
a password: messages in order, many per read handed over at once, a refused password
reported (not a crash), a killed connection replaced and every channel subscribed again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from stockfeed.broker.pubsub_link import PubSubLink
from stockfeed.broker.redis import RedisBroker
from tests.servers import RedisServer

pytestmark = pytest.mark.process
PASSWORD = "s3cret-pubsub"


@pytest.fixture
def locked_redis(tmp_path: Path) -> RedisServer:
    RedisServer.require()
    server = RedisServer(tmp_path, password=PASSWORD).start()
    yield server  # type: ignore[misc]
    server.stop()


async def until(condition: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_messages_arrive_in_order_many_per_read(locked_redis: RedisServer) -> None:
    got: list[tuple[str, bytes]] = []
    broker = RedisBroker(locked_redis.url)
    broker.set_handler(lambda ticker, data: got.append((ticker, bytes(data))))  # type: ignore[arg-type]
    # The batch hooks: around the messages of each read that handed some over.
    begun: list[int] = []
    batches: list[int] = []
    broker.set_batch_hooks(lambda: begun.append(len(got)), lambda: batches.append(len(got)))
    reads = 0
    received = PubSubLink._received

    def counting(self: PubSubLink, data: bytes) -> None:
        nonlocal reads
        reads += 1
        received(self, data)

    PubSubLink._received = counting  # type: ignore[method-assign]
    try:
        await broker.start()
        await until(lambda: broker.state == "connected")
        await broker.subscribe("AAPL")
        publisher = aioredis.Redis.from_url(locked_redis.url)
        async with publisher.pipeline(transaction=False) as pipe:
            for seq in range(1, 2001):
                pipe.publish("market:AAPL", f'{{"seq":{seq}}}')
            await pipe.execute()
        await until(lambda: len(got) == 2000)
        assert got == [("AAPL", f'{{"seq":{seq}}}'.encode()) for seq in range(1, 2001)]
        assert reads < 2000 / 4, f"{reads} reads for 2000 messages"
        assert batches and len(batches) <= reads and batches[-1] == 2000
        assert batches == sorted(set(batches))  # never twice for one read's messages
        assert begun == [0, *batches[:-1]]  # each read's begin before its first message
        await publisher.aclose()
    finally:
        PubSubLink._received = received  # type: ignore[method-assign]
        await broker.close()


async def test_a_refused_password_is_reported_not_raised(locked_redis: RedisServer) -> None:
    broker = RedisBroker(locked_redis.url.replace(PASSWORD, "wrong"))
    await broker.start()
    try:
        await until(lambda: broker.state == "degraded" and broker.last_error is not None)
        assert "wrong" not in (broker.last_error or "")
    finally:
        await broker.close()


async def test_a_killed_connection_is_replaced_and_subscribed_again(
    locked_redis: RedisServer,
) -> None:
    got: list[bytes] = []
    broker = RedisBroker(locked_redis.url)
    broker.set_handler(lambda ticker, data: got.append(bytes(data)))  # type: ignore[arg-type]
    admin = aioredis.Redis.from_url(locked_redis.url)
    try:
        await broker.start()
        await until(lambda: broker.state == "connected")
        await broker.subscribe("MSFT")
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await until(lambda: broker.reconnects == 1 and broker.state == "connected")

        async def listening() -> bool:
            numsub = dict(await admin.pubsub_numsub("market:MSFT"))
            return bool(numsub.get(b"market:MSFT"))

        for _ in range(200):
            if await listening():
                break
            await asyncio.sleep(0.02)
        await admin.publish("market:MSFT", "after")
        await until(lambda: got == [b"after"])
    finally:
        await admin.aclose()
        await broker.close()


@pytest.mark.parametrize("rest", [0.0, 0.05])
async def test_the_broker_gives_its_link_the_configured_rest(
    locked_redis: RedisServer, rest: float
) -> None:
    broker = RedisBroker(locked_redis.url)
    broker.ingest_rest = rest  # services.py sets it from STOCKFEED_INGEST_REST_MS
    await broker.start()
    try:
        await until(lambda: broker.state == "connected")
        link = broker._link
        assert link is not None and link.rest == rest
    finally:
        await broker.close()
