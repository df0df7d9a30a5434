"""A busy pub/sub link rests between reads (broker/pubsub_link.py: INGEST_REST, BUSY_RATE):
what Redis sends meanwhile waits in the socket and comes in one read; a link taking in
less than the busy rate never rests. Against a real socket whose other end writes Redis' own
framing of pub/sub messages (RESP), so that the test decides what each read holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from stockfeed.broker.pubsub_link import LinkLost, PubSubLink

# Long enough that this test's own steps fit well inside one rest on a loaded machine.
REST = 0.5


def message(channel: str, payload: str) -> bytes:
    parts = [b"message", channel.encode(), payload.encode()]
    return b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


@dataclass
class Reads:
    """What the link handed over, grouped by the read it came in (the batch hooks)."""

    got: list[bytes] = field(default_factory=list)
    reads: list[list[bytes]] = field(default_factory=list)

    def begin_batch(self) -> None:
        self.reads.append([])

    def end_batch(self) -> None:
        pass

    def on_data(self, channel: bytes, payload: bytes) -> None:
        self.got.append(payload)
        self.reads[-1].append(payload)


@dataclass
class Peer:
    """The Redis end: a real socket the test writes to."""

    writer: asyncio.StreamWriter | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Peer, int]]:
    peer = Peer()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer.writer = writer
        peer.connected.set()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield peer, port
    if peer.writer is not None:
        peer.writer.close()
    server.close()
    await server.wait_closed()


async def until(condition: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def open_link(port: int, reads: Reads, rest: float, busy_rate: float = 0) -> PubSubLink:
    """busy_rate 0: every read of data counts as busy (the test decides what a read holds)."""
    link = await PubSubLink.open("127.0.0.1", port, reads.on_data, batch=reads)
    link.rest = rest
    link.busy_rate = busy_rate
    return link


async def test_a_busy_read_rests_and_what_came_meanwhile_comes_in_one_read(
    peer: tuple[Peer, int],
) -> None:
    redis, port = peer
    reads = Reads()
    link = await open_link(port, reads, REST)
    await redis.connected.wait()
    await redis.send(message("market:A", "1") + message("market:A", "2"))
    await until(lambda: len(reads.got) == 2)
    assert link.resting  # two messages in one read: the link is busy
    for n in (3, 4, 5):  # three writes while it rests
        await redis.send(message("market:A", str(n)))
    await asyncio.sleep(REST / 5)
    assert reads.got == [b"1", b"2"]  # not read yet: they wait in the socket
    await until(lambda: len(reads.got) == 5)
    assert reads.reads == [[b"1", b"2"], [b"3", b"4", b"5"]]
    link.close()


async def test_a_link_below_the_busy_rate_never_rests(peer: tuple[Peer, int]) -> None:
    redis, port = peer
    reads = Reads()
    link = await open_link(port, reads, 0.05, busy_rate=1000)
    await redis.connected.wait()
    for n in range(1, 4):  # two messages a read, ~13 a second
        await redis.send(message("market:A", f"{n}a") + message("market:A", f"{n}b"))
        await until(lambda n=n: len(reads.got) == 2 * n)  # type: ignore[misc]
        assert not link.resting
        await asyncio.sleep(0.15)
    assert link.rests == 0
    assert len(reads.reads) == 3
    link.close()


async def test_a_link_past_the_busy_rate_starts_resting(peer: tuple[Peer, int]) -> None:
    redis, port = peer
    reads = Reads()
    link = await open_link(port, reads, 0.01, busy_rate=1000)
    await redis.connected.wait()
    sent = 0
    deadline = asyncio.get_running_loop().time() + 5.0
    while link.rests == 0:  # ~20 messages every 5 ms: 4,000 a second
        assert asyncio.get_running_loop().time() < deadline, "never rested"
        await redis.send(b"".join(message("market:A", str(sent + i)) for i in range(20)))
        sent += 20
        await asyncio.sleep(0.005)
    await until(lambda: len(reads.got) == sent)  # nothing lost across the rests
    assert reads.got == [str(i).encode() for i in range(sent)]
    link.close()


async def test_without_a_rest_every_read_is_taken_at_once(peer: tuple[Peer, int]) -> None:
    redis, port = peer
    reads = Reads()
    link = await open_link(port, reads, 0.0)
    await redis.connected.wait()
    await redis.send(message("market:A", "1") + message("market:A", "2"))
    await until(lambda: len(reads.got) == 2)
    assert not link.resting
    await redis.send(message("market:A", "3"))
    await until(lambda: len(reads.got) == 3)
    link.close()


async def test_a_connection_lost_while_resting_is_reported(peer: tuple[Peer, int]) -> None:
    redis, port = peer
    reads = Reads()
    link = await open_link(port, reads, REST)
    await redis.connected.wait()
    await redis.send(message("market:A", "1") + message("market:A", "2"))
    await until(lambda: link.resting)
    assert redis.writer is not None
    redis.writer.transport.abort()
    with pytest.raises(LinkLost):
        await link.event(within=2 * REST)
    assert not link.resting  # its timer went with the connection
    await asyncio.sleep(REST * 1.2)  # the cancelled resume never runs on a closed link
