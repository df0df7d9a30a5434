"""What one client's requests can make the hub hold or do, in-process: checking for room
evicts nothing, a REST first look counts in the ticker budget, a resume replay waits for
the client to drain, and a bar book nobody waits for any more stops being built."""

from __future__ import annotations

import asyncio
from typing import Any

from stockfeed.fanout.resume import ResumePoint
from stockfeed.server.sink_connection import SinkConnection
from tests.fanout.fakes import (
    ControlledStore,
    FakeSink,
    FakeWebSocket,
    RecordingConnection,
    make_hub,
    settle,
    stop_hub,
    update,
)


class _Transport(FakeSink):
    """A sink whose transport pauses past 4 KiB not yet read, as a real one does."""

    def write(self, frame: bytes) -> None:
        super().write(frame)
        if not self.paused and self.held_bytes() > 4096:
            self.pause()


async def test_checking_for_room_evicts_nothing_the_subscribe_does() -> None:
    hub = await make_hub(ControlledStore(), max_tickers=3, linger_min=60, resume_window=60)
    try:
        client = RecordingConnection()
        for t in ("AAA", "BBB", "CCC"):
            assert await hub.subscribe(client, t)
        await hub.unsubscribe(client, "AAA")
        await hub.unsubscribe(client, "BBB")
        # A check for two new tickers at once: both fit (two linger), and nothing goes.
        assert hub.room.has_room("DDD") and hub.room.has_room("EEE", pending=1)
        assert not hub.room.has_room("FFF", pending=2)  # a third would not
        await settle(hub)
        assert hub.stats.evicted == 0 and set(hub.subscribers) == {"AAA", "BBB", "CCC"}
        assert await hub.subscribe(client, "DDD")  # the subscribe makes the room
        await settle(hub)
        assert hub.stats.evicted == 1 and "AAA" not in hub.subscribers
    finally:
        await stop_hub(hub)


async def test_reserved_tickers_count_until_their_subscribe() -> None:
    hub = await make_hub(ControlledStore(), max_tickers=2, linger_min=60, resume_window=60)
    try:
        client = RecordingConnection()
        assert await hub.subscribe(client, "AAA")
        assert hub.room.reserve("BBB")  # a request accepted BBB and is still subscribing others
        assert not hub.room.has_room("CCC") and hub.room.has_room("BBB")
        assert not await hub.room.hold_unwatched("CCC")  # a REST look counts it too
        hub.room.unreserve("BBB", True)
        assert await hub.subscribe(client, "BBB")  # its own reservation is not in its way
        assert hub.room._reserved == {}
        # A lingering ticker a request is about to take back makes no room.
        await hub.unsubscribe(client, "AAA")
        assert hub.room.has_room("CCC")
        assert not hub.room.reserve("AAA")  # held (lingering): kept, not new
        assert not hub.room.has_room("CCC")
        hub.room.unreserve("AAA", False)
        assert hub.room.has_room("CCC") and hub.room._kept == {}
    finally:
        await stop_hub(hub)


async def test_a_rest_first_look_is_held_within_the_ticker_budget_and_lingers() -> None:
    hub = await make_hub(ControlledStore(), max_tickers=2, linger_min=60, resume_window=60)
    try:
        client = RecordingConnection()
        assert await hub.subscribe(client, "AAA")
        assert await hub.room.hold_unwatched("BBB")  # the second ticker, no client
        assert "BBB" in hub.broker._subscribed  # type: ignore[attr-defined]
        assert hub.room.lingering() == 1
        # Full: a look takes free room only, it never pushes out a lingering ticker...
        assert not await hub.room.hold_unwatched("CCC")
        assert hub.room.has_room("CCC")  # ...but a subscriber may take BBB's place
        assert await hub.subscribe(RecordingConnection(), "CCC")
        await settle(hub)
        assert set(hub.subscribers) == {"AAA", "CCC"} and hub.stats.evicted == 1
        assert await hub.room.hold_unwatched("AAA")  # held already: nothing to add
    finally:
        await stop_hub(hub)


async def test_a_resume_replay_waits_for_the_client_to_drain() -> None:
    store = ControlledStore()
    hub = await make_hub(store)
    try:
        feeder = RecordingConnection()
        assert await hub.subscribe(feeder, "AAPL")
        for seq in range(1, 401):
            await hub.broker.publish("AAPL", update("AAPL", seq, price=100.0 + seq))
        sink = _Transport()
        client = SinkConnection(FakeWebSocket(), sink, stuck_timeout=60.0)  # type: ignore[arg-type]
        sink.pause()  # the resuming client is not reading
        task = asyncio.create_task(
            hub.subscribe(client, "AAPL", ResumePoint(0, hub.epochs.epoch_for("AAPL")))
        )
        await asyncio.sleep(0.05)
        assert not task.done()
        replayed = [m for m in sink.messages() if m["type"] == "price_update"]
        assert replayed == [], "nothing goes out while the client does not drain"
        rounds = 0
        while not task.done():
            sink.flush()  # it reads what was written; the replay goes on, a chunk at a time
            sink.drain()
            await asyncio.sleep(0.001)
            rounds += 1
            assert rounds < 1000
        assert await task
        seqs = [m["seq"] for m in sink.messages() if m["type"] == "price_update"]
        assert seqs == list(range(1, 401)), "the replay is whole and in order"
        assert rounds > 1
    finally:
        await stop_hub(hub)


async def test_a_bar_book_nobody_waits_for_is_not_built() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    calls: list[str] = []

    async def base(ticker: str, interval: str) -> list[dict[str, Any]]:
        calls.append(ticker)
        started.set()
        await release.wait()  # a slow upstream
        return []

    hub = await make_hub(ControlledStore())
    hub.bars.base = base
    try:
        client = RecordingConnection()
        assert await hub.subscribe(client, "AAPL", bars=["1m"])
        await started.wait()
        build = hub.bar_books["AAPL"]["1m"].building
        assert build is not None and not build.done()
        await hub.unsubscribe(client, "AAPL")  # the only asker leaves before it is built
        await asyncio.sleep(0)
        assert build.cancelled()
        assert "AAPL" not in hub.bar_books
        # Asked again: built afresh, and the client gets its bars.
        started.clear()
        release.set()
        assert await hub.subscribe(client, "AAPL", bars=["1m"])
        await settle(hub)
        assert [m["type"] for m in client.messages()].count("bars") == 1
        assert len(calls) == 2
    finally:
        await stop_hub(hub)
