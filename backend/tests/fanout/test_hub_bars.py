"""Bars through the hub, in-process (fanout/bar_feed.py): built once per process from the
updates, sent as `bars` then `bar`s, identical across reconnects, gaps and processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from stockfeed import protocol
from stockfeed.fanout.bars import BarBook
from stockfeed.fanout.hub import Hub
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
)

T = "AAPL"
T0 = 1_764_101_220  # a minute boundary


def bar_update(seq: int, *, ticker: str = T) -> str:
    """Update `seq`: 20 s apart (three a minute), price and cumulative volume moving."""
    return protocol.dumps(
        {
            "type": "price_update",
            "ticker": ticker,
            "seq": seq,
            "timestamp": (T0 + 20 * seq) * 1000 + 3.5,
            "data": {
                "price": round(100 + (seq * 7 % 11) * 0.25, 2),
                "volume": 1_000 + 37 * seq,
                "market_time": (T0 + 20 * seq) * 1000,
            },
        }
    )


async def publish(store: ControlledStore, hubs: list[Hub], *seqs: int) -> None:
    """As the updater does: store the update in the shared history, then publish it."""
    for seq in seqs:
        text = bar_update(seq)
        store.history.setdefault(T, []).append(text)
        await store.put_quote(T, text, 60)
        for hub in hubs:
            await hub.broker.publish(T, text)


def candles(client: RecordingConnection, interval: str = "1m") -> dict[int, dict[str, Any]]:
    """The bars a client ends with, merged by time as the contract says; checks that a
    `bars` comes before any `bar` and that seqs never go back."""
    out: dict[int, dict[str, Any]] = {}
    started = False
    last_seq = 0
    for msg in client.messages():
        if msg.get("interval") != interval or msg.get("ticker") != T:
            continue
        if msg["type"] == "bars":
            started = True
            for bar in msg["bars"]:
                out[bar["time"]] = bar
        else:
            assert msg["type"] == "bar"
            assert started, "a bar before the bars message"
            out[msg["bar"]["time"]] = msg["bar"]
        assert msg["seq"] >= last_seq or msg["type"] == "bars"
        last_seq = msg["seq"]
    return out


def book_of(hub: Hub, interval: str = "1m") -> dict[int, dict[str, Any]]:
    state = hub.bar_books[T][interval].state
    assert state is not None
    return {b["time"]: b for b in map(json.loads, state.texts())}


def reference(seqs: Iterable[int], interval: str = "1m") -> dict[int, dict[str, Any]]:
    """The bars of these updates folded in one go (no base: the store starts at them)."""
    book = BarBook(T, interval)
    for seq in seqs:
        book.apply(seq, json.loads(bar_update(seq)))
    return {b["time"]: b for b in map(json.loads, book.texts())}


def kinds(client: RecordingConnection) -> list[str]:
    return [m["type"] for m in client.messages() if m.get("ticker") == T]


async def test_bars_then_a_bar_for_each_change_and_nothing_for_clients_without_bars(
    hub: Hub, store: ControlledStore
) -> None:
    await publish(store, [hub], 1, 2)  # before anyone listens: in the store only
    one, two, plain = RecordingConnection(), RecordingConnection(), RecordingConnection()
    assert await hub.subscribe(one, T, bars=["1m"])
    assert await hub.subscribe(two, T, bars=["1m", "5m"])
    assert await hub.subscribe(plain, T)
    await settle(hub)
    first = one.of_type("bars")[0]
    assert (first["interval"], first["seq"]) == ("1m", 2)
    assert [b["time"] for b in first["bars"]] == [T0]
    await publish(store, [hub], *range(3, 10))
    assert candles(one) == candles(two) == book_of(hub) == reference(range(1, 10))
    assert candles(two, "5m") == book_of(hub, "5m") == reference(range(1, 10), "5m")
    assert "bars" not in kinds(plain) and "bar" not in kinds(plain)
    # Every change is encoded once, however many clients get it: 1m and 5m each change
    # with every update, plus one message more for each bar made final (three 1m, one 5m).
    assert hub.bars.bar_messages == (7 + 3) + (7 + 1)
    # A bar with a time already sent replaces it, and turns final when the next one starts.
    sent = [m["bar"] for m in one.of_type("bar")]
    assert [b["time"] - T0 for b in sent] == [0, 60, 60, 60, 60, 120, 120, 120, 120, 180]
    assert [b["final"] for b in sent if b["time"] == T0 + 60] == [False, False, False, True]


async def test_the_fast_path_gets_the_same_frame_bytes_for_every_client(
    hub: Hub, store: ControlledStore
) -> None:
    sinks = [FakeSink(), FakeSink()]
    clients = [SinkConnection(FakeWebSocket(), s, stuck_timeout=10) for s in sinks]  # type: ignore[arg-type]
    for client in clients:
        assert await hub.subscribe(client, T, bars=["1m"])
    await settle(hub)
    await publish(store, [hub], 1)
    ours = [[f for f in s.pending if b'"type":"bar"' in f] for s in sinks]
    assert len(ours[0]) == 1 and ours[0][0] is ours[1][0]


async def test_resume_leaves_a_client_that_was_away_identical(
    hub: Hub, store: ControlledStore
) -> None:
    stays, away = RecordingConnection(), RecordingConnection()
    assert await hub.subscribe(stays, T, bars=["1m"])
    assert await hub.subscribe(away, T, bars=["1m"])
    await settle(hub)
    await publish(store, [hub], *range(1, 5))
    await hub.unsubscribe(away, T)  # the connection dropped mid-minute
    await publish(store, [hub], *range(5, 12))  # 7 updates and two minutes go by
    back = RecordingConnection()
    back.events = list(away.events)  # the same client, on a new connection
    point = ResumePoint(away.of_type("price_update")[-1]["seq"], hub.epochs.epoch_for(T))
    assert await hub.subscribe(back, T, point, bars=["1m"])
    await settle(hub)
    assert [m["seq"] for m in back.of_type("price_update")][-7:] == list(range(5, 12))
    await publish(store, [hub], 12, 13)
    assert candles(back) == candles(stays) == book_of(hub) == reference(range(1, 14))


async def test_after_a_gap_snapshot_the_client_gets_fresh_bars(
    hub: Hub, store: ControlledStore
) -> None:
    stays, away = RecordingConnection(), RecordingConnection()
    assert await hub.subscribe(stays, T, bars=["1m"])
    assert await hub.subscribe(away, T, bars=["1m"])
    await settle(hub)
    await publish(store, [hub], *range(1, 5))
    await hub.unsubscribe(away, T)
    await publish(store, [hub], *range(5, 9))
    back = RecordingConnection()
    back.events = list(away.events)
    assert await hub.subscribe(back, T, ResumePoint(4, "another-epoch"), bars=["1m"])
    await settle(hub)
    order = kinds(back)[len(kinds(away)) :]
    assert order.index("snapshot") < order.index("bars")
    assert back.of_type("snapshot")[-1]["gap"] is True
    await publish(store, [hub], 9)
    assert candles(back) == candles(stays) == book_of(hub) == reference(range(1, 10))


async def test_a_jump_the_shared_history_fills_keeps_volume_exact(
    hub: Hub, store: ControlledStore
) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T, bars=["1m"])
    await settle(hub)
    await publish(store, [hub], 1, 2, 3)
    # 4..6 reach the shared history but not this process (its broker subscription was down).
    await publish(store, [], 4, 5, 6)
    await publish(store, [hub], 7)
    await settle(hub)
    await publish(store, [hub], 8)
    assert client.stream(T)[-5:] == [("price_update", s) for s in range(4, 9)]
    assert candles(client) == book_of(hub) == reference(range(1, 9))
    assert hub.bars.from_checkpoint == 1  # rebuilt from its own checkpoint, folded on


async def test_a_seq_never_published_keeps_volume_exact(hub: Hub, store: ControlledStore) -> None:
    """A writer killed between taking seq 4 and publishing it: 4 is in no history. The
    book folds on over it, as the store's writer does (its volume is in 5's cumulative
    count), rather than starting again from the source's bars, which counted none of
    it and would count none of 5's either."""
    client = RecordingConnection()
    assert await hub.subscribe(client, T, bars=["1m"])
    await settle(hub)
    await publish(store, [hub], 1, 2, 3)
    await publish(store, [hub], 5)
    await settle(hub)
    await publish(store, [hub], 6, 7)
    assert candles(client) == book_of(hub) == reference([1, 2, 3, 5, 6, 7])
    assert hub.bars.from_checkpoint == 1  # rebuilt from its own checkpoint, folded on


async def test_a_jump_nothing_can_fill_gets_a_gap_snapshot_then_fresh_bars(
    hub: Hub, store: ControlledStore
) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T, bars=["1m"])
    await settle(hub)
    await publish(store, [hub], 1, 2, 3)
    store.history[T] = []  # the shared history lost everything
    for seq in (7, 8):
        await hub.broker.publish(T, bar_update(seq))
        await settle(hub)
    order = kinds(client)
    gap = max(i for i, m in enumerate(client.messages()) if m.get("gap"))
    assert "bars" in order[gap:], "no fresh bars after the gap snapshot"
    # The book starts again at the jump (with no source history here, nothing before it):
    # the minute it broke in is not mixed with what came after.
    book = book_of(hub)
    assert list(book) == [T0 + 140 // 60 * 60]
    assert book[T0 + 120]["open"] == json.loads(bar_update(7))["data"]["price"]
    assert {t: b for t, b in candles(client).items() if t in book} == book


async def test_a_publisher_restart_gets_fresh_bars_after_its_gap_snapshot(hub: Hub) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T, bars=["1m"])
    await settle(hub)
    for seq in (1, 2, 3, 1):  # the publisher started its seq again
        await hub.broker.publish(T, bar_update(seq))
    await settle(hub)
    messages = client.messages()
    gap = next(i for i, m in enumerate(messages) if m.get("gap"))
    after = [m for m in messages[gap:] if m["type"] == "bars"]
    assert after and after[-1]["seq"] == 1
    assert hub.bar_books[T]["1m"].state.seq == 1  # type: ignore[union-attr]


async def test_bars_can_be_added_to_a_ticker_already_held(hub: Hub, store: ControlledStore) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    assert T not in hub.bar_books  # nobody asked: no book, nothing on the update path
    await publish(store, [hub], 1)
    assert await hub.subscribe(client, T, bars=["5m"])
    await settle(hub)
    assert client.of_type("bars")[0]["interval"] == "5m"
    assert hub.bars.streams_of(client) == {(T, "5m")}
    await hub.unsubscribe(client, T)
    assert not hub.bars.streams_of(client) and not hub.bar_books[T]["5m"].subscribers


async def test_books_go_with_the_ticker_when_its_linger_ends(store: ControlledStore) -> None:
    hub = await make_hub(store, resume_window=0.0)
    client = RecordingConnection()
    assert await hub.subscribe(client, T, bars=["1m"])
    await settle(hub)
    await hub.unsubscribe(client, T)
    await asyncio.sleep(0.01)
    await settle(hub)
    assert T not in hub.subscribers and T not in hub.bar_books
    await stop_hub(hub)


async def test_two_processes_serve_the_same_bars_from_the_shared_checkpoint(
    store: ControlledStore,
) -> None:
    """Two hubs on one shared store, each with its own broker subscription (two processes
    on Redis). Their sources' histories differ (a real source's answer depends on when it
    was asked): the second process must not start from its own."""
    first, second = await make_hub(store), await make_hub(store)

    async def history_a(ticker: str, interval: str) -> list[dict[str, Any]]:
        return [{"time": T0 - 60, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5,
                 "volume": 10}]  # fmt: skip

    async def history_b(ticker: str, interval: str) -> list[dict[str, Any]]:
        return [{"time": T0 - 60, "open": 9.0, "high": 9.0, "low": 9.0, "close": 9.0,
                 "volume": 99}]  # fmt: skip

    first.bars.base, second.bars.base = history_a, history_b
    await publish(store, [first, second], 1, 2)
    a = RecordingConnection()
    assert await first.subscribe(a, T, bars=["1m"])
    await settle(first)
    await publish(store, [first, second], *range(3, 20))
    b = RecordingConnection()
    assert await second.subscribe(b, T, bars=["1m"])
    await settle(second)
    await publish(store, [first, second], *range(20, 26))
    assert second.bars.from_checkpoint == 1
    assert candles(a) == candles(b) == book_of(first) == book_of(second)
    assert book_of(second)[T0 - 60]["volume"] == 10
    for hub in (first, second):
        await stop_hub(hub)


async def test_two_processes_building_at_once_agree_on_one_book(store: ControlledStore) -> None:
    first, second = await make_hub(store), await make_hub(store)

    def history(close: float) -> Any:
        async def base(ticker: str, interval: str) -> list[dict[str, Any]]:
            return [{"time": T0, "open": close, "high": close, "low": close, "close": close,
                     "volume": 5}]  # fmt: skip

        return base

    first.bars.base, second.bars.base = history(1.0), history(2.0)
    await publish(store, [first, second], 1)
    gate = store.gate("recent")  # both builds read the shared history at the same moment
    a, b = RecordingConnection(), RecordingConnection()
    assert await first.subscribe(a, T, bars=["1m"])
    assert await second.subscribe(b, T, bars=["1m"])
    await asyncio.sleep(0)
    gate.set()
    await settle(first)
    await settle(second)
    await publish(store, [first, second], 2, 3, 4)
    assert candles(a) == candles(b) == book_of(first) == book_of(second)
    assert first.bars.from_checkpoint + second.bars.from_checkpoint == 1
    for hub in (first, second):
        await stop_hub(hub)
