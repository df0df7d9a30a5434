"""What the market-data store holds, and the interface both implementations offer.

Reads are async and may run in any process. Writes go through a `BatchWriter`, a plain
synchronous object that lives on the writer thread (kept/writer.py) of the elected
updater: one per deployment, so two processes never write the same rows.

Times: bar `start` in epoch seconds (the bucket start, as `time` on the wire; for `1d`
00:00 UTC of the session's date), tick `time_us` in epoch microseconds (the update's
`timestamp`, which has microsecond digits), quote `time_ms` in epoch milliseconds.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from stockfeed.kept.schema import CHUNK_SECONDS
from stockfeed.protocol.messages import dumps

# What `interval` says on a span that covers every interval: the updater's own bars, which
# it builds for all of them at once.
ALL_INTERVALS = "*"


def chunk_start(interval: str, start: int) -> int | None:
    """The start of the bar chunk (kept/schema.py) a bar's time is in; None: not chunked."""
    span = CHUNK_SECONDS.get(interval)
    return None if span is None else start - start % span


def closed_chunks(bars: list[KeptBar], now: float) -> set[tuple[str, str, int]]:
    """(ticker, interval, chunk start) of the chunks these bars are in whose time is over:
    the chunks a write of them must make again."""
    out = set()
    for bar in bars:
        first = chunk_start(bar.interval, bar.start)
        if first is not None and first + CHUNK_SECONDS[bar.interval] <= now:
            out.add((bar.ticker, bar.interval, first))
    return out


def join_chunks(
    interval: str, start: int, end: int, chunks: list[tuple[int, bytes]]
) -> list[tuple[int, int] | bytes]:
    """How to read [start, end): the chunk texts of whole chunks inside it, and between
    them the (from, to) spans to read bar by bar, in time order."""
    span = CHUNK_SECONDS.get(interval)
    out: list[tuple[int, int] | bytes] = []
    at = start
    for first, body in chunks:
        if span is None or first < start or first + span > end:
            continue
        if first > at:
            out.append((at, first))
        if body:
            out.append(body)
        at = first + span
    if at < end:
        out.append((at, end))
    return out


class KeptUnavailable(Exception):
    """The store cannot be read or written right now (PostgreSQL away, disk full)."""


def wire_volume(value: float | int | None) -> int | float | None:
    """A volume as the wire has it: whole numbers as ints (a REAL column gives 123.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True, slots=True)
class KeptBar:
    ticker: str
    interval: str
    start: int  # epoch seconds: the bar's `time`
    open: float
    high: float
    low: float
    close: float
    volume: int | float | None
    final: bool
    revision: int = 0  # +1 each time a final bar was replaced by different values
    origin: str = "built"  # "built": folded from the update stream; "source": its history

    def rest_text(self) -> str:
        """The bar exactly as /api/history sends it (and as a wire BAR without `final`)."""
        return dumps(
            {
                "time": self.start,
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "close": self.close,
                "volume": wire_volume(self.volume),
            }
        )

    def wire_values(self) -> tuple[int, float, float, float, float, int | None]:
        """(time, open, high, low, close, volume) for a bar book (fanout/bars.py)."""
        volume = wire_volume(self.volume)
        return (
            self.start,
            self.open,
            self.high,
            self.low,
            self.close,
            volume if isinstance(volume, int) or volume is None else int(volume),
        )


@dataclass(frozen=True, slots=True)
class KeptQuote:
    """A ticker's last update, as published."""

    ticker: str
    seq: int
    epoch: str  # the shared store's epoch the seq belongs to
    time_ms: float  # its `timestamp`
    body: str  # the price_update text

    def update(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


class KeptTick(NamedTuple):
    """One update (`--keep-ticks`): what a replay or a notebook needs of it. A tuple in
    the `ticks` table's column order: made for every update, written as it is."""

    time_us: int  # the update's `timestamp`, in microseconds
    ticker: str
    seq: int
    price: float
    volume: int | float | None = None
    market_time: int | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    prev_close: float | None = None
    price_decimals: int | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """Times [start, end) whose bars of `interval` (ALL_INTERVALS: every one) are all in
    the store: the updater published the ticker throughout (origin `built`), or the
    source's history was kept for it (`source`). What no span covers, history asks the
    source for."""

    ticker: str
    interval: str
    start: int
    end: int
    origin: str


@dataclass(slots=True)
class Batch:
    """What the writer thread writes in one transaction."""

    bars: list[KeptBar] = field(default_factory=list)  # built: replace what is kept
    source_bars: list[KeptBar] = field(default_factory=list)  # only where none is kept
    quotes: list[KeptQuote] = field(default_factory=list)
    ticks: list[KeptTick] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.bars)
            + len(self.source_bars)
            + len(self.quotes)
            + len(self.ticks)
            + len(self.spans)
        )

    def merge(self, later: Batch) -> None:
        """Take in a later batch: a bar, quote or span written again keeps its newest."""
        self.bars = _newest(self.bars + later.bars, lambda b: (b.ticker, b.interval, b.start))
        self.source_bars.extend(later.source_bars)
        self.quotes = _newest(self.quotes + later.quotes, lambda q: q.ticker)
        self.ticks.extend(later.ticks)
        self.spans = _newest(self.spans + later.spans, lambda s: (s.ticker, s.interval, s.start))


def _newest(items: list[Any], key: Any) -> list[Any]:
    out: dict[Any, Any] = {}
    for item in items:
        out[key(item)] = item
    return list(out.values())


class BatchWriter(abc.ABC):
    """The writing side, used on the writer thread only (synchronous, one connection)."""

    @abc.abstractmethod
    def write(self, batch: Batch) -> None:
        """Everything in one transaction; raises KeptUnavailable when it cannot."""

    @abc.abstractmethod
    def drop_ticks_before(self, time_us: int) -> int:
        """Delete the ticks older than `time_us`; how many went (-1: not counted)."""

    @abc.abstractmethod
    def oldest_tick_us(self) -> int | None: ...

    @abc.abstractmethod
    def size_bytes(self) -> int:
        """The store's size on disk (SQLite: the file's used pages; PostgreSQL: its
        tables and indexes)."""

    def compact(self) -> None:  # noqa: B027 - optional
        """Give freed space back (after deletions)."""

    @abc.abstractmethod
    def close(self) -> None: ...


class KeptStore(abc.ABC):
    """The market-data store of a deployment. `open()` connects and applies migrations."""

    kind: str  # "sqlite" | "postgresql"

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """Where it is, for logs and health (a path, or a URL without its password)."""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def open_writer(self) -> BatchWriter:
        """A writer for the writer thread (called on that thread)."""

    # -- reads ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def history_pieces(self, ticker: str, interval: str, start: int, end: int) -> list[bytes]:
        """The kept bars with `start <= time < end` as UTF-8 pieces, oldest first, each
        one or more REST bar texts joined by commas: joined by commas themselves, the
        inside of a history answer's `bars` array. Bytes as the database gives them: a
        year of 1m bars (9 MB) is copied as few times as can be."""

    async def history_text(self, ticker: str, interval: str, start: int, end: int) -> str:
        """`history_pieces` as one text ("" when none)."""
        pieces = await self.history_pieces(ticker, interval, start, end)
        return b",".join(pieces).decode()

    @abc.abstractmethod
    async def bars(
        self, ticker: str, interval: str, start: int, end: int, *, newest: int | None = None
    ) -> list[KeptBar]:
        """Kept bars with `start <= time < end`, oldest first; `newest=N`: only the N
        newest of them."""

    @abc.abstractmethod
    async def last_quote(self, ticker: str) -> KeptQuote | None: ...

    @abc.abstractmethod
    async def quote_seqs(self) -> dict[str, int]:
        """Every kept ticker's last seq: the updater never goes below them."""

    @abc.abstractmethod
    async def book_state(
        self, ticker: str, interval: str, newest: int
    ) -> tuple[KeptQuote | None, list[KeptBar]]:
        """The last quote and the `newest` bars as of the same write (one snapshot): a
        bar book as of the quote's seq."""

    @abc.abstractmethod
    async def seed(self, ticker: str) -> tuple[KeptQuote | None, dict[str, KeptBar]]:
        """The last quote and the newest `built` bar of each interval, as of one write:
        where the updater's fold of the ticker continues from (kept/keeper.py)."""

    @abc.abstractmethod
    async def spans(self, ticker: str, interval: str, start: int, end: int) -> list[Span]:
        """Spans of `interval` (or of all intervals) that overlap [start, end)."""

    @abc.abstractmethod
    async def ticks(
        self,
        start_us: int,
        end_us: int,
        *,
        tickers: frozenset[str] | None = None,
        after: tuple[int, str, int] | None = None,
        limit: int = 5000,
    ) -> list[KeptTick]:
        """Kept updates in [start_us, end_us), in time order (then ticker, seq), after the
        (time_us, ticker, seq) `after` when given: a page of at most `limit`."""

    @abc.abstractmethod
    async def tickers(self) -> list[str]:
        """The tickers with a kept quote."""
