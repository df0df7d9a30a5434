"""Both kinds of client connection in-process: SinkConnection (the fast path) over a fake
sink, QueuedConnection (the portable path) over a fake websocket whose `send_text` the
test can block. Conflation keeps the newest update per ticker behind a `conflated`
notice; a client that makes no progress is closed with 4408."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from stockfeed import protocol
from stockfeed.fanout.connections import SINK_EXTENSION, QueuedConnection, make_connection
from stockfeed.protocol.codes import CloseCode
from stockfeed.server.sink_connection import SinkConnection
from tests.fanout.fakes import FakeSink, FakeWebSocket, RecordingConnection, frame_of, until, update


def offer(conn: Any, ticker: str, seq: int) -> None:
    conn.offer_update(ticker, seq, frame_of(update(ticker, seq)))


def summary(messages: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(type, ticker, seq or dropped) of each message."""
    out = []
    for m in messages:
        if m["type"] == "conflated":
            out.append(("conflated", m["ticker"], m["dropped"]))
        else:
            out.append((m["type"], m.get("ticker", ""), m.get("seq", 0)))
    return out


# -- the shared rules (Connection) ---------------------------------------------------------


async def test_connection_drops_updates_it_already_has_by_seq() -> None:
    conn = RecordingConnection()
    for seq in (1, 2, 2, 1, 3):
        offer(conn, "AAPL", seq)
    offer(conn, "MSFT", 1)  # seq is per ticker
    assert conn.stream("AAPL") == [("price_update", s) for s in (1, 2, 3)]
    assert conn.stream("MSFT") == [("price_update", 1)]


async def test_connection_holds_updates_until_release_then_drops_covered_ones() -> None:
    conn = RecordingConnection()
    conn.hold("AAPL")
    offer(conn, "AAPL", 4)
    offer(conn, "AAPL", 5)
    offer(conn, "MSFT", 1)  # other tickers are not held
    assert conn.stream("AAPL") == [] and conn.stream("MSFT") == [("price_update", 1)]
    conn.last_seq["AAPL"] = 4  # what the snapshot covered
    conn.release("AAPL")
    assert conn.stream("AAPL") == [("price_update", 5)]
    assert not conn.is_held_for_subscribe("AAPL")


async def test_connection_gap_next_turns_next_update_into_gap_snapshot() -> None:
    conn = RecordingConnection()
    conn.gap_next("AAPL", "ep.2")
    offer(conn, "AAPL", 9)
    offer(conn, "AAPL", 10)
    assert conn.stream("AAPL") == [("snapshot", 9), ("price_update", 10)]
    snap = conn.of_type("snapshot")[0]
    assert snap["gap"] is True and snap["epoch"] == "ep.2"


# -- SinkConnection (fast path) ------------------------------------------------------------


def sink_connection(stuck_timeout: float = 10.0) -> tuple[SinkConnection, FakeSink]:
    sink = FakeSink()
    conn = SinkConnection(FakeWebSocket(), sink, stuck_timeout=stuck_timeout)  # type: ignore[arg-type]
    return conn, sink


async def test_sink_connection_writes_the_shared_frame_straight_to_pending() -> None:
    conn, sink = sink_connection()
    raw = update("AAPL", 1)
    frame = frame_of(raw)
    conn.offer_update("AAPL", 1, frame)
    conn.offer_update("AAPL", 1, frame)  # a duplicate
    assert sink.pending == [frame] and sink.pending[0] is frame
    assert sink.flusher.marked == 1


async def test_sink_connection_conflates_while_paused_newest_per_ticker_with_notice() -> None:
    conn, sink = sink_connection()
    offer(conn, "AAPL", 1)
    sink.pause()
    for seq in (2, 3, 4, 5):
        offer(conn, "AAPL", seq)
    offer(conn, "MSFT", 1)  # alone while paused: kept as is, no notice
    conn.send(protocol.pong(7))  # control messages are never conflated
    assert conn.backlog()[0] == 1 + 1 + 2  # pending + one held per ticker
    sink.drain()
    assert summary(sink.messages()) == [
        ("price_update", "AAPL", 1),
        ("pong", "", 0),
        ("conflated", "AAPL", 3),
        ("price_update", "AAPL", 5),
        ("price_update", "MSFT", 1),
    ]
    assert conn.conflated == 3
    offer(conn, "AAPL", 6)  # drained: straight through again
    assert summary(sink.messages())[-1] == ("price_update", "AAPL", 6)


async def test_sink_connection_closes_4408_when_paused_longer_than_stuck_timeout() -> None:
    conn, sink = sink_connection(stuck_timeout=0.03)
    sink.pause()
    offer(conn, "AAPL", 1)
    offer(conn, "AAPL", 2)
    assert not conn.closed
    await asyncio.sleep(0.05)
    offer(conn, "AAPL", 3)
    assert conn.closed and conn.close_code == CloseCode.SLOW_CONSUMER
    assert sink.closed_with == (CloseCode.SLOW_CONSUMER, "slow consumer")
    sink.drain()  # nothing more goes to a closed client
    assert [m for m in sink.messages() if m["type"] == "price_update"] == []


async def test_make_connection_uses_the_sink_extension_when_offered() -> None:
    sink = FakeSink()
    sink.connection = lambda ws, **kw: SinkConnection(ws, sink, **kw)  # type: ignore[attr-defined]
    ws = FakeWebSocket()
    ws.scope["extensions"][SINK_EXTENSION] = sink
    assert isinstance(make_connection(ws, queue_size=4, stuck_timeout=1), SinkConnection)  # type: ignore[arg-type]
    plain = make_connection(FakeWebSocket(), queue_size=4, stuck_timeout=1)  # type: ignore[arg-type]
    assert isinstance(plain, QueuedConnection)


# -- QueuedConnection (portable path) ------------------------------------------------------


@pytest.fixture
async def blocked() -> AsyncIterator[tuple[QueuedConnection, FakeWebSocket]]:
    """A queued connection (queue of 4) whose client stopped reading after one message."""
    ws = FakeWebSocket()
    ws.gate.clear()
    conn = QueuedConnection(ws, queue_size=4, stuck_timeout=10.0)  # type: ignore[arg-type]
    conn.start()
    yield conn, ws
    ws.gate.set()
    await conn.stop()


async def test_queued_connection_sends_in_order_when_not_full() -> None:
    ws = FakeWebSocket()
    conn = QueuedConnection(ws, queue_size=8, stuck_timeout=10.0)  # type: ignore[arg-type]
    conn.start()
    try:
        offer(conn, "AAPL", 1)
        conn.send(protocol.pong(1))
        offer(conn, "AAPL", 2)
        await until(lambda: len(ws.sent) == 3)
        assert summary(ws.messages()) == [
            ("price_update", "AAPL", 1),
            ("pong", "", 0),
            ("price_update", "AAPL", 2),
        ]
    finally:
        await conn.stop()


async def test_queued_connection_conflates_ticker_when_queue_full(
    blocked: tuple[QueuedConnection, FakeWebSocket],
) -> None:
    conn, ws = blocked
    offer(conn, "AAPL", 1)
    await ws.waiting.wait()  # the writer holds AAPL 1, blocked in send_text
    for ticker, seq in (("AAPL", 2), ("MSFT", 1), ("AAPL", 3), ("MSFT", 2)):
        offer(conn, ticker, seq)
    assert conn.backlog() == (4, 0)
    offer(conn, "AAPL", 4)  # full: AAPL 2 and 3 fold into 4
    assert conn.conflated == 2 and conn.backlog()[0] == 4
    ws.gate.set()
    await until(lambda: len(ws.sent) == 5)
    assert summary(ws.messages()) == [
        ("price_update", "AAPL", 1),
        ("price_update", "MSFT", 1),
        ("price_update", "MSFT", 2),
        ("conflated", "AAPL", 2),
        ("price_update", "AAPL", 4),
    ]
    assert not conn.closed


async def test_queued_connection_conflated_notices_add_up_to_what_was_skipped(
    blocked: tuple[QueuedConnection, FakeWebSocket],
) -> None:
    conn, ws = blocked
    offer(conn, "AAPL", 1)
    await ws.waiting.wait()
    seqs = {"AAPL": 1, "MSFT": 0}
    for ticker in ["AAPL", "MSFT"] * 10:
        seqs[ticker] += 1
        offer(conn, ticker, seqs[ticker])
    ws.gate.set()
    await until(lambda: not conn.backlog()[0])
    await asyncio.sleep(0.01)
    got = ws.messages()
    for ticker, last in seqs.items():
        delivered = sum(1 for m in got if m["type"] == "price_update" and m["ticker"] == ticker)
        noticed = sum(
            m["dropped"] for m in got if m["type"] == "conflated" and m["ticker"] == ticker
        )
        assert delivered + noticed == last, f"{ticker}: {delivered} sent + {noticed} noticed"


async def test_queued_connection_closes_4408_when_stuck(
    blocked: tuple[QueuedConnection, FakeWebSocket],
) -> None:
    conn, ws = blocked
    conn.stuck_timeout = 0.03
    offer(conn, "AAPL", 1)
    await ws.waiting.wait()
    for seq in (2, 3, 4, 5):
        offer(conn, "AAPL", seq)
    await asyncio.sleep(0.05)  # no progress for longer than stuck_timeout
    offer(conn, "AAPL", 6)
    assert conn.closed and conn.close_code == CloseCode.SLOW_CONSUMER
    assert conn.backlog() == (0, 0)  # what it held is let go at once
    await until(lambda: ws.closed_with is not None)
    assert ws.closed_with == (CloseCode.SLOW_CONSUMER, "slow consumer")


async def test_queued_connection_closes_4408_when_full_with_nothing_to_fold(
    blocked: tuple[QueuedConnection, FakeWebSocket],
) -> None:
    conn, ws = blocked
    offer(conn, "AAPL", 1)
    await ws.waiting.wait()
    for i in range(4):
        conn.send(protocol.pong(i))  # control messages fill the queue
    offer(conn, "AAPL", 2)
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    await until(lambda: ws.closed_with is not None)
    assert ws.closed_with is not None and ws.closed_with[0] == CloseCode.SLOW_CONSUMER


async def test_queued_connection_close_flushes_queue_first() -> None:
    ws = FakeWebSocket()
    conn = QueuedConnection(ws, queue_size=8, stuck_timeout=10.0)  # type: ignore[arg-type]
    conn.start()
    offer(conn, "AAPL", 1)
    conn.send(protocol.dumps({"type": "server_shutdown", "retry_after_ms": 10}))
    await conn.close(1001, "bye")
    assert [json.loads(t)["type"] for t in ws.sent] == ["price_update", "server_shutdown"]
    assert ws.closed_with == (1001, "bye") and conn.close_code == 1001
    await conn.stop()
