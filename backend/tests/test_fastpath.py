"""The fast path leans on uvicorn internals: these fail loudly when an upgrade breaks it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from wsutil import recv_until

from stockfeed.fastpath import close_frame, text_frame


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


async def test_server_runs_the_fast_path_end_to_end(start_server: Any) -> None:
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
    import asyncio
    import gc

    import uvicorn

    from stockfeed.fastpath import FastHttpProtocol

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    from conftest import free_port

    port = free_port()
    config = uvicorn.Config(
        app,
        port=port,
        http="stockfeed.fastpath:FastHttpProtocol",
        ws="stockfeed.fastpath:FastWebSocketProtocol",
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    # uvicorn offers a flag, not an event, for this
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    gc.collect()
    gc.disable()
    try:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.ping()
            alive = [o for o in gc.get_objects() if isinstance(o, FastHttpProtocol)]
            assert alive == []
    finally:
        gc.enable()
        server.should_exit = True
        await task
