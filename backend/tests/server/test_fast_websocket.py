"""The fast path leans on uvicorn internals: these fail loudly when an upgrade breaks it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import cast

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from stockfeed.fanout.frames import close_frame, text_frame
from stockfeed.server.fast_websocket import Sink, _Flusher, _flusher
from tests.server.inloop import accepting, serve_in_loop
from tests.servers import StartServer
from tests.wsutil import recv_until

pytestmark = pytest.mark.process


def parse(frame: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(frame)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        result: Frame = done.value
        return result
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_is_what_websockets_parses(size: int) -> None:
    payload = ("x" * size).encode()
    frame = parse(text_frame(payload))
    assert frame.opcode == Opcode.TEXT and frame.fin and bytes(frame.data) == payload


def test_close_frame() -> None:
    frame = parse(close_frame(4408, "slow consumer"))
    assert frame.opcode == Opcode.CLOSE
    assert bytes(frame.data) == (4408).to_bytes(2, "big") + b"slow consumer"


class _TimedSink:
    """Stands in for a Sink: its flush takes as long as writing to `busy` s of clients,
    and writes `frames` frames."""

    def __init__(self, name: str, log: list[str], busy: float = 0.0, frames: int = 1) -> None:
        self.name, self.log, self.busy, self.frames = name, log, busy, frames

    def flush(self) -> int:
        if self.busy:
            time.sleep(self.busy)
        self.log.append(self.name)
        return self.frames


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_flusher_rests_only_after_a_long_flush() -> None:
    """Light load: every flush on the next loop turn. After a flush that took long (a
    server writing to thousands of clients), the next waits about as long, so that the
    updates arriving meanwhile share its writes."""
    flusher = _Flusher(asyncio.get_running_loop())
    flusher.sinks = 1  # one client, many frames a second: a rest is worth it
    flushed: list[str] = []

    def mark(name: str, busy: float = 0.0) -> None:
        flusher.mark(cast(Sink, _TimedSink(name, flushed, busy)))

    mark("a")
    mark("b")
    await _turns(2)
    assert flushed == ["a", "b"]  # one flush for both, at once
    mark("c")
    await _turns(2)
    assert flushed == ["a", "b", "c"]  # a short flush is not followed by a rest

    mark("long", busy=0.3)
    await _turns(2)
    assert flushed[-1] == "long"
    mark("d")
    mark("e")
    await _turns(3)
    assert flushed[-1] == "long", "the flush after a long one waits"
    await asyncio.sleep(0.6)
    assert flushed[-2:] == ["d", "e"]
    mark("f")
    await _turns(2)
    assert flushed[-1] == "f", "rested: back to flushing at once"


async def test_no_rest_when_the_clients_would_get_nothing_more_meanwhile() -> None:
    """A long flush is followed by a rest only when the average client of the loop would
    get another `WORTH` frames over it (frames a second since the last flush, per open
    sink): with thousands of clients of a few updates a second each (a whole market),
    a rest brings no bigger writes, only latency."""
    flusher = _Flusher(asyncio.get_running_loop())
    flushed: list[str] = []
    flusher.sinks = 2000
    flusher.mark(cast(Sink, _TimedSink("long", flushed, busy=0.3, frames=100)))
    await _turns(2)
    assert flushed == ["long"] and flusher.rest_until == 0.0
    flusher.mark(cast(Sink, _TimedSink("next", flushed)))
    await _turns(2)
    assert flushed == ["long", "next"], "flushed at once: no rest"

    flusher.sinks = 2  # the same frames over two clients: ~150 each a second
    flusher.mark(cast(Sink, _TimedSink("long2", flushed, busy=0.3, frames=100)))
    await _turns(2)
    assert flusher.rest_until > time.monotonic()


async def test_open_sinks_are_counted_until_their_connection_is_lost() -> None:
    """The flusher's count of open sinks (what a rest is weighed against), through real
    connections to a server in this loop: up with each handshake, down with each close,
    a client's or a dropped one's alike."""
    flusher = _flusher(asyncio.get_running_loop())
    before = flusher.sinks
    async with serve_in_loop(accepting) as port:
        clients = [await connect(f"ws://127.0.0.1:{port}/") for _ in range(3)]
        for ws in clients:
            await ws.ping()
        assert flusher.sinks == before + 3
        await clients[0].close()
        clients[1].transport.abort()  # dropped, no close handshake
        deadline = time.monotonic() + 5
        while flusher.sinks != before + 1:
            assert time.monotonic() < deadline, f"{flusher.sinks - before} sinks counted"
            await asyncio.sleep(0.01)
        await clients[2].close()
    assert flusher.sinks == before


async def test_a_broker_batch_is_written_at_its_end_with_no_callback() -> None:
    """The broker's batch hooks: what a read marks goes out at its end, before the loop
    turns and with no flush scheduled; marked outside a batch, it waits for the flush
    on its way; after a long flush, a batch's writes wait out the rest."""
    flusher = _Flusher(asyncio.get_running_loop())
    flushed: list[str] = []

    def mark(name: str, busy: float = 0.0) -> None:
        flusher.mark(cast(Sink, _TimedSink(name, flushed, busy)))

    flusher.begin_batch()
    mark("a")
    mark("b")
    assert flushed == [] and not flusher.scheduled
    flusher.end_batch()
    assert flushed == ["a", "b"] and not flusher.scheduled  # no loop turn in between
    mark("c")  # outside a batch: the usual flush, next turn
    flusher.begin_batch()
    mark("d")
    flusher.end_batch()
    assert flushed == ["a", "b"], "a flush is on its way: the batch's writes go with it"
    await _turns(2)
    assert flushed == ["a", "b", "c", "d"]
    flusher.begin_batch()
    mark("long", busy=0.3)
    flusher.end_batch()
    flusher.begin_batch()
    mark("e")
    flusher.end_batch()
    assert flushed[-1] == "long" and flusher.scheduled, "resting: e waits"
    await _turns(3)
    assert flushed[-1] == "long"
    await asyncio.sleep(0.6)
    assert flushed[-1] == "e"


def test_uvicorn_still_has_what_we_override() -> None:
    for name in (
        "handle_connect",
        "send",
        "receive",
        "resume_writing",
        "connection_lost",
        "connection_made",
        "run_asgi",
        "on_task_complete",
        "start_keepalive",
    ):
        assert callable(getattr(WebSocketsSansIOProtocol, name, None)), name
    # FastHttpProtocol.handle_websocket_upgrade replaces this one for plain upgrades.
    assert callable(getattr(HttpToolsProtocol, "handle_websocket_upgrade", None))


async def test_server_runs_the_fast_path_end_to_end(start_server: StartServer) -> None:
    server = start_server("--source", "sim", "--sim-tick-interval", "0.05")
    async with connect(server.ws + "/ws/stocks/AAPL") as a, connect(server.ws + "/ws") as b:
        await recv_until(a, "price_update")
        await b.send(json.dumps({"type": "ping", "id": 1}))
        assert (await recv_until(b, "pong"))["id"] == 1
        health = server.health()
        assert health["connections"] == 2
        assert health["fast_path_connections"] == 2, "the sink extension is not offered"


async def test_http_protocol_is_freed_at_once_after_the_upgrade() -> None:
    """FastHttpProtocol: after an upgrade, uvicorn's HTTP protocol object must go by
    reference counting, not linger as cyclic garbage (4 KiB a connection, and collector
    work in a connect storm). With the collector off, anything left is such garbage."""
    import gc

    from stockfeed.server.fast_http import FastHttpProtocol

    async with serve_in_loop(accepting) as port:
        gc.collect()
        gc.disable()
        try:
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.ping()
                alive = [o for o in gc.get_objects() if isinstance(o, FastHttpProtocol)]
                assert alive == []
        finally:
            gc.enable()
