"""The updater's side of the store, in-process on SQLite: what it keeps is the wire's fold
of the published updates (fanout/bars.py reading the very `price_update` texts), and a
keeper that starts again on the same store (a restart) goes on with the forming bar and
the cumulative volume where they were kept."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stockfeed import protocol
from stockfeed.fanout.bars import BarBook, rest_text
from stockfeed.kept.keeper import Keeper
from stockfeed.kept.sqlite import SqliteStore
from stockfeed.kept.writer import Writer
from stockfeed.models import Tick
from stockfeed.sources.base import INTERVALS

T0 = 1_796_601_600 + 14 * 3600 + 1800  # 2026-12-07 14:30 UTC


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    kept = SqliteStore(tmp_path / "kept.db")
    await kept.open()
    yield kept
    await kept.close()


def ticks(start_s: int, count: int, first_volume: int) -> list[Tick]:
    out = []
    for i in range(count):
        at = start_s + i * 7  # 7 s apart: minutes and 5 minutes go by
        out.append(Tick("AAPL", round(190 + ((i * 37) % 23 - 11) / 100, 2),
                        market_time=at * 1000, volume=first_volume + 100 * i,
                        open=189.0, high=191.0, low=188.5))  # fmt: skip
    return out


async def run_keeper(store: SqliteStore, published: list[tuple[Tick, int, float]]) -> None:
    writer = Writer(store)
    writer.start()
    keeper = Keeper(store, writer, epoch=lambda: "e1", wanted=lambda: frozenset({"AAPL"}))
    keeper.lead(True)
    for tick, seq, timestamp in published[:1]:
        keeper.published(tick, seq, timestamp, protocol.price_update(tick, seq, timestamp))
    await keeper.settled()
    for tick, seq, timestamp in published[1:]:
        keeper.published(tick, seq, timestamp, protocol.price_update(tick, seq, timestamp))
    await keeper.flush()
    await writer.stop()


async def test_the_kept_bars_are_the_wires_fold_of_the_updates(store: SqliteStore) -> None:
    first = ticks(T0, 120, 1000)
    published = [(t, i + 1, (t.market_time or 0) + 5.5) for i, t in enumerate(first)]
    await run_keeper(store, published)
    for interval in INTERVALS:
        book = BarBook("AAPL", interval)
        for tick, seq, timestamp in published:
            _, _, update = protocol.read_update(protocol.price_update(tick, seq, timestamp))
            book.apply(seq, update)
        wire = [json.loads(rest_text(text)) for text in book.texts()]
        kept = json.loads("[" + await store.history_text("AAPL", interval, 0, 2**62) + "]")
        assert kept == wire, interval
        last = await store.bars("AAPL", interval, 0, 2**62)
        assert [b.final for b in last] == [True] * (len(last) - 1) + [False]
    quote = await store.last_quote("AAPL")
    assert quote is not None and quote.seq == 120 and quote.epoch == "e1"


async def test_a_restart_goes_on_with_the_forming_bar_and_the_volume(store: SqliteStore) -> None:
    first = ticks(T0, 20, 1000)
    await run_keeper(store, [(t, i + 1, float(t.market_time or 0)) for i, t in enumerate(first)])
    (forming,) = await store.bars("AAPL", "5m", T0 - T0 % 300, T0 - T0 % 300 + 1)
    # The same 5 minutes, later: a new process publishes on (volume counted from the kept).
    later = ticks(T0 + 20 * 7, 3, 1000 + 100 * 25)
    await run_keeper(store, [(t, 21 + i, float(t.market_time or 0)) for i, t in enumerate(later)])
    (again,) = await store.bars("AAPL", "5m", forming.start, forming.start + 1)
    assert again.open == forming.open and again.final is False
    assert again.volume == (forming.volume or 0) + (2500 - 1900) + 100 + 100
    assert again.high >= forming.high and again.low <= forming.low


async def test_bars_kept_by_a_clock_ahead_are_not_continued(store: SqliteStore) -> None:
    """A store whose newest bars are a day ahead of this clock (set back since, or another
    deployment's data directory): continued, the forming one would take in every update,
    and the minutes published now would have no bar."""
    now = int(time.time())
    ahead = ticks(now + 86400, 20, 1000)
    await run_keeper(store, [(t, i + 1, float(t.market_time or 0)) for i, t in enumerate(ahead)])
    start = now - now % 60 - 420
    here = ticks(start, 60, 1000)  # one every 7 s: seven minutes, up to about now
    await run_keeper(store, [(t, 21 + i, float(t.market_time or 0)) for i, t in enumerate(here)])
    last = here[-1].market_time or 0
    kept = await store.bars("AAPL", "1m", start, now + 1)
    assert [b.start for b in kept] == list(range(start, last // 1000 + 1, 60))
    assert [b.final for b in kept] == [True] * (len(kept) - 1) + [False]
