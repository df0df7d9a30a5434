"""The market-data store's contract, run against each implementation: SQLite (a file of
the test's own) and PostgreSQL (a real server the tests start, a database per test).

What both must do: migrations applied at open, once, by whoever opens first; bars
upserted by (ticker, interval, start) with revisions for corrected finals, never a
forming bar over a final one; the source's bars only in holes; the REST text of a range
in time order; last quotes; spans that only grow; ticks paged in time order and dropped
by age; one snapshot for a book's state.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stockfeed.kept.base import (
    ALL_INTERVALS,
    Batch,
    BatchWriter,
    KeptBar,
    KeptQuote,
    KeptStore,
    KeptTick,
    Span,
)
from stockfeed.kept.keeper import Keeper
from stockfeed.kept.postgres import PostgresStore
from stockfeed.kept.retention import Retention
from stockfeed.kept.sqlite import SqliteStore
from stockfeed.kept.writer import Writer

pytestmark = pytest.mark.process  # the PostgreSQL cases start a server

DAY = 86400
T0 = 1_796_601_600  # 2026-12-07 00:00 UTC


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeptStore]:
    kept: KeptStore
    if request.param == "sqlite":
        kept = SqliteStore(tmp_path / "kept.db")
    else:
        kept = PostgresStore(request.getfixturevalue("postgres_url"))
    await kept.open()
    yield kept
    await kept.close()


async def write(store: KeptStore, batch: Batch) -> None:
    """One batch through a writer of the store's, on a thread as the writer thread does."""

    def run() -> None:
        writer = store.open_writer()
        try:
            writer.write(batch)
        finally:
            writer.close()

    await asyncio.to_thread(run)


async def on_writer(store: KeptStore, work: object) -> object:
    def run() -> object:
        writer: BatchWriter = store.open_writer()
        try:
            return work(writer)  # type: ignore[operator]
        finally:
            writer.close()

    return await asyncio.to_thread(run)


def bar(start: int, close: float, *, final: bool = False, volume: int | None = 10) -> KeptBar:
    return KeptBar("AAPL", "1m", start, 100.0, max(100.0, close), min(100.0, close), close,
                   volume, final)  # fmt: skip


async def test_opening_again_applies_nothing_new(store: KeptStore, tmp_path: Path) -> None:
    await write(store, Batch(bars=[bar(T0, 101.0)]))
    again = SqliteStore(store.path) if isinstance(store, SqliteStore) else PostgresStore(store.url)
    await again.open()  # the schema is there: nothing dropped, nothing applied twice
    try:
        assert [b.close for b in await again.bars("AAPL", "1m", 0, 2**62)] == [101.0]
    finally:
        await again.close()


async def test_stores_opened_at_once_migrate_once(store: KeptStore) -> None:
    others = [
        SqliteStore(store.path) if isinstance(store, SqliteStore) else PostgresStore(store.url)
        for _ in range(3)
    ]
    await asyncio.gather(*(o.open() for o in others))
    for other in others:
        await other.close()


async def test_a_bar_is_upserted_and_a_corrected_final_bumps_its_revision(
    store: KeptStore,
) -> None:
    await write(store, Batch(bars=[bar(T0, 101.0)]))
    await write(store, Batch(bars=[bar(T0, 102.0)]))  # still forming: no revision
    await write(store, Batch(bars=[bar(T0, 102.5, final=True)]))  # made final: no revision
    (kept,) = await store.bars("AAPL", "1m", 0, 2**62)
    assert (kept.close, kept.final, kept.revision, kept.origin) == (102.5, True, 0, "built")
    await write(store, Batch(bars=[bar(T0, 102.5, final=True)]))  # the same again: nothing
    assert (await store.bars("AAPL", "1m", 0, 2**62))[0].revision == 0
    await write(store, Batch(bars=[bar(T0, 103.0, final=True)]))  # a correction
    (kept,) = await store.bars("AAPL", "1m", 0, 2**62)
    assert (kept.close, kept.revision) == (103.0, 1)
    # A forming bar never replaces a final one (a writer that lost the lead, late).
    await write(store, Batch(bars=[bar(T0, 99.0)]))
    (kept,) = await store.bars("AAPL", "1m", 0, 2**62)
    assert (kept.close, kept.final, kept.revision) == (103.0, True, 1)


async def test_the_sources_bars_only_fill_holes(store: KeptStore) -> None:
    await write(store, Batch(bars=[bar(T0, 101.0, final=True)]))
    source = [
        KeptBar("AAPL", "1m", T0 - 60, 1, 1, 1, 1, 5, True, origin="source"),
        KeptBar("AAPL", "1m", T0, 1, 1, 1, 1, 5, True, origin="source"),  # kept: not this
        KeptBar("AAPL", "1m", T0 + 60, 1, 1, 1, 1, 5, False, origin="source"),  # forming
    ]
    await write(store, Batch(source_bars=source))
    kept = await store.bars("AAPL", "1m", 0, 2**62)
    assert [(b.start, b.close, b.origin) for b in kept] == [
        (T0 - 60, 1.0, "source"), (T0, 101.0, "built"), (T0 + 60, 1.0, "source")
    ]  # fmt: skip
    # The source's own forming bar is replaced by its next answer; its finals are not.
    later = [
        KeptBar("AAPL", "1m", T0 - 60, 2, 2, 2, 2, 5, True, origin="source"),
        KeptBar("AAPL", "1m", T0 + 60, 2, 2, 2, 2, 9, True, origin="source"),
    ]
    await write(store, Batch(source_bars=later))
    kept = await store.bars("AAPL", "1m", 0, 2**62)
    assert [(b.start, b.close) for b in kept] == [(T0 - 60, 1.0), (T0, 101.0), (T0 + 60, 2.0)]
    # A built bar replaces a source bar: final and different, so a revision.
    await write(store, Batch(bars=[bar(T0 - 60, 104.0, final=True)]))
    first = (await store.bars("AAPL", "1m", 0, 2**62))[0]
    assert (first.close, first.origin, first.revision) == (104.0, "built", 1)


async def test_history_text_is_the_rest_bars_of_the_range_in_time_order(
    store: KeptStore,
) -> None:
    bars = [bar(T0 + 60 * i, 100.0 + i, final=True, volume=i) for i in range(5)]
    bars.append(bar(T0 + 300, 110.25, volume=None))
    await write(store, Batch(bars=list(reversed(bars))))
    text = await store.history_text("AAPL", "1m", T0 + 60, 2**62)
    assert text == ",".join(b.rest_text() for b in bars[1:])
    parsed = json.loads(f"[{text}]")
    assert parsed[0] == {"time": T0 + 60, "open": 100.0, "high": 101.0, "low": 100.0,
                         "close": 101.0, "volume": 1}  # fmt: skip
    assert isinstance(parsed[0]["volume"], int)  # a whole volume stays an int
    assert parsed[-1]["volume"] is None
    assert await store.history_text("AAPL", "5m", 0, 2**62) == ""
    assert await store.history_text("AAPL", "1m", T0 + 120, T0 + 180) == bars[2].rest_text()
    newest = await store.bars("AAPL", "1m", 0, 2**62, newest=2)
    assert [b.start for b in newest] == [T0 + 240, T0 + 300]


async def test_past_days_are_read_as_chunks_and_a_correction_remakes_its_chunk(
    store: KeptStore,
) -> None:
    """A year back: whole days of 1m bars are kept as one text each (bar_chunks); the
    answer is the same as bar by bar, and a corrected bar shows in it."""
    first_day = T0 - 400 * DAY
    bars = [
        bar(first_day + day * DAY + 60 * m, 100.0 + m / 100, final=True, volume=m)
        for day in range(3)
        for m in range(0, 390, 7)
    ]
    bars.append(bar(T0 - 60, 99.5, final=True))  # today's: its day is not over yet
    await write(store, Batch(bars=bars))
    expected = ",".join(b.rest_text() for b in bars)
    assert await store.history_text("AAPL", "1m", 0, 2**62) == expected
    # From the middle of the first day: that day bar by bar, the next ones as chunks.
    middle = first_day + 200 * 60
    assert await store.history_text("AAPL", "1m", middle, 2**62) == ",".join(
        b.rest_text() for b in bars if b.start >= middle
    )
    corrected = bar(first_day + DAY + 7 * 60, 150.0, final=True, volume=7)
    await write(store, Batch(bars=[corrected]))
    text = await store.history_text("AAPL", "1m", 0, 2**62)
    assert corrected.rest_text() in text and text.count('"time"') == len(bars)


async def test_last_quotes_and_seqs(store: KeptStore) -> None:
    assert await store.last_quote("AAPL") is None
    one = KeptQuote("AAPL", 7, "e1", 1.5e12, '{"type":"price_update","seq":7}')
    two = KeptQuote("AAPL", 8, "e1", 1.6e12, '{"type":"price_update","seq":8}')
    await write(store, Batch(quotes=[one, KeptQuote("MSFT", 3, "e1", 1.5e12, "{}")]))
    await write(store, Batch(quotes=[two]))
    assert await store.last_quote("AAPL") == two
    assert await store.quote_seqs() == {"AAPL": 8, "MSFT": 3}
    assert await store.tickers() == ["AAPL", "MSFT"]


async def test_spans_only_grow_and_cover_an_interval_or_all(store: KeptStore) -> None:
    await write(store, Batch(spans=[Span("AAPL", ALL_INTERVALS, T0, T0 + 100, "built")]))
    await write(store, Batch(spans=[Span("AAPL", ALL_INTERVALS, T0, T0 + 50, "built")]))
    await write(store, Batch(spans=[Span("AAPL", "5m", T0 - DAY, T0, "source")]))
    spans = await store.spans("AAPL", "5m", 0, 2**62)
    assert [(s.interval, s.start, s.end) for s in spans] == [
        ("5m", T0 - DAY, T0), (ALL_INTERVALS, T0, T0 + 100)
    ]  # fmt: skip
    assert [s.interval for s in await store.spans("AAPL", "1m", 0, 2**62)] == [ALL_INTERVALS]
    assert await store.spans("AAPL", "1m", T0 + 100, 2**62) == []


async def test_ticks_page_in_time_order_and_go_by_age(store: KeptStore) -> None:
    start_us = T0 * 1_000_000
    ticks = [
        KeptTick(start_us + i * 600_000_000, "AAPL" if i % 2 else "MSFT", i, 100.0 + i, i * 10)
        for i in range(300)  # 600 s apart: 50 hours, three days' partitions
    ]
    await write(store, Batch(ticks=ticks))
    pages: list[KeptTick] = []
    after = None
    while True:
        page = await store.ticks(0, 2**62, after=after, limit=70)
        if not page:
            break
        pages += page
        after = (page[-1].time_us, page[-1].ticker, page[-1].seq)
    assert pages == ticks
    only = await store.ticks(0, 2**62, tickers=frozenset({"AAPL"}), limit=1000)
    assert [t.seq for t in only] == list(range(1, 300, 2))
    assert isinstance(only[0].volume, float | int)
    size = await on_writer(store, lambda w: w.size_bytes())
    assert isinstance(size, int) and size > 0
    assert await on_writer(store, lambda w: w.oldest_tick_us()) == start_us
    cutoff = (T0 + DAY) * 1_000_000
    await on_writer(store, lambda w: w.drop_ticks_before(cutoff))
    left = await store.ticks(0, 2**62, limit=1000)
    assert left and all(t.time_us >= cutoff for t in left)
    assert [t.seq for t in left] == [t.seq for t in ticks if t.time_us >= cutoff]


async def test_a_book_state_and_a_seed_are_one_write(store: KeptStore) -> None:
    quote = KeptQuote("AAPL", 5, "e1", T0 * 1000.0, '{"type":"price_update"}')
    bars = [bar(T0, 101.0, final=True), bar(T0 + 60, 102.0)]
    five = KeptBar("AAPL", "5m", T0, 100, 102, 100, 102, 20, False)
    source = KeptBar("AAPL", "1h", T0, 1, 1, 1, 1, 1, True, origin="source")
    await write(store, Batch(bars=[*bars, five], quotes=[quote], source_bars=[source]))
    state = await store.book_state("AAPL", "1m", 120)
    assert state == (quote, bars)
    seeded_quote, seeded = await store.seed("AAPL")
    assert seeded_quote == quote
    assert seeded == {"1m": bars[1], "5m": five}  # built bars only: not the source's 1h


async def test_the_writer_thread_writes_everything_queued_before_it_stops(store: KeptStore) -> None:
    writer = Writer(store)
    writer.start()
    for i in range(50):
        writer.put(Batch(bars=[bar(T0, 100.0 + i)], quotes=[KeptQuote("AAPL", i, "e", 1, "{}")]))
    writer.put(Batch(ticks=[KeptTick(1, "AAPL", 1, 1.0)]))
    await writer.stop()
    assert writer.last_error is None
    assert [b.close for b in await store.bars("AAPL", "1m", 0, 2**62)] == [149.0]
    quote = await store.last_quote("AAPL")
    assert quote is not None and quote.seq == 49
    assert len(await store.ticks(0, 2**62)) == 1


async def test_retention_keeps_ticks_for_their_days_and_the_store_under_its_bytes(
    store: KeptStore,
) -> None:
    """The retention job on the writer thread: ticks older than their days go; over the
    byte budget the oldest days go next; bars and quotes are never deleted."""
    now_us = int(time.time()) * 1_000_000
    day_us = DAY * 1_000_000
    ticks = [
        KeptTick(now_us - age * day_us - i, "AAPL", age * 1000 + i, 100.0)
        for age in (0, 1, 3, 5)
        for i in range(200)
    ]
    await write(store, Batch(ticks=ticks, bars=[bar(T0, 101.0, final=True)]))
    writer = Writer(store)
    writer.start()
    keeper = Keeper(store, writer, epoch=lambda: "e", wanted=frozenset)
    keeper.lead(True)
    try:
        by_days = Retention(keeper, keep_ticks_days=4, max_bytes=0)
        await by_days.check()
        left = {t.seq // 1000 for t in await store.ticks(0, 2**62, limit=10_000)}
        assert left == {0, 1, 3}, left  # 5 days old: past its 4 days
        over = Retention(keeper, keep_ticks_days=None, max_bytes=1)
        await over.check()
        assert await store.ticks(0, 2**62) == []  # every day of ticks went
        assert over.over_budget and over.size_bytes is not None
        assert [b.close for b in await store.bars("AAPL", "1m", 0, 2**62)] == [101.0]
    finally:
        await writer.stop()
