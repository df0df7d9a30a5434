"""REST: OHLCV history bars, cached per ticker, interval and range for one bar's time.

Answers are kept in the process's answer caches (api/answer_cache.py; history has its
own share of the byte budget, which no other kind of answer can take) as the encoded JSON
body: a hit is sent as is, with no re-serialisation, and the cache's byte budget counts
exactly what it holds. Concurrent identical requests share one source call; an unknown
ticker is remembered too (NEGATIVE_TTL), so repeating it does not reach the source.

An answer can be thousands of bars (1m over 5d: 7,200), ~100 ms of pure Python to draw
(simulator) and encode. So no answer holds the event loop for long (the source draws, and
`_encode` encodes, in chunks with a yield between), at most SLOTS are computed at once
with QUEUE more waiting (then 503 `upstream_busy`), and the per-IP REST budget charges a
request for the work it costs, source minutes read as well as bars answered
(api/rest_limits.py `history_work`), so a flood of heavy requests meets 429 sooner.

Where the process builds bars of the ticker and interval for WebSocket clients (a bar
book, fanout/bar_feed.py), the answer ends with the book's bars instead of the source's:
REST and the wire never disagree, and a polling client sees the same candles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from stockfeed.api.answer_cache import AnswerCaches, Fill
from stockfeed.api.deps import answer_cache, api_error, authorized, services, ticker_param
from stockfeed.api.openapi import API_ERRORS, error_responses
from stockfeed.api.rest_limits import HISTORY_DEFAULT_INTERVAL, HISTORY_DEFAULT_RANGE
from stockfeed.fanout.bars import KEPT
from stockfeed.models import Bar
from stockfeed.protocol.codes import ErrorCode
from stockfeed.services import Services
from stockfeed.sources.base import (
    INTERVAL_SECONDS,
    RANGE_DAYS,
    Source,
    SourceError,
    UnknownTicker,
    check_history_params,
    clamp_range,
)
from stockfeed.sources.budget import UpstreamBusy

router = APIRouter(prefix="/api", tags=["history"], dependencies=[Depends(authorized)])

# How long "the source has no such ticker" is believed: symbols rarely appear, and a
# client repeating a made-up one must not reach the source each time.
NEGATIVE_TTL = 600.0
# A bar's time, but at most this: daily bars still pick up the live day's changes.
MAX_TTL = 3600.0
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


@dataclass(frozen=True, slots=True)
class _Unknown:
    message: str


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


async def _encode(ticker: str, interval: str, bars: list[Bar]) -> bytes:
    """The same bytes FastAPI's JSONResponse would send for the dict, without its
    jsonable_encoder walk (5x the time of the dumps itself on 7,200 bars), encoded
    ENCODE_CHUNK bars at a time with a yield to the loop between chunks."""
    head = _dumps({"ticker": ticker, "interval": interval, "bars": []})
    parts = [head[:-2]]  # up to and including '"bars":['
    for i in range(0, len(bars), ENCODE_CHUNK):
        if i:
            await asyncio.sleep(0)
            parts.append(",")
        parts.append(_dumps([b.as_dict() for b in bars[i : i + ENCODE_CHUNK]])[1:-1])
    parts.append(head[-2:])
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


async def _load(
    source: Source, ticker: str, interval: str, range_: str, queue: bool = True
) -> Fill[bytes | _Unknown]:
    """One source call; SourceError (UpstreamBusy included) propagates: not cached."""
    async with _slots().slot(queue):
        try:
            bars = await source.history(ticker, interval, range_)
        except UnknownTicker as exc:
            message = str(exc) or f"unknown ticker {ticker}"
            return Fill(_Unknown(message), len(message), NEGATIVE_TTL)
        body = await _encode(ticker, interval, bars)
    return Fill(body, len(body), min(float(INTERVAL_SECONDS[interval]), MAX_TTL))


@router.get(
    "/history/{ticker}",
    summary="OHLCV bars",
    response_model=dict[str, Any],
    responses=error_responses(
        *API_ERRORS,
        403,
        404,
        422,
        503,
        s503="`no_history` (relay-only server), `source_unavailable`, or `upstream_busy` "
        "(with `Retry-After`)",
    ),
)
async def get_history(
    ticker: str = Depends(ticker_param),
    interval: str = Query(
        HISTORY_DEFAULT_INTERVAL,
        description="Bar width: 1m | 5m | 15m | 1h | 1d",
        json_schema_extra={"enum": list(INTERVAL_SECONDS)},
    ),
    range_: str = Query(
        HISTORY_DEFAULT_RANGE,
        alias="range",
        description="How far back: 1d | 5d | 1mo | 6mo | 1y",
        json_schema_extra={"enum": list(RANGE_DAYS)},
    ),
    svc: Services = Depends(services),
    cache: AnswerCaches = Depends(answer_cache),
) -> Response:
    # A longer range than the interval has is served the longest it has (the document
    # cannot say which pairs go together, so every pair of its values is accepted).
    range_ = clamp_range(interval, range_)
    problem = check_history_params(interval, range_)
    if problem is not None:
        raise api_error(422, ErrorCode.BAD_REQUEST, problem)
    source = svc.source
    if source is None:
        raise api_error(
            503, ErrorCode.NO_HISTORY, "this server relays only (source none): no history"
        )
    key = ("history", source.name, ticker, interval, range_)
    try:
        answer = await cache.get_or_load(key, lambda: _load(source, ticker, interval, range_))
    except UpstreamBusy as exc:
        raise api_error(
            503, ErrorCode.UPSTREAM_BUSY, str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except SourceError as exc:
        raise api_error(503, ErrorCode.SOURCE_UNAVAILABLE, str(exc)) from None
    if isinstance(answer, _Unknown):
        raise api_error(404, ErrorCode.UNKNOWN_TICKER, answer.message)
    live = svc.hub.bars.live_bars(ticker, interval)
    if live:
        answer = with_live_bars(answer, live, range_)
    return Response(answer, media_type="application/json")


# The ranges of the source's bars a first bar book starts from (fanout/bar_feed.py), the
# next one asked only when the first holds fewer than the KEPT bars a book keeps (1m
# over 1d just after the day starts: a few bars, when the book can show 120).
BASE_RANGES = {"1m": ("1d", "5d"), "5m": ("5d",), "15m": ("5d",), "1h": ("1mo",), "1d": ("1y",)}


# A first book's history the upstream budget refused (UpstreamBusy): asked again after the
# budget's Retry-After, this many times in all, rather than starting a book without it.
BASE_ATTEMPTS = 4


def base_bars(svc: Services) -> Callable[[str, str], Awaitable[list[dict[str, Any]]]]:
    """What the hub's bar books start from: the same source call and cached answer as
    `GET /api/history` (so a flood of first books cannot hammer the source either). A
    client subscribing fifty tickers with bars at once starts fifty books: they wait for a
    history slot instead of being refused, and wait out a busy upstream budget."""

    async def load(ticker: str, interval: str) -> list[dict[str, Any]]:
        bars: list[dict[str, Any]] = []
        for range_ in BASE_RANGES[interval]:
            bars = await load_range(ticker, interval, range_)
            if len(bars) >= KEPT:
                break
        return bars

    async def load_range(ticker: str, interval: str, range_: str) -> list[dict[str, Any]]:
        source = svc.source
        if source is None:
            return []
        key = ("history", source.name, ticker, interval, range_)
        for attempt in range(1, BASE_ATTEMPTS + 1):
            try:
                answer = await svc.answers.get_or_load(
                    key, lambda: _load(source, ticker, interval, range_, queue=False)
                )
                break
            except UpstreamBusy as exc:
                if attempt == BASE_ATTEMPTS:
                    raise
                await asyncio.sleep(exc.retry_after)
        if isinstance(answer, _Unknown):
            return []
        bars: list[dict[str, Any]] = json.loads(answer)["bars"]
        return bars

    return load


def with_live_bars(body: bytes, live: list[tuple[int, str]], range_: str) -> bytes:
    """The source's answer with the process's own bars (the bar book, as the WebSocket
    sends them) in place of the source's from the book's first bar on, so REST and the
    wire never disagree. `live` is (time, REST bar text), oldest first; `body` is what
    `_encode` made (`{"ticker":..,"interval":..,"bars":[{"time":N,...},...]}`), read from
    its end: only the bars the book replaces are looked at."""
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
    if body[start : start + len(marker)] == marker:  # the range begins at the source's first bar
        number = start + len(marker)
        first = int(body[number : body.index(b",", number)])
    else:
        first = int(time.time()) - RANGE_DAYS[range_] * 86400
    texts = [text for when, text in live if when >= first]
    joined = ",".join(texts).encode()
    return body[:start] + kept + (b"," if kept and joined else b"") + joined + body[end:]
