"""The updater's side of the store: every published update folded into bars, kept in batches.

Runs only where the updater leads (the store's one writer). For each ticker it publishes
it holds one bar book per interval (fanout/bars.py: the very fold the wire's bar books
make, so the store and the wire agree bar for bar), folds each update into them as it is
published (`published`: a few attribute writes per interval, no encoding, no waiting),
and every FLUSH_INTERVAL hands the writer thread what changed: the bars made final, the
forming ones, each ticker's last update, the ticks (`--keep-ticks`) and how far its
built span reaches. A crash loses at most that interval.

**Where a ticker's fold starts.** On its first update in this process the keeper reads
the ticker's last kept quote and newest built bars (`KeptStore.seed`, while its updates
wait in a list: publishing never waits for it) and continues from them: the forming bar
goes on, and the cumulative volume continues from the kept quote's, so a restart keeps
the day's candles and their volumes. A kept bar newer than this clock and the first update
(kept by a clock ahead of this one) is not continued: it would take in every update. When
the kept quote is of the same epoch but older than the first update here (another process
led meanwhile and its last writes were not kept), the updates in between are taken from
the shared store's recent history.

**Bar books start from it.** `checkpoint` gives a process's bar book (fanout/bar_feed.py)
the state to start from: in the writer's own process its fold itself (the kept bars plus
what is not written yet), elsewhere the kept bars and quote as of one write, which the
book folds on from with the shared history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from stockfeed import protocol
from stockfeed.fanout.bars import (
    KEPT,
    BarBook,
    Forming,
    bar_text,
    bar_values,
    newest_time,
    update_time,
)
from stockfeed.kept.base import (
    ALL_INTERVALS,
    Batch,
    KeptBar,
    KeptQuote,
    KeptStore,
    KeptTick,
    KeptUnavailable,
    Span,
)
from stockfeed.kept.writer import Writer
from stockfeed.models import Tick
from stockfeed.sources.base import INTERVALS
from stockfeed.sources.last_price import day_key

log = logging.getLogger(__name__)

# Seconds between two batches handed to the writer: what a crash can lose at most.
FLUSH_INTERVAL = 0.5
# Finals kept in memory per book (the rest are read back from the store): more than can
# be made between a batch being handed over and its transaction committing.
RECENT_FINALS = 16
# Dirty tickers handed over per loop turn while a batch is assembled.
FLUSH_CHUNK = 500
# How long a bar book's build waits for a ticker's fold to be loaded.
LOAD_WAIT = 2.0
FOREVER = 2**62
# How long a bar book waits for a ticker's first batch, and how often it looks.
KEPT_WAIT = 2.0
KEPT_POLL = 0.25

Recent = Callable[[str], Awaitable[list[str]]]


def update_of(tick: Tick, timestamp: float) -> dict[str, Any]:
    """What a bar book reads of a published update (the same values the wire's JSON
    gives back: floats stay floats, ints ints)."""
    return {
        "timestamp": timestamp,
        "data": {
            "price": tick.price,
            "volume": tick.volume,
            "open": tick.open,
            "high": tick.high,
            "low": tick.low,
            "market_time": tick.market_time,
            "session": tick.session,
        },
    }


Values = tuple[int, float, float, float, float, int | None]


def _values(bar: Forming) -> Values:
    return bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume


def _kept_bar(ticker: str, interval: str, bar: Forming, final: bool) -> KeptBar:
    return KeptBar(
        ticker, interval, bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume, final
    )


@dataclass(slots=True)
class _Fold:
    """One ticker's fold: its books (None while its kept state is read)."""

    loaded: asyncio.Future[None]
    books: dict[str, BarBook] | None = None
    pending: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    closed: list[tuple[str, Forming]] = field(default_factory=list)  # finals not handed over
    recent: dict[str, deque[Forming]] = field(default_factory=dict)  # newest finals
    quote: tuple[int, float, str] | None = None  # newest (seq, timestamp, text), not written
    seq: int = 0
    span_start: int = 0


class Keeper:
    def __init__(
        self,
        store: KeptStore,
        writer: Writer,
        *,
        epoch: Callable[[], str],
        wanted: Callable[[], frozenset[str]],
        recent: Recent | None = None,
        keep_ticks: bool = False,
        flush_interval: float = FLUSH_INTERVAL,
        wait_for_first: bool = True,
    ) -> None:
        """`wait_for_first`: a bar book waits for a new ticker's first kept batch (a
        process with an updater: it or another of the deployment writes the store; a
        relay-only one may serve another publisher's tickers, which nobody keeps)."""
        self.store = store
        self.writer = writer
        self.epoch = epoch
        self.wanted = wanted
        self.recent = recent
        self.keep_ticks = keep_ticks
        self.flush_interval = flush_interval
        self.wait_for_first = wait_for_first
        self.active = False  # the updater leads: this process writes
        self._folds: dict[str, _Fold] = {}
        self._dirty: set[str] = set()
        self._ticks: list[KeptTick] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.folded = 0  # updates folded, for health
        # The history a bar book shows before the fold's bars (set by the services: the
        # history service's, the store first).
        self.base: Callable[[str, str], Awaitable[list[dict[str, Any]]]] | None = None

    # -- the updater's side ----------------------------------------------------------------

    def lead(self, leading: bool) -> None:
        """The updater took (True) or lost (False) the lock. Losing it forgets every fold:
        the new leader writes from now on, and a later lead starts from what it kept."""
        if leading == self.active:
            return
        self.active = leading
        if not leading:
            self._folds.clear()
            self._dirty.clear()
            self._ticks.clear()

    def published(self, tick: Tick, seq: int, timestamp: float, raw: str) -> None:
        """An update the updater just published (never awaits, never raises)."""
        if not self.active:
            return
        ticker = tick.ticker
        update = update_of(tick, timestamp)
        fold = self._folds.get(ticker)
        if fold is None:
            fold = self._folds[ticker] = _Fold(asyncio.get_running_loop().create_future())
            fold.span_start = int(timestamp // 1000)
            task = asyncio.create_task(self._load(ticker, fold, seq), name=f"kept-{ticker}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if fold.books is None:
            fold.pending.append((seq, update))
        else:
            self._fold(fold, seq, update)
        fold.seq = seq
        fold.quote = (seq, timestamp, raw)
        self._dirty.add(ticker)
        if self.keep_ticks:
            self._ticks.append(
                KeptTick(
                    round(timestamp * 1000),
                    ticker,
                    seq,
                    tick.price,
                    tick.volume,
                    tick.market_time,
                    tick.open,
                    tick.high,
                    tick.low,
                    tick.prev_close,
                    tick.price_decimals,
                    tick.source,
                )
            )

    def _fold(self, fold: _Fold, seq: int, update: dict[str, Any]) -> None:
        assert fold.books is not None
        self.folded += 1
        for interval, book in fold.books.items():
            _, closed = book.fold(seq, update)
            if closed is not None:
                fold.closed.append((interval, closed))
                fold.recent[interval].append(closed)

    async def _load(self, ticker: str, fold: _Fold, first_seq: int) -> None:
        try:
            try:
                quote, bars = await self.store.seed(ticker)
            except KeptUnavailable as exc:
                log.warning("store: no kept state for %s (%s): its bars start afresh", ticker, exc)
                quote, bars = None, {}
            books: dict[str, BarBook] = {}
            first = fold.pending[0][1] if fold.pending else None
            same_day = quote is not None and first is not None and _same_day(ticker, quote, first)
            last = quote.update() if quote is not None and same_day else None
            # Newer than both this clock and the first update: a late update is not it.
            now = max(time.time(), (update_time(first) if first is not None else None) or 0.0)
            newer: list[str] = []
            for interval in INTERVALS:
                book = books[interval] = BarBook(ticker, interval)
                fold.recent[interval] = deque(maxlen=RECENT_FINALS)
                if last is not None:
                    # The cumulative volume goes on from the kept quote's: what traded
                    # while nobody folded lands in the next bar, not nowhere.
                    book.continue_from(last)
                kept = bars.get(interval)
                if kept is not None and kept.start > book.bucket(now):
                    # Kept by a clock ahead of this one (set back since, or another
                    # deployment's): continued, it would take in every update until its
                    # time, and the built span would claim bars that were never kept.
                    newer.append(interval)
                elif kept is not None:
                    book.forming = Forming(*kept.wire_values())
            if newer:
                log.warning(
                    "store: kept %s bars of %s are newer than this clock; they are not "
                    "continued (is the clock right, or was the data directory another's?)",
                    "/".join(newer),
                    ticker,
                )
            fold.books = books
            if quote is not None and quote.epoch == self.epoch() and self.recent is not None:
                await self._catch_up(ticker, fold, quote.seq, first_seq)
            pending, fold.pending = fold.pending, []
            for seq, update in pending:
                self._fold(fold, seq, update)
        except Exception:
            log.exception("store: loading %s failed: its bars start afresh", ticker)
            fold.books = {i: BarBook(ticker, i) for i in INTERVALS}
            fold.recent = {i: deque(maxlen=RECENT_FINALS) for i in INTERVALS}
            pending, fold.pending = fold.pending, []
            for seq, update in pending:
                self._fold(fold, seq, update)
        finally:
            if not fold.loaded.done():
                fold.loaded.set_result(None)

    async def _catch_up(self, ticker: str, fold: _Fold, kept_seq: int, first_seq: int) -> None:
        """Fold the updates another leader published after the kept quote and before this
        process's first one, from the shared recent history."""
        if kept_seq >= first_seq - 1 or self.recent is None:
            return
        try:
            recent = await self.recent(ticker)
        except Exception as exc:
            log.info("store: %s updates %d-%d not folded (%s)", ticker, kept_seq, first_seq, exc)
            return
        for raw in recent:
            try:
                _, seq, update = protocol.read_update(raw)
            except protocol.BadUpdate:
                continue
            if kept_seq < seq < first_seq:
                self._fold(fold, seq, update)

    async def settled(self) -> None:
        """Until every ticker's fold has read its kept state (tests and benchmarks)."""
        while pending := [f.loaded for f in self._folds.values() if not f.loaded.done()]:
            await asyncio.wait(pending)

    # -- batches ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Hand a batch to the writer every flush_interval, until cancelled (then one last)."""
        try:
            while True:
                await asyncio.sleep(self.flush_interval)
                await self.flush()
                self._forget_unwanted()
        finally:
            await self.flush()

    async def flush(self) -> None:
        if not self.active:
            return
        batch = Batch()
        now_s = int(time.time()) + 1
        epoch = self.epoch()
        dirty, self._dirty = self._dirty, set()
        for i, ticker in enumerate(dirty):
            if i and i % FLUSH_CHUNK == 0:
                await asyncio.sleep(0)
                if not self.active:
                    return
            fold = self._folds.get(ticker)
            if fold is None:
                continue
            if fold.books is None:
                self._dirty.add(ticker)  # still loading: next time
                continue
            for interval, bar in fold.closed:
                batch.bars.append(_kept_bar(ticker, interval, bar, True))
            fold.closed.clear()
            for interval, book in fold.books.items():
                if book.forming is not None:
                    batch.bars.append(_kept_bar(ticker, interval, book.forming, False))
            if fold.quote is not None:
                seq, timestamp, raw = fold.quote
                batch.quotes.append(KeptQuote(ticker, seq, epoch, timestamp, raw))
            batch.spans.append(Span(ticker, ALL_INTERVALS, fold.span_start, now_s, "built"))
        batch.ticks, self._ticks = self._ticks, []
        self.writer.put(batch)

    def _forget_unwanted(self) -> None:
        """A ticker the updater stopped producing: its span ends; a later one starts anew."""
        wanted = self.wanted()
        for ticker in [t for t in self._folds if t not in wanted and t not in self._dirty]:
            del self._folds[ticker]

    # -- bar books' starting point ---------------------------------------------------------

    async def checkpoint(self, ticker: str, interval: str) -> tuple[str, str] | None:
        """(epoch, checkpoint) a bar book of `ticker` can start from (fanout/bars.py's
        checkpoint text), None when nothing is kept: the history before it (`base`: the
        store first, the source for its holes), then the fold's own bars on top.

        A ticker the writer has just begun (nothing of it written yet) is waited for, up
        to KEPT_WAIT: a book made otherwise (from the source's bars) would differ from
        the store's in its first bar, and every process must show the same bars."""
        deadline = time.monotonic() + (KEPT_WAIT if self.wait_for_first else 0.0)
        while True:
            found = await self._checkpoint(ticker, interval)
            if found is not None or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(KEPT_POLL)

    async def _checkpoint(self, ticker: str, interval: str) -> tuple[str, str] | None:
        fold = self._folds.get(ticker) if self.active else None
        if fold is not None:
            if not fold.loaded.done():
                try:
                    await asyncio.wait_for(asyncio.shield(fold.loaded), LOAD_WAIT)
                except TimeoutError:
                    return None
            older = await self._older(ticker, interval)
            if self._folds.get(ticker) is fold and fold.books is not None and self.active:
                return self.epoch(), _own_checkpoint(ticker, interval, fold, older)
        quote, kept = await self.store.book_state(ticker, interval, KEPT)
        if quote is None:
            return None
        finals = {values[0]: values for values in await self._older(ticker, interval)}
        book = BarBook(ticker, interval)
        newest = newest_time(interval, time.time())
        kept = [bar for bar in kept if bar.start <= newest]  # none of a clock ahead of ours
        book.seq = quote.seq
        book.continue_from(quote.update())
        for i, bar in enumerate(kept):
            if i == len(kept) - 1 and not bar.final:
                book.forming = Forming(*bar.wire_values())
            else:
                finals[bar.start] = bar.wire_values()
        cut = book.forming.time if book.forming is not None else FOREVER
        times = sorted(t for t in finals if t < cut)[-(KEPT - 1) :]
        book.finals.extend(bar_text(*finals[t], True) for t in times)
        return quote.epoch, book.checkpoint()

    async def _older(self, ticker: str, interval: str) -> list[Values]:
        """The bars a book shows before the fold's: its history (REST bars)."""
        if self.base is None:
            return []
        try:
            bars = await self.base(ticker, interval)
        except Exception as exc:  # no history (unknown, upstream down): the fold alone
            log.info("no history bars for %s %s (%s)", ticker, interval, exc)
            return []
        return [v for v in map(bar_values, bars) if v is not None]

    def stats(self) -> dict[str, object]:
        return {
            "writing": self.active,
            "tickers": len(self._folds),
            "folded": self.folded,
            "keep_ticks": self.keep_ticks,
            **self.writer.stats(),
        }


def _own_checkpoint(ticker: str, interval: str, fold: _Fold, older: list[Values]) -> str:
    """The fold's book as of its newest update: the history before it, the finals it
    made (kept or not yet), and the forming bar."""
    assert fold.books is not None
    source = fold.books[interval]
    finals: dict[int, Values] = {values[0]: values for values in older}
    for bar in fold.recent[interval]:
        finals[bar.time] = _values(bar)
    forming = source.forming
    times = sorted(t for t in finals if forming is None or t < forming.time)[-(KEPT - 1) :]
    book = BarBook(ticker, interval)
    book.seq = fold.seq
    book.volume = source.volume
    book.price = source.price
    book.finals.extend(bar_text(*finals[t], True) for t in times)
    if forming is not None:
        book.forming = Forming(*_values(forming))
    return book.checkpoint()


def _same_day(ticker: str, quote: KeptQuote, update: dict[str, Any]) -> bool:
    """Whether the kept quote is of the same session day as an update: only then does its
    cumulative volume continue."""
    try:
        kept_data = quote.update().get("data") or {}
        kept_when = kept_data.get("market_time") or quote.time_ms
        when = update["data"].get("market_time") or update["timestamp"]
        return day_key(ticker, float(kept_when) / 1000) == day_key(ticker, float(when) / 1000)
    except (ValueError, TypeError, KeyError, AttributeError):
        return False
