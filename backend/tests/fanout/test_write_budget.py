"""The one accounted write path (fanout/connections.py), in-process: every byte held
for a client counts against one budget whatever the message; keyed messages are
replaced while the client is backed up, the rest closes it with 4408 past the budget;
a backed-up client is closed by a clock, not by the next update; whoever produces
replies waits for the client to drain. Both kinds of connection: the fast path's
SinkConnection (over a fake sink) and the portable QueuedConnection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from stockfeed import protocol
from stockfeed.fanout import stuck_watch
from stockfeed.fanout.connections import HEARTBEAT_KEY, QueuedConnection, bar_key, status_key
from stockfeed.protocol.codes import CloseCode
from stockfeed.server.sink_connection import SinkConnection
from tests.fanout.fakes import FakeSink, FakeWebSocket, frame_of, until, update


def offer(conn: Any, ticker: str, seq: int) -> None:
    conn.offer_update(ticker, seq, frame_of(update(ticker, seq)))


def sink_connection(
    budget: int = 64 * 1024, stuck_timeout: float = 10.0, limiter: Any = None
) -> tuple[SinkConnection, FakeSink]:
    sink = FakeSink()
    conn = SinkConnection(
        FakeWebSocket(),  # type: ignore[arg-type]
        sink,  # type: ignore[arg-type]
        stuck_timeout=stuck_timeout,
        budget=budget,
        limiter=limiter,
    )
    return conn, sink


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stuck watch ticks every 10 ms instead of every second."""
    monkeypatch.setattr(stuck_watch.StuckWatch, "TICK", 0.01)


# -- the budget ------------------------------------------------------------------------------


async def test_sink_control_messages_past_the_budget_close_4408_holding_no_more() -> None:
    conn, sink = sink_connection(budget=64 * 1024)
    sink.buffered = 60 * 1024  # the client stopped reading; its transport holds this much
    error = protocol.error("bad_message", "x" * 1000)
    sent = 0
    while not conn.closed:
        conn.send(error)
        sent += 1
        assert sink.held_bytes() <= 64 * 1024 + 200  # the close frame comes on top
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    assert sink.closed_with == (CloseCode.SLOW_CONSUMER, "slow consumer")
    assert sent == 4  # 3 fit in the 4 KiB left, the 4th would not
    conn.send(error)  # nothing more is held for a closed client
    assert len(sink.messages()) == 3


async def test_sink_keyed_messages_are_replaced_while_backed_up_not_counted_twice() -> None:
    conn, sink = sink_connection()
    sink.pause()
    for i in range(1000):  # a storm of statuses and heartbeats while the client is stuck
        conn.send_frame(protocol.dumps({"type": "market_status", "i": i}), None, status_key("AAPL"))
        conn.send_frame(protocol.heartbeat(), None, HEARTBEAT_KEY)
    bar = '{"time":60,"open":1,"high":1,"low":1,"close":1,"volume":null,"final":false}'
    for close in (1, 2, 3):
        text = protocol.messages.bar(
            "AAPL", "1m", close, bar.replace('"close":1', f'"close":{close}')
        )
        conn.send_frame(text, frame_of(text), bar_key("AAPL", "1m", bar))
    assert not conn.closed
    assert conn.backlog()[0] == 3  # one per key
    sink.drain()
    got = sink.messages()
    assert [m["type"] for m in got] == ["market_status", "heartbeat", "bar"]
    assert got[0]["i"] == 999 and got[2]["seq"] == 3


async def test_sink_updates_conflate_and_control_messages_count_against_the_same_budget() -> None:
    conn, sink = sink_connection(budget=70 * 1024)
    sink.pause()
    sink.buffered = 64 * 1024
    for seq in range(1, 500):
        offer(conn, "AAPL", seq)  # conflated: one held, whatever the count
    assert conn.held_bytes() < 64 * 1024 + 400
    snapshot = protocol.dumps({"type": "snapshot", "pad": "y" * 3000})
    conn.send(snapshot)
    conn.send(snapshot)
    assert conn.closed and conn.close_code == CloseCode.SLOW_CONSUMER


async def test_queued_control_messages_past_the_budget_close_4408() -> None:
    ws = FakeWebSocket()
    ws.gate.clear()  # the client stopped reading
    conn = QueuedConnection(ws, queue_size=1024, stuck_timeout=10.0, budget=64 * 1024)  # type: ignore[arg-type]
    conn.start()
    try:
        error = protocol.error("bad_message", "x" * 1000)
        while not conn.closed:
            conn.send(error)
            assert conn.held_bytes() <= 64 * 1024
        assert conn.close_code == CloseCode.SLOW_CONSUMER
        assert conn.backlog() == (0, 0)  # let go at once
    finally:
        ws.gate.set()
        await conn.stop()


async def test_queued_keyed_messages_are_replaced_while_backed_up() -> None:
    ws = FakeWebSocket()
    ws.gate.clear()
    conn = QueuedConnection(ws, queue_size=4, stuck_timeout=10.0)  # type: ignore[arg-type]
    conn.start()
    try:
        offer(conn, "AAPL", 1)
        await ws.waiting.wait()
        for seq in (2, 3, 4, 5):
            offer(conn, "AAPL" if seq % 2 else "MSFT", seq)
        assert conn.backed_up()
        for i in range(50):
            conn.send_frame(
                protocol.dumps({"type": "market_status", "i": i}), None, status_key("X")
            )
        assert conn.backlog()[0] == 5 and not conn.closed
        ws.gate.set()
        await until(lambda: len(ws.sent) == 6)
        statuses = [m for m in ws.messages() if m["type"] == "market_status"]
        assert [m["i"] for m in statuses] == [49]
    finally:
        ws.gate.set()
        await conn.stop()


# -- the stuck check runs on a clock ---------------------------------------------------------


async def test_sink_backed_up_client_is_closed_by_the_clock_with_no_update(
    fast_clock: None,
) -> None:
    conn, sink = sink_connection(stuck_timeout=0.05)
    conn.send(protocol.dumps({"type": "snapshot"}))
    sink.pause()  # and nothing more is ever sent to it (a closed market at night)
    await until(lambda: conn.closed, timeout=2.0)
    assert conn.close_code == CloseCode.SLOW_CONSUMER


async def test_sink_client_that_drains_in_time_is_not_closed(fast_clock: None) -> None:
    conn, sink = sink_connection(stuck_timeout=0.1)
    for _ in range(5):
        sink.pause()
        await asyncio.sleep(0.05)
        sink.drain()  # slow, but it makes progress: never stuck for 0.1 s
    await asyncio.sleep(0.15)
    assert not conn.closed


async def test_queued_stuck_client_is_closed_by_the_clock_with_no_update(
    fast_clock: None,
) -> None:
    ws = FakeWebSocket()
    ws.gate.clear()
    conn = QueuedConnection(ws, queue_size=64, stuck_timeout=0.05)  # type: ignore[arg-type]
    conn.start()
    try:
        conn.send(protocol.dumps({"type": "snapshot"}))
        await until(lambda: conn.closed, timeout=2.0)
        assert conn.close_code == CloseCode.SLOW_CONSUMER
    finally:
        ws.gate.set()
        await conn.stop()


# -- producers wait for the client -----------------------------------------------------------


async def test_writable_waits_for_the_drain_and_is_false_once_closed() -> None:
    conn, sink = sink_connection()
    assert await conn.writable()
    sink.pause()
    waiter = asyncio.create_task(conn.writable())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    sink.drain()
    assert await waiter
    sink.pause()
    waiter = asyncio.create_task(conn.writable())
    await asyncio.sleep(0.01)
    conn.abort(CloseCode.SLOW_CONSUMER, "slow consumer")
    assert await waiter is False


# -- pings -----------------------------------------------------------------------------------


async def test_sink_pings_count_against_the_message_rate() -> None:
    allowed = iter([True, True, False])
    conn, sink = sink_connection(limiter=lambda: next(allowed))
    assert sink.on_ping is not None
    assert sink.on_ping() and sink.on_ping()
    assert not sink.on_ping()  # over the rate: an error, then 1008
    assert conn.closed and conn.close_code == CloseCode.POLICY_VIOLATION
    assert sink.closed_with == (CloseCode.POLICY_VIOLATION, "too many messages")
    assert [m["code"] for m in sink.messages() if m["type"] == "error"] == ["rate_limited"]


# -- what the stored text of a keyed bar looks like ------------------------------------------


def test_bar_key_names_the_bar_by_its_time() -> None:
    bar = json.dumps({"time": 1764100800, "open": 1}, separators=(",", ":"))
    assert bar_key("AAPL", "5m", bar) == "bar:AAPL:5m:1764100800"
