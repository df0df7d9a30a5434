"""History bars as a service: the market-data store first, the source for what it lacks,
and this process's live bar book on top. `GET /api/history` (api/history.py) only calls
`BarHistory.answer`; the hub's bar books start from `BarHistory.base_bars`.

**Store first.** With a store (stockfeed/kept/) an answer is the kept bars of the range
up to the bar forming now (newer ones were kept by a clock ahead of this one), read as one
string (each bar's REST text is kept: a year of 1m bars is not re-encoded).
The store knows which times it holds all bars of (`spans`: where the updater published,
where the source's history was kept); only for what no span covers, and only as far back
as the source reaches (Yahoo's limits: 1m for 5 days), is the source asked. Its bars
fill the holes (a kept bar always wins) and are kept too, for the tickers the deployment
produces, by the updater's process (the store's one writer), with a span saying so: the
same hole is not asked for twice. With a
store, a range is served whole whatever the interval (1m over a year: what was kept).
When the source fails or does not know the ticker, what is kept is still served.

**Without a store** (`--store none`), every answer is the source's, as it always was.

Answers are kept in the process's answer caches (api/answer_cache.py; history has its
own share of the byte budget) as the encoded JSON body: a hit is sent as is. Concurrent
identical requests share one computation; an unknown ticker is remembered too
(NEGATIVE_TTL), so repeating it does not reach the source.

An answer from the source can be thousands of bars (1m over 5d: 7,200), ~100 ms of pure
Python to draw (simulator) and encode. So no answer holds the event loop for long (the
source draws, and `encode` encodes, in chunks with a yield between), at most SLOTS are
computed at once with QUEUE more waiting (then 503 `upstream_busy`), and the per-IP REST
budget charges a request for the work it costs (api/rest_limits.py `history_work`).

Where the process builds bars of the ticker and interval for WebSocket clients (a bar
book, fanout/bar_feed.py), the answer ends with the book's bars instead: REST and the
wire never disagree, and a polling client sees the same candles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stockfeed.api.answer_cache import AnswerCaches, Fill
from stockfeed.fanout.bars import KEPT, newest_time
from stockfeed.kept.base import Batch, KeptBar, KeptStore, KeptUnavailable, Span
from stockfeed.market_hours import MarketClock
from stockfeed.models import Bar
from stockfeed.sources.base import (
    INTERVAL_SECONDS,
    INTERVALS,
    RANGE_DAYS,
    RANGES,
    Source,
    SourceError,
    UnknownTicker,
    check_history_params,
    clamp_range,
)
from stockfeed.sources.budget import UpstreamBusy

if TYPE_CHECKING:
    from stockfeed.fanout.bar_feed import BarFeed
    from stockfeed.kept.keeper import Keeper

log = logging.getLogger(__name__)

# How long "the source has no such ticker" is believed: symbols rarely appear, and a
# client repeating a made-up one must not reach the source each time.
NEGATIVE_TTL = 600.0
# A source answer lives a bar's time, but at most this: daily bars still pick up the day.
MAX_TTL = 3600.0
# An answer from the store lives this long at most (a bar's time for shorter bars): it is
# cheap to read again, and what it lacks at its end the live book adds.
KEPT_TTL = 5.0
# Bars JSON-encoded between yields to the event loop (~0.5 ms at ~4 us a bar).
ENCODE_CHUNK = 125
# Distinct history answers computed (source call and encoding) at once per process, and
# how many more may wait for a slot; past that: 503 upstream_busy with Retry-After. Each
# computation yields between chunks, so two at once cost a WebSocket client at most two
# chunks (~1 ms) per loop turn, however many requests arrive. Requests for an answer
# already being computed join it (single flight) and take no slot.
SLOTS = 2
QUEUE = 16
BUSY_RETRY_AFTER = 1
# `1d` and `5d` count sessions (the current one, or the last: Yahoo's meaning, so a
# weekend still shows Friday); longer ranges count calendar days back from now.
SESSION_RANGES = {"1d": 1, "5d": 5}
# The ranges of history a first bar book starts from, the next one asked only when the
# first holds fewer than the KEPT bars a book keeps (1m over 1d just after the day
# starts: a few bars, when the book can show 120).
BASE_RANGES = {"1m": ("1d", "5d"), "5m": ("5d",), "15m": ("5d",), "1h": ("1mo",), "1d": ("1y",)}
# A first book's history the upstream budget refused (UpstreamBusy): asked again after the
# budget's Retry-After, this many times in all, rather than starting a book without it.
BASE_ATTEMPTS = 4
FOREVER = 2**62


class NoHistory(Exception):
    """Neither a store nor a source: nothing to answer from (a relay-only process)."""


class UnknownHistory(Exception):
    """The source does not know the ticker and nothing is kept of it."""


@dataclass(frozen=True, slots=True)
class _Unknown:
    message: str


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _head(ticker: str, interval: str) -> tuple[str, str]:
    """The answer around its bars: (up to and including `"bars":[`, the closing `]}`)."""
    head = _dumps({"ticker": ticker, "interval": interval, "bars": []})
    return head[:-2], head[-2:]


async def encode(ticker: str, interval: str, bars: list[Bar]) -> bytes:
    """The same bytes FastAPI's JSONResponse would send for the dict, without its
    jsonable_encoder walk (5x the time of the dumps itself on 7,200 bars), encoded
    ENCODE_CHUNK bars at a time with a yield to the loop between chunks."""
    start, end = _head(ticker, interval)
    parts = [start]
    for i in range(0, len(bars), ENCODE_CHUNK):
        if i:
            await asyncio.sleep(0)
            parts.append(",")
        parts.append(_dumps([b.as_dict() for b in bars[i : i + ENCODE_CHUNK]])[1:-1])
    parts.append(end)
    return "".join(parts).encode()


class _Slots:
    """History answers computed at once in this process (SLOTS), and a bounded queue."""

    def __init__(self) -> None:
        self.semaphore = asyncio.Semaphore(SLOTS)
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self, queue: bool = True) -> AsyncIterator[None]:
        """A slot; with `queue`, refused (UpstreamBusy) when QUEUE already wait. The
        process's own work (first bar books) waits whatever the queue: it is bounded by
        the ticker budget, and refusing it would leave a book without history."""
        if queue and self.semaphore.locked() and self.waiting >= QUEUE:
            raise UpstreamBusy(
                f"too many history requests being computed; try again in {BUSY_RETRY_AFTER} s",
                BUSY_RETRY_AFTER,
            )
        self.waiting += 1
        try:
            await self.semaphore.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.semaphore.release()


# One per event loop (a semaphore belongs to the loop it first waits on; tests run many).
_slots_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Slots] = (
    weakref.WeakKeyDictionary()
)


def _slots() -> _Slots:
    loop = asyncio.get_running_loop()
    slots = _slots_by_loop.get(loop)
    if slots is None:
        slots = _slots_by_loop[loop] = _Slots()
    return slots


def served_range(interval: str, range_: str, *, kept: bool) -> str:
    """The range an answer covers: as asked with a store (it holds what it kept, however
    far), else cut to the longest the source has (1m over 1y: 5d)."""
    return range_ if kept else clamp_range(interval, range_)


def check_params(interval: str, range_: str, *, kept: bool) -> str | None:
    """A message for a bad interval or range (None: fine), as served."""
    if kept:
        if interval not in INTERVALS:
            return f"interval must be one of {', '.join(INTERVALS)}"
        if range_ not in RANGES:
            return f"range must be one of {', '.join(RANGES)}"
        return None
    return check_history_params(interval, range_)


def range_start(clock: MarketClock, ticker: str, range_: str, now: float) -> int:
    """The epoch second a range begins at: the start of the Nth last session for `1d`
    and `5d`, else that many calendar days back."""
    sessions = SESSION_RANGES.get(range_)
    if sessions is not None:
        try:
            schedule = clock.schedule(ticker)
            days = [
                d for d in clock.trading_days(schedule, now - 14 * 86400, now) if d.start <= now
            ]
        except Exception:  # an instrument the calendar cannot place: calendar days
            days = []
        if days:
            return int(days[max(0, len(days) - sessions)].start)
    return int(now) - RANGE_DAYS[range_] * 86400


def missing(
    start: int, end: int, spans: list[Span], least: int, least_at_end: int | None = None
) -> list[tuple[int, int]]:
    """The parts of [start, end) no span covers, each at least `least` seconds long (the
    one that reaches `end`: `least_at_end`)."""
    out: list[tuple[int, int]] = []
    at = start
    for span in sorted(spans, key=lambda s: s.start):
        if span.start > at:
            out.append((at, min(span.start, end)))
        at = max(at, span.end)
        if at >= end:
            break
    if at < end:
        out.append((at, end))
    last = least if least_at_end is None else least_at_end
    return [(a, b) for a, b in out if b - a >= (last if b >= end else least)]


def until(interval: str, now: float) -> int:
    """Where kept bars end for an answer at `now`: after the bar forming now. A store can
    hold newer ones, kept by a clock ahead of this one (set back since, or another
    deployment's data directory): they are not served."""
    return newest_time(interval, now) + 1


class BarHistory:
    def __init__(
        self,
        *,
        source: Source | None,
        kept: KeptStore | None,
        keeper: Keeper | None,
        answers: AnswerCaches,
        clock: MarketClock,
        bars: BarFeed,
    ) -> None:
        self.source = source
        self.kept = kept
        self.keeper = keeper
        self.answers = answers
        self.clock = clock
        self.bars = bars
        # For health: answers from the store alone, with the source's help, source only.
        self.from_store = 0
        self.with_source = 0
        self.source_only = 0

    @property
    def keeps(self) -> bool:
        return self.kept is not None

    def served_range(self, interval: str, range_: str) -> str:
        return served_range(interval, range_, kept=self.keeps)

    def check(self, interval: str, range_: str) -> str | None:
        return check_params(interval, range_, kept=self.keeps)

    async def answer(
        self, ticker: str, interval: str, range_: str, *, queue: bool = True, live: bool = True
    ) -> bytes:
        """The JSON body of `GET /api/history/{ticker}` (interval and range checked and
        served). Raises NoHistory, UnknownHistory, UpstreamBusy or SourceError."""
        source = self.source
        name = source.name if source is not None else "none"
        if self.kept is not None:
            key: tuple[Any, ...] = ("history", "kept", name, ticker, interval, range_)
            body = await self.answers.get_or_load(
                key, lambda: self._kept_answer(ticker, interval, range_, queue)
            )
        else:
            if source is None:
                raise NoHistory("this server relays only (source none): no history")
            key = ("history", name, ticker, interval, range_)
            body = await self.answers.get_or_load(
                key, lambda: self._source_answer(source, ticker, interval, range_, queue)
            )
        if isinstance(body, _Unknown):
            raise UnknownHistory(body.message)
        if live:
            books = self.bars.live_bars(ticker, interval)
            if books:
                first = range_start(self.clock, ticker, range_, time.time())
                body = with_live_bars(body, books, first)
        return body

    # -- from the source alone ---------------------------------------------------------

    async def _source_answer(
        self, source: Source, ticker: str, interval: str, range_: str, queue: bool
    ) -> Fill[bytes | _Unknown]:
        """One source call; SourceError (UpstreamBusy included) propagates: not cached."""
        async with _slots().slot(queue):
            try:
                bars = await source.history(ticker, interval, range_)
            except UnknownTicker as exc:
                message = str(exc) or f"unknown ticker {ticker}"
                return Fill(_Unknown(message), len(message), NEGATIVE_TTL)
            body = await encode(ticker, interval, bars)
        self.source_only += 1
        return Fill(body, len(body), min(float(INTERVAL_SECONDS[interval]), MAX_TTL))

    # -- from the store first ----------------------------------------------------------

    async def _kept_answer(
        self, ticker: str, interval: str, range_: str, queue: bool
    ) -> Fill[bytes | _Unknown]:
        kept = self.kept
        assert kept is not None
        step = INTERVAL_SECONDS[interval]
        ttl = min(float(step), KEPT_TTL)
        now = time.time()
        start = range_start(self.clock, ticker, range_, now)
        start -= start % step if interval != "1d" else start % 86400
        source = self.source
        holes: list[tuple[int, int]] = []
        spans: list[Span] = []
        if source is not None:
            reach = clamp_range(interval, range_)
            reach_start = range_start(self.clock, ticker, reach, now)
            try:
                spans = await kept.spans(ticker, interval, max(start, reach_start), FOREVER)
            except KeptUnavailable as exc:
                log.warning("store: %s; history of %s from the source", exc, ticker)
                return await self._source_answer(source, ticker, interval, reach, queue)
            # The source is asked again for the newest bars as often as its answers used
            # to be kept (a bar's time, at most an hour); for older holes, one bar's worth.
            holes = missing(max(start, reach_start), int(now), spans, step, int(min(step, MAX_TTL)))
        if not holes:
            try:
                pieces = await kept.history_pieces(ticker, interval, start, until(interval, now))
            except KeptUnavailable as exc:
                if source is None:
                    raise SourceError(f"the store cannot be read: {exc}") from None
                return await self._source_answer(
                    source, ticker, interval, clamp_range(interval, range_), queue
                )
            if not pieces:
                if source is None:
                    raise NoHistory(
                        f"this server relays only (source none) and keeps no {interval} bars "
                        f"of {ticker} in that range"
                    )
                # Nothing kept, and the range too young to ask the source for its newest
                # bars (the first minutes of a session): the source still says whether it
                # knows the ticker at all, so an unknown one is a 404 at any hour.
                return await self._fill_holes(
                    source, ticker, interval, range_, start, spans, ttl, queue
                )
            head, tail = _head(ticker, interval)
            # One copy of a 9 MB year: the pieces, commas, head and tail joined at once.
            parts = [head.encode()]
            for i, piece in enumerate(pieces):
                if i:
                    parts.append(b",")
                parts.append(piece)
            parts.append(tail.encode())
            body = b"".join(parts)
            self.from_store += 1
            return Fill(body, len(body), ttl)
        assert source is not None
        return await self._fill_holes(source, ticker, interval, range_, start, spans, ttl, queue)

    async def _fill_holes(
        self,
        source: Source,
        ticker: str,
        interval: str,
        range_: str,
        start: int,
        spans: list[Span],
        ttl: float,
        queue: bool,
    ) -> Fill[bytes | _Unknown]:
        """The kept bars with the source's where no span covers them, and those kept."""
        kept = self.kept
        assert kept is not None
        reach = clamp_range(interval, range_)
        now = time.time()
        async with _slots().slot(queue):
            try:
                fetched: list[Bar] | None = await source.history(ticker, interval, reach)
            except UnknownTicker as exc:
                fetched = None
                unknown = str(exc) or f"unknown ticker {ticker}"
            except SourceError as exc:
                fetched = None
                unknown = ""
                failure: SourceError | None = exc
            else:
                unknown = ""
                failure = None
            try:
                stored = await kept.bars(ticker, interval, start, until(interval, now))
            except KeptUnavailable:
                stored = []
            if fetched is None and not stored:
                if unknown:
                    return Fill(_Unknown(unknown), len(unknown), NEGATIVE_TTL)
                assert failure is not None
                raise failure
            by_time: dict[int, Bar | KeptBar] = {}
            fresh: list[KeptBar] = []
            for bar in fetched or []:
                # The source's range is its own (trusted); only where the store holds all
                # bars (a span: a minute without trades has no bar) does it add nothing.
                if any(s.start <= bar.time < s.end for s in spans):
                    continue
                by_time[bar.time] = bar
                # Its newest bar may still be forming: kept, but not final (the next
                # answer from the source replaces it, a built bar too).
                fresh.append(
                    KeptBar(
                        ticker,
                        interval,
                        bar.time,
                        bar.open,
                        bar.high,
                        bar.low,
                        bar.close,
                        bar.volume,
                        _complete(bar.time, interval, now),
                        origin="source",
                    )
                )
            for kept_bar in stored:
                by_time[kept_bar.start] = kept_bar
            merged = [by_time[t] for t in sorted(by_time)]
            body = await _encode_mixed(ticker, interval, merged)
        if fetched is not None:
            self._keep(ticker, interval, reach, fresh, now)
        self.with_source += 1
        return Fill(body, len(body), ttl)

    def _keep(
        self, ticker: str, interval: str, reach: str, bars: list[KeptBar], now: float
    ) -> None:
        """The source's bars to the store, with the span they cover: only where this
        process writes the store (the updater leads), and only for tickers the deployment
        produces (the watchlist, what clients hold): a flood of REST requests for
        distinct tickers is answered, but cannot make the store grow without bound."""
        keeper = self.keeper
        if keeper is None or not keeper.active or ticker not in keeper.wanted():
            return
        begin = range_start(self.clock, ticker, reach, now)
        end = int(now)
        keeper.writer.put(
            Batch(source_bars=bars, spans=[Span(ticker, interval, begin, end, "source")])
        )

    # -- the hub's bar books ---------------------------------------------------------------

    def base_bars(self) -> Callable[[str, str], Awaitable[list[dict[str, Any]]]]:
        """What the hub's bar books start from: the same answers as `GET /api/history`
        (so a flood of first books cannot hammer the source either). A client subscribing
        fifty tickers with bars at once starts fifty books: they wait for a history slot
        instead of being refused, and wait out a busy upstream budget."""

        async def load(ticker: str, interval: str) -> list[dict[str, Any]]:
            bars: list[dict[str, Any]] = []
            for range_ in BASE_RANGES[interval]:
                bars = await load_range(ticker, interval, range_)
                if len(bars) >= KEPT:
                    break
            return bars

        async def load_range(ticker: str, interval: str, range_: str) -> list[dict[str, Any]]:
            if self.source is None and self.kept is None:
                return []
            for attempt in range(1, BASE_ATTEMPTS + 1):
                try:
                    body = await self.answer(ticker, interval, range_, queue=False, live=False)
                    break
                except UpstreamBusy as exc:
                    if attempt == BASE_ATTEMPTS:
                        raise
                    await asyncio.sleep(exc.retry_after)
                except (UnknownHistory, NoHistory):
                    return []
            bars: list[dict[str, Any]] = json.loads(body)["bars"]
            return bars

        return load

    def stats(self) -> dict[str, int]:
        return {
            "from_store": self.from_store,
            "with_source": self.with_source,
            "source_only": self.source_only,
        }


async def _encode_mixed(ticker: str, interval: str, bars: list[Bar | KeptBar]) -> bytes:
    """An answer of source bars and kept ones (each REST text as the store keeps it)."""
    start, end = _head(ticker, interval)
    parts = [start]
    for i in range(0, len(bars), ENCODE_CHUNK):
        if i:
            await asyncio.sleep(0)
            parts.append(",")
        parts.append(
            ",".join(
                b.rest_text() if isinstance(b, KeptBar) else _dumps(b.as_dict())
                for b in bars[i : i + ENCODE_CHUNK]
            )
        )
    parts.append(end)
    return "".join(parts).encode()


def _complete(start: int, interval: str, now: float) -> bool:
    """Whether a bar's time is over (a source's newest bar may still be forming)."""
    if interval == "1d":
        return start + 2 * 86400 <= now  # a session date's bar: over by the day after next
    return start + INTERVAL_SECONDS[interval] <= now


def with_live_bars(body: bytes, live: list[tuple[int, str]], first: int) -> bytes:
    """An answer with the process's own bars (the bar book, as the WebSocket sends them)
    in place of its bars from the book's first bar on, so REST and the wire never
    disagree. `live` is (time, REST bar text), oldest first; `body` is an answer
    (`{"ticker":..,"interval":..,"bars":[{"time":N,...},...]}`), read from its end: only
    the bars the book replaces are looked at. `first`: where the range begins, when the
    answer has no bar to say so."""
    start = body.index(b'"bars":[') + len(b'"bars":[')
    end = body.rindex(b"]")
    marker = b'{"time":'
    cut = end
    while True:
        found = body.rfind(marker, start, cut)
        if found < 0:
            break
        number = found + len(marker)
        if int(body[number : body.index(b",", number)]) < live[0][0]:
            break
        cut = found
    kept = body[start:cut].rstrip(b",")
    if body[start : start + len(marker)] == marker:  # the range begins at its first bar
        number = start + len(marker)
        first = int(body[number : body.index(b",", number)])
    texts = [text for when, text in live if when >= first]
    joined = ",".join(texts).encode()
    return body[:start] + kept + (b"," if kept and joined else b"") + joined + body[end:]


__all__ = [
    "BASE_RANGES",
    "BarHistory",
    "NoHistory",
    "UnknownHistory",
    "encode",
    "with_live_bars",
]
