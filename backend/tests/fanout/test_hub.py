"""The hub in-process: a MemoryBroker, a store whose history the test controls, and
recording connections. Each test is one behaviour of the fan-out core."""

from __future__ import annotations

import asyncio

from stockfeed.fanout.hub import Hub
from stockfeed.fanout.resume import ENTRY_OVERHEAD, ResumePoint
from stockfeed.protocol.codes import CloseCode
from tests.fanout.fakes import (
    ControlledStore,
    RecordingConnection,
    frame_of,
    make_hub,
    settle,
    stop_hub,
    update,
)

T = "AAPL"


async def publish(hub: Hub, ticker: str, *seqs: int) -> None:
    for seq in seqs:
        await hub.broker.publish(ticker, update(ticker, seq))


def listening(hub: Hub, ticker: str) -> bool:
    return ticker in hub.broker._subscribed  # type: ignore[attr-defined]


# -- hold/release during subscribe --------------------------------------------------------


async def test_updates_during_subscribe_come_after_snapshot_none_lost_none_repeated(
    hub: Hub, store: ControlledStore
) -> None:
    client = RecordingConnection()
    interest = store.gate("add_interest")  # the first subscribe waits here...
    task = asyncio.create_task(hub.subscribe(client, T))
    await store.entered["add_interest"].wait()
    await publish(hub, T, 1, 2)  # ...while the broker subscription is already live
    quote = store.gate("get_quote")  # then inside the snapshot's read, after `latest`
    interest.set()
    await store.entered["get_quote"].wait()
    await publish(hub, T, 3, 4)
    assert client.stream(T) == [], "nothing may overtake the snapshot"
    quote.set()
    assert await task
    await publish(hub, T, 5)
    assert client.stream(T) == [
        ("snapshot", 2),
        ("price_update", 3),
        ("price_update", 4),
        ("price_update", 5),
    ]
    assert client.messages()[-2]["type"] == "market_status"


async def test_updates_during_resume_come_after_replay_none_lost_none_repeated(
    hub: Hub, store: ControlledStore
) -> None:
    store.history[T] = [update(T, s) for s in range(1, 7)]
    gate = store.gate("recent")
    client = RecordingConnection()
    task = asyncio.create_task(hub.subscribe(client, T, ResumePoint(2, hub.epochs.epoch_for(T))))
    await store.entered["recent"].wait()
    await publish(hub, T, 6, 7)  # 6 is in the stored history too: sent once
    assert client.stream(T) == []
    gate.set()
    assert await task
    assert client.stream(T) == [("price_update", s) for s in (3, 4, 5, 6, 7)]
    assert client.of_type("snapshot") == []
    assert hub.stats.gaps == 0


# -- backfill after a seq jump ------------------------------------------------------------


async def test_seq_jump_is_backfilled_from_store_history(hub: Hub, store: ControlledStore) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    await publish(hub, T, 1, 2, 3)
    store.history[T] = [update(T, s) for s in range(1, 8)]
    await publish(hub, T, 7)  # 4..6 went by while the broker subscription was down
    await publish(hub, T, 8)  # arrives while the backfill is still reading: held
    await settle(hub)
    assert client.stream(T) == [("price_update", s) for s in range(1, 9)]
    assert hub.stats.replayed == 3 and hub.stats.gaps == 0


async def test_seq_jump_without_store_history_sends_gap_snapshot(
    hub: Hub, store: ControlledStore
) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    await publish(hub, T, 1, 2, 3)
    await publish(hub, T, 7)  # the store holds nothing of 4..6
    await settle(hub)
    await publish(hub, T, 8)
    epoch = hub.epochs.epoch_for(T)
    assert client.stream(T) == [
        ("price_update", 1),
        ("price_update", 2),
        ("price_update", 3),
        ("snapshot", 7),
        ("price_update", 8),
    ]
    gap = client.of_type("snapshot")[0]
    assert gap["gap"] is True and gap["epoch"] == epoch
    assert hub.stats.gaps == 1


async def test_seq_jump_with_store_history_starting_too_late_sends_gap_snapshot(
    hub: Hub, store: ControlledStore
) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    await publish(hub, T, 1, 2, 3)
    store.history[T] = [update(T, s) for s in (5, 6, 7)]  # 4 is lost
    await publish(hub, T, 7)
    await settle(hub)
    assert client.stream(T)[-1] == ("snapshot", 7)
    assert client.of_type("snapshot")[0]["gap"] is True


async def test_seq_jump_with_store_history_ending_too_early_sends_gap_snapshot(
    hub: Hub, store: ControlledStore
) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    await publish(hub, T, 1, 2, 3)
    store.history[T] = [update(T, s) for s in (1, 2, 3, 4)]  # 5 and 6 never stored
    await publish(hub, T, 7)
    await settle(hub)
    assert client.stream(T)[-1] == ("snapshot", 7), "4 then 7: a silent jump in seq"


async def test_seq_jump_while_held_for_a_backfill_is_backfilled_in_turn(
    hub: Hub, store: ControlledStore
) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    await publish(hub, T, 1, 2, 3)
    gate = store.gate("recent")
    await publish(hub, T, 6)  # 4 and 5 went by unseen: the backfill reads the store...
    await store.entered["recent"].wait()
    await publish(hub, T, 7, 11)  # ...and 8..10 go by too while the client is held
    store.history[T] = [update(T, s) for s in range(1, 12)]
    gate.set()
    await settle(hub)
    await publish(hub, T, 12)
    assert client.stream(T) == [("price_update", s) for s in range(1, 13)], "7 -> 11 silently"
    assert hub.stats.replayed == 5 and hub.stats.gaps == 0


async def test_seq_jump_while_held_for_a_resume_from_store_sends_gap_snapshot(
    store: ControlledStore,
) -> None:
    hub = await make_hub(store, resume_history=3)
    try:
        await _ticker_with_updates(hub, 5)  # the ring keeps 3..5
        store.history[T] = [update(T, s) for s in range(1, 6)]
        gate = store.gate("recent")
        client = RecordingConnection()
        point = ResumePoint(1, hub.epochs.epoch_for(T))
        task = asyncio.create_task(hub.subscribe(client, T, point))
        await store.entered["recent"].wait()
        await publish(hub, T, 9)  # 6..8 went by unseen while the resume read the store
        gate.set()
        assert await task
        await settle(hub)
        expected = [("price_update", s) for s in range(2, 6)] + [("snapshot", 9)]
        assert client.stream(T) == expected, "5 -> 9 silently"
        assert client.of_type("snapshot")[0]["gap"] is True
    finally:
        await stop_hub(hub)


async def test_first_update_since_listening_that_jumps_is_backfilled(
    store: ControlledStore,
) -> None:
    await store.put_quote(T, update(T, 5), 60.0)
    hub = await make_hub(store)
    try:
        client = RecordingConnection()
        assert await hub.subscribe(client, T)  # the stored quote as its snapshot
        store.history[T] = [update(T, s) for s in range(1, 9)]
        await publish(hub, T, 9)  # the hub's first update: 6..8 went by (broker away)
        await settle(hub)
        expected = [("snapshot", 5)] + [("price_update", s) for s in range(6, 10)]
        assert client.stream(T) == expected, "5 -> 9 silently"
    finally:
        await stop_hub(hub)


async def test_seq_going_back_during_a_backfill_still_gaps_and_releases_everyone(
    hub: Hub, store: ControlledStore
) -> None:
    a, b = RecordingConnection(), RecordingConnection()
    assert await hub.subscribe(a, T)
    await publish(hub, T, 1, 2, 3, 4, 5, 6)
    assert await hub.subscribe(b, T)
    store.history[T] = [update(T, s) for s in range(1, 8)]
    gate = store.gate("recent")
    await publish(hub, T, 8)  # a jump: both held for the backfill...
    await store.entered["recent"].wait()
    await publish(hub, T, 4)  # ...when seq goes back (a second publisher)
    gate.set()
    await settle(hub)
    await publish(hub, T, 9)
    for client in (a, b):
        assert client.stream(T)[-3:] == [("snapshot", 4), ("snapshot", 8), ("price_update", 9)]


# -- duplicates --------------------------------------------------------------------------


async def test_duplicate_seq_from_broker_is_dropped(hub: Hub) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    await publish(hub, T, 1, 2, 2, 3, 3)
    assert client.stream(T) == [("price_update", s) for s in (1, 2, 3)]
    assert hub.stats.duplicates == 2
    assert [e.seq for e in hub.history.get(T).entries] == [1, 2, 3]  # type: ignore[union-attr]


async def test_an_update_read_by_its_head_alone_is_parsed_only_when_asked(hub: Hub) -> None:
    """The relay reads seq from the head of an update as our updater writes it; the rest
    is parsed when a snapshot needs it. One whose rest is broken (no publisher of ours
    writes such) costs a snapshot, never the relay: the next good update stands."""
    watcher = RecordingConnection()
    assert await hub.subscribe(watcher, T)
    await publish(hub, T, 1)
    assert hub.latest[T]._update is None  # not parsed: nobody asked
    await hub.unsubscribe(watcher, T)  # lingers: still relayed, nobody to show it to
    broken = '{"type":"price_update","ticker":"AAPL","seq":2,"data":{"price":1}x}'
    await hub.broker.publish(T, broken)
    assert hub.latest[T].seq == 2 and hub.stats.relayed == 2 and hub.stats.rejected == 0
    assert await hub.updates.snapshot(T) is None  # unreadable: no snapshot rather than a bad one
    await publish(hub, T, 3)
    got = await hub.updates.snapshot(T)
    assert got is not None and got[0] == 3
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    await hub.broker.publish(T, broken.replace('"seq":2', '"seq":1'))  # went back, unreadable
    await publish(hub, T, 2)
    assert client.stream(T) == [("snapshot", 3), ("snapshot", 2)]  # the next is the gap
    assert client.of_type("snapshot")[-1]["gap"] is True


async def test_utf8_is_checked_not_decoded_non_ascii_relayed_as_is(hub: Hub) -> None:
    """The relay checks a message is UTF-8 without decoding it when it is ASCII; text
    beyond ASCII is relayed byte for byte, a broken byte sequence anywhere in it (the
    head our updater writes included) is dropped and counted, never relayed."""
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    good = update(T, 1).replace('"volume"', '"name":"Soci\u00e9t\u00e9 \u20ac","volume"')
    hub.on_message(T, good.encode())
    assert client.frames[-1] == frame_of(good)
    broken = update(T, 2).encode().replace(b'"volume"', b'"name":"\xc3(","volume"')
    hub.on_message(T, broken)
    assert hub.stats.rejected == 1 and hub.latest[T].seq == 1
    hub.on_message(T, update(T, 2))  # the memory broker hands over text: taken as is
    assert client.stream(T) == [("price_update", 1), ("price_update", 2)]


async def test_the_update_heads_the_hub_keeps_are_bounded(store: ControlledStore) -> None:
    """A ticker's update head is kept while the hub holds it (`_forget` drops it); past
    twice `max_tickers` (tickers let go another way) the map starts over."""
    hub = await make_hub(store, max_tickers=2)
    try:
        for i in range(5):
            name = f"T{i}"
            hub.on_message(name, update(name, 1).encode())
            assert len(hub._heads) <= 4
        assert hub.stats.relayed == 5 and hub.stats.rejected == 0
    finally:
        await stop_hub(hub)


# -- seq restarts and epochs -------------------------------------------------------------


async def test_seq_going_back_starts_new_epoch_and_sends_gap_snapshot(hub: Hub) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    await publish(hub, T, 1, 2, 3, 4, 5)
    base = hub.epochs.epoch
    await publish(hub, T, 1)  # the publisher started over
    assert hub.epochs.epoch_for(T) == f"{base}.1"
    assert hub.epochs.epoch_for("MSFT") == base  # per ticker
    gap = client.of_type("snapshot")[-1]
    assert (gap["seq"], gap["gap"], gap["epoch"]) == (1, True, f"{base}.1")
    assert [e.seq for e in hub.history.get(T).entries] == []  # type: ignore[union-attr]
    await publish(hub, T, 2, 3)
    assert client.stream(T)[-3:] == [("snapshot", 1), ("price_update", 2), ("price_update", 3)]
    # A client resuming in the new epoch replays; one still in the old epoch gets a gap.
    fresh = RecordingConnection()
    assert await hub.subscribe(fresh, T, ResumePoint(2, f"{base}.1"))
    assert fresh.stream(T) == [("price_update", 3)]
    stale = RecordingConnection()
    assert await hub.subscribe(stale, T, ResumePoint(2, base))
    assert stale.stream(T) == [("snapshot", 3)] and stale.of_type("snapshot")[0]["gap"]


async def test_refresh_epoch_clears_history_and_restarts(hub: Hub, store: ControlledStore) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    await publish(hub, T, 1, 2, 3)
    await publish(hub, T, 1)  # a restart: epoch "e1.1"
    await publish(hub, T, 2, 3)
    old = hub.epochs.epoch_for(T)
    store.epoch_value = "e2"  # e.g. Redis was flushed
    await hub.refresh_epoch()
    assert hub.epochs.epoch == "e2" and hub.epochs.epoch_for(T) == "e2"
    assert hub.history.nbytes == 0
    assert list(hub.history.get(T).entries) == []  # type: ignore[union-attr]
    other = RecordingConnection()
    assert await hub.subscribe(other, T, ResumePoint(2, old))
    assert other.stream(T) == [("snapshot", 3)]
    snap = other.of_type("snapshot")[0]
    assert snap["gap"] is True and snap["epoch"] == "e2"


# -- resume ------------------------------------------------------------------------------


async def _ticker_with_updates(hub: Hub, last: int) -> RecordingConnection:
    watcher = RecordingConnection()
    assert await hub.subscribe(watcher, T)
    await publish(hub, T, *range(1, last + 1))
    return watcher


async def test_resume_replays_exactly_the_missed_updates_without_snapshot(hub: Hub) -> None:
    await _ticker_with_updates(hub, 10)
    client = RecordingConnection()
    assert await hub.subscribe(client, T, ResumePoint(6, hub.epochs.epoch_for(T)))
    assert client.stream(T) == [("price_update", s) for s in (7, 8, 9, 10)]
    assert client.of_type("snapshot") == []
    assert hub.stats.replayed == 4 and hub.stats.gaps == 0
    await publish(hub, T, 11)
    assert client.stream(T)[-1] == ("price_update", 11)


async def test_resume_without_epoch_replays(hub: Hub) -> None:
    await _ticker_with_updates(hub, 5)
    client = RecordingConnection()
    assert await hub.subscribe(client, T, ResumePoint(3, None))
    assert client.stream(T) == [("price_update", 4), ("price_update", 5)]


async def test_resume_when_up_to_date_sends_nothing(hub: Hub) -> None:
    await _ticker_with_updates(hub, 5)
    client = RecordingConnection()
    assert await hub.subscribe(client, T, ResumePoint(5, hub.epochs.epoch_for(T)))
    assert client.stream(T) == []
    await publish(hub, T, 5, 6)
    assert client.stream(T) == [("price_update", 6)]


async def test_resume_outside_history_sends_gap_snapshot(store: ControlledStore) -> None:
    hub = await make_hub(store, resume_history=5)
    try:
        await _ticker_with_updates(hub, 10)  # the ring keeps 6..10
        client = RecordingConnection()
        assert await hub.subscribe(client, T, ResumePoint(2, hub.epochs.epoch_for(T)))
        assert client.stream(T) == [("snapshot", 10)]
        snap = client.of_type("snapshot")[0]
        assert snap["gap"] is True and snap["epoch"] == hub.epochs.epoch_for(T)
        assert hub.stats.gaps == 1 and hub.stats.replayed == 0
    finally:
        await stop_hub(hub)


async def test_resume_from_store_history_when_ring_lacks_it(
    store: ControlledStore,
) -> None:
    hub = await make_hub(store, resume_history=5)
    try:
        await _ticker_with_updates(hub, 10)
        store.history[T] = [update(T, s) for s in range(1, 11)]
        client = RecordingConnection()
        assert await hub.subscribe(client, T, ResumePoint(2, hub.epochs.epoch_for(T)))
        assert client.stream(T) == [("price_update", s) for s in range(3, 11)]
    finally:
        await stop_hub(hub)


async def test_resume_with_other_epoch_sends_gap_snapshot(hub: Hub) -> None:
    await _ticker_with_updates(hub, 10)
    client = RecordingConnection()
    assert await hub.subscribe(client, T, ResumePoint(6, "someone-else"))
    assert client.stream(T) == [("snapshot", 10)]
    assert client.of_type("snapshot")[0]["gap"] is True
    assert hub.stats.replayed == 0


async def test_resume_with_nothing_cached_makes_next_update_the_gap_snapshot(hub: Hub) -> None:
    client = RecordingConnection()
    assert await hub.subscribe(client, T, ResumePoint(41, hub.epochs.epoch_for(T)))
    assert client.stream(T) == []  # nothing to stand in for the gap yet
    await publish(hub, T, 44, 45)
    assert client.stream(T) == [("snapshot", 44), ("price_update", 45)]
    snap = client.of_type("snapshot")[0]
    assert snap["gap"] is True and snap["epoch"] == hub.epochs.epoch_for(T)


async def test_plain_subscribe_gets_plain_snapshot(hub: Hub) -> None:
    await _ticker_with_updates(hub, 3)
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    snap = client.of_type("snapshot")[0]
    assert snap["seq"] == 3 and "gap" not in snap and snap["epoch"] == hub.epochs.epoch


# -- linger ------------------------------------------------------------------------------


def _linger_left(hub: Hub, ticker: str) -> float:
    return hub.room._linger_until[ticker] - asyncio.get_running_loop().time()


async def test_ticker_lingers_at_least_linger_min_then_is_dropped(store: ControlledStore) -> None:
    hub = await make_hub(store, linger_min=0.05, resume_window=1.0)
    try:
        client = RecordingConnection()
        assert await hub.subscribe(client, T)
        await publish(hub, T, 1)
        await hub.unsubscribe(client, T)  # watched for ~0 s: lingers linger_min
        assert 0.03 < _linger_left(hub, T) <= 0.05
        assert listening(hub, T) and T in hub.subscribers and hub.room.lingering() == 1
        await asyncio.sleep(0.08)
        await settle(hub)
        assert not listening(hub, T)
        assert T not in hub.subscribers and T not in hub.latest
        assert hub.history.get(T) is None and T not in hub.listening.locks
        assert T not in hub.room._linger_until and T not in hub.room._lingering
        assert T not in hub.updates.store_checked and hub.room.lingering() == 0
        assert T not in hub._heads  # the update head it read seqs by
        assert T not in await store.interest()
    finally:
        await stop_hub(hub)


async def test_ticker_lingers_as_long_as_it_was_watched(store: ControlledStore) -> None:
    hub = await make_hub(store, linger_min=0.01, resume_window=2.0)
    loop = asyncio.get_running_loop()
    try:
        client = RecordingConnection()
        since = loop.time()
        assert await hub.subscribe(client, T)
        await asyncio.sleep(0.3)
        await hub.unsubscribe(client, T)
        watched = loop.time() - since
        assert abs(_linger_left(hub, T) - watched) < 0.02
        await asyncio.sleep(0.1)
        await settle(hub)
        assert listening(hub, T), "gone before it lingered as long as it was watched"
        await asyncio.sleep(watched)
        await settle(hub)
        assert not listening(hub, T) and T not in hub.subscribers
    finally:
        await stop_hub(hub)


async def test_linger_is_capped_by_resume_window(store: ControlledStore) -> None:
    hub = await make_hub(store, linger_min=0.01, resume_window=0.05)
    try:
        client = RecordingConnection()
        assert await hub.subscribe(client, T)
        await asyncio.sleep(0.15)
        await hub.unsubscribe(client, T)
        assert _linger_left(hub, T) <= 0.05
        await asyncio.sleep(0.08)
        await settle(hub)
        assert not listening(hub, T) and T not in hub.subscribers
    finally:
        await stop_hub(hub)


async def test_client_returning_within_linger_resumes_without_gap(store: ControlledStore) -> None:
    hub = await make_hub(store, linger_min=0.05, resume_window=1.0)
    try:
        client = RecordingConnection()
        assert await hub.subscribe(client, T)
        await publish(hub, T, 1, 2, 3)
        epoch = hub.epochs.epoch_for(T)
        await hub.unsubscribe(client, T)
        await publish(hub, T, 4, 5)  # still listened to: kept for the resume
        back = RecordingConnection()
        assert await hub.subscribe(back, T, ResumePoint(3, epoch))
        assert back.stream(T) == [("price_update", 4), ("price_update", 5)]
        assert hub.stats.gaps == 0 and hub.room.lingering() == 0
        await asyncio.sleep(0.08)  # the old linger timer ends: the ticker is in use again
        await settle(hub)
        assert listening(hub, T)
        await publish(hub, T, 6)
        assert back.stream(T)[-1] == ("price_update", 6)
    finally:
        await stop_hub(hub)


# -- max_tickers -------------------------------------------------------------------------


async def test_new_ticker_evicts_longest_lingering(store: ControlledStore) -> None:
    hub = await make_hub(store, max_tickers=3, linger_min=60, resume_window=60)
    try:
        client = RecordingConnection()
        for t in ("AAA", "BBB", "CCC"):
            assert await hub.subscribe(client, t)
        await hub.unsubscribe(client, "BBB")  # lingers longest
        await hub.unsubscribe(client, "AAA")
        assert hub.room.has_room("AAA")  # already held (lingering): no eviction needed
        assert await hub.subscribe(client, "DDD")
        await settle(hub)
        assert hub.stats.evicted == 1
        assert "BBB" not in hub.subscribers and not listening(hub, "BBB")
        assert "AAA" in hub.subscribers and listening(hub, "AAA")
        assert set(hub.subscribers) == {"AAA", "CCC", "DDD"}
        assert hub.room.lingering() == 1
    finally:
        await stop_hub(hub)


async def test_new_ticker_refused_when_none_lingers(store: ControlledStore) -> None:
    hub = await make_hub(store, max_tickers=2)
    try:
        client = RecordingConnection()
        assert await hub.subscribe(client, "AAA")
        assert await hub.subscribe(client, "BBB")
        sent = len(client.events)
        assert await hub.subscribe(client, "CCC") is False
        assert len(client.events) == sent, "a refused subscribe sends nothing"
        assert "CCC" not in client.tickers and "CCC" not in hub.subscribers
        assert not listening(hub, "CCC") and hub.stats.evicted == 0
        assert await hub.subscribe(client, "AAA")  # held already: fine
    finally:
        await stop_hub(hub)


async def test_unsubscribing_a_ticker_not_held_leaves_its_linger_alone(
    store: ControlledStore,
) -> None:
    """An unsubscribe of someone else's lingering ticker must neither extend its linger
    nor move it back in the eviction order (a client could keep any ticker alive)."""
    hub = await make_hub(store, max_tickers=3)
    try:
        owner, other = RecordingConnection(), RecordingConnection()
        for t in ("AAA", "BBB", "CCC"):
            assert await hub.subscribe(owner, t)
        await hub.unsubscribe(owner, "AAA")  # lingers longest
        await hub.unsubscribe(owner, "BBB")
        until = dict(hub.room._linger_until)
        await hub.unsubscribe(other, "AAA")
        assert hub.room._linger_until == until and list(hub.room._linger_until) == ["AAA", "BBB"]
        assert await hub.subscribe(other, "DDD")
        await settle(hub)
        assert "AAA" not in hub.subscribers  # still the first to go
    finally:
        await stop_hub(hub)


# -- encode once, history stored once, session -------------------------------------------


async def test_each_update_is_framed_once_and_stored_once(hub: Hub) -> None:
    a, b = RecordingConnection(), RecordingConnection()
    assert await hub.subscribe(a, T)
    assert await hub.subscribe(b, T)
    await publish(hub, T, 1, 2)
    ring = hub.history.get(T)
    assert ring is not None
    assert [e.frame for e in ring.entries] == a.frames
    for kept, fa, fb in zip(ring.entries, a.frames, b.frames, strict=True):
        assert kept.frame is fa is fb  # the same bytes object for every client and history
    assert hub.history.nbytes == sum(len(f) + ENTRY_OVERHEAD for f in a.frames)


async def test_session_lets_go_of_everything(hub: Hub) -> None:
    client = RecordingConnection()
    async with hub.session(client):
        assert client in hub.clients and client.started
        assert await hub.subscribe(client, "AAA")
        assert await hub.subscribe(client, "BBB")
        client.close_code = CloseCode.SLOW_CONSUMER
    assert client not in hub.clients and client.stopped and client.closed
    assert client.tickers == set()
    assert hub.subscriber_counts() == {} and hub.room.lingering() == 2
    assert hub.stats.slow_closed == 1


async def test_every_subscriber_gets_the_stored_snapshot_while_nothing_is_relayed(
    store: ControlledStore,
) -> None:
    """A closed market relays nothing: the second and later subscribers of a ticker get
    the stored last quote as their snapshot too, not only the first."""
    hub = await make_hub(store)
    try:
        await store.put_quote(T, update(T, 41, price=254.5), 3600)
        first, second, third = RecordingConnection(), RecordingConnection(), RecordingConnection()
        assert await hub.subscribe(first, T)
        assert await hub.subscribe(second, T)
        await hub.unsubscribe(first, T)
        assert await hub.subscribe(third, T)
        for client in (first, second, third):
            assert client.stream(T) == [("snapshot", 41)]
        await publish(hub, T, 42)  # the next relayed update follows on, no gap
        assert second.stream(T) == [("snapshot", 41), ("price_update", 42)]
    finally:
        await stop_hub(hub)
