"""Heavy REST requests are paid for: a history request takes tokens for its bars from its
IP's budget, at most a couple of history answers are computed at once (a short queue,
then 503), and an answer is encoded in chunks with the same bytes as in one go."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from stockfeed.api import history
from stockfeed.api.rest_limits import (
    ANSWER_BAR_WORK,
    RestRateLimiter,
    history_work,
    request_cost,
)
from stockfeed.app import create_app
from stockfeed.config import Settings
from stockfeed.fanout.bars import KEPT
from stockfeed.models import Bar
from stockfeed.services import Services
from stockfeed.sources.base import INTERVALS, RANGES, check_history_params
from stockfeed.sources.budget import UpstreamBusy
from stockfeed.sources.sim import SimSource
from stockfeed.sources.symbols import Directory

ATTACKER = ("127.0.0.2", 40000)  # not exempt by default
# Distinct tickers the simulator quotes (it lists real symbols only).
LISTED = Directory.bundled().symbols()


@asynccontextmanager
async def app_with(
    source: Any, client: tuple[str, int] = ("127.0.0.1", 40000), **settings: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Settings(source="none", tickers=["AAPL"], **settings))
    async with app.router.lifespan_context(app):
        svc: Services = app.state.services
        svc.source = source
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield app, http


def test_a_history_request_costs_one_token_and_one_per_token_of_work() -> None:
    assert request_cost("/api/quotes/AAPL", b"") == 1
    assert request_cost("/api/tickers", b"interval=1m&range=5d") == 1
    assert request_cost("/api/history/AAPL", b"") == 1  # 5m over 1d: 1,440 minutes, 288 bars
    assert request_cost("/api/history/AAPL", b"interval=1m&range=1d") == 1  # dashboard's
    assert request_cost("/api/history/AAPL", b"interval=1m&range=5d") == 5  # 7,200 + 7,200
    assert request_cost("/api/history/AAPL", b"range=1mo&interval=5m") == 7
    # Few bars, but a year of minutes read to make them: no longer one token.
    assert request_cost("/api/history/AAPL", b"interval=1d&range=1y") == 22
    assert request_cost("/api/history/AAPL", b"interval=1h&range=1y") == 26
    # A dashboard's chart and comparison over its longest preset fit in the default burst.
    assert 2 * request_cost("/api/history/AAPL", b"interval=1h&range=1y") < Settings().api_burst
    # The route reads the last of a repeated parameter; so does the price.
    assert request_cost("/api/history/AAPL", b"interval=1d&interval=1m&range=5d") == 5
    # Served as 1m over 5d (the longest 1m has): priced so.
    assert request_cost("/api/history/AAPL", b"interval=1m&range=1y") == 5
    # What the route refuses (422) is cheap.
    assert request_cost("/api/history/AAPL", b"interval=2m") == 1
    assert request_cost("/api/history/A/B", b"interval=1m&range=5d") == 1  # no such route


class CountingWork(SimSource):
    """The simulator trading around the clock, one minute before a UTC day ends (so every
    day of a range is whole), counting the one-minute source bars it aggregates."""

    def __init__(self) -> None:
        super().__init__(seed=3, market_hours=False, now=lambda: 1_795_564_799.5)
        self.minutes = 0

    def _minute_bars(self, ticker: str, path: Any, k_now: int) -> Any:
        found = super()._minute_bars(ticker, path, k_now)
        if found is not None:
            self.minutes += len(found[0])
        return found


async def test_the_price_follows_the_work_an_answer_takes() -> None:
    """For every interval and range: the work a real answer took (source minutes read and
    aggregated, plus its bars drawn and encoded) is what the price assumed, within 10 %;
    so the charge grows with the work, not with the bar count."""
    for interval in INTERVALS:
        for range_ in RANGES:
            if check_history_params(interval, range_) is not None:
                continue
            source = CountingWork()
            bars = await source.history("BTC-USD", interval, range_)
            done = source.minutes + ANSWER_BAR_WORK * len(bars)
            priced = history_work(interval, range_)
            assert 0.9 * priced <= done <= 1.1 * priced, (interval, range_, done, priced)


def test_a_costly_request_takes_all_its_tokens_or_none() -> None:
    limiter = RestRateLimiter(Settings(api_rate=0.001, api_burst=10, limit_exempt_ips=[]))
    assert limiter.allow("10.0.0.1", 8)
    assert not limiter.allow("10.0.0.1", 8)  # 2 left: refused, and the 2 are kept
    assert limiter.allow("10.0.0.1", 2)
    assert not limiter.allow("10.0.0.1", 1)
    assert limiter.refused == 2
    # A cost above the burst is charged as the burst: such a request can still pass.
    assert limiter.allow("10.0.0.2", 50)
    assert not limiter.allow("10.0.0.2", 1)
    assert limiter.retry_after_for(8) == 8000 and limiter.retry_after_for(50) == 10000
    assert RestRateLimiter(Settings()).retry_after_for(8) == 1  # 20/s


async def test_heavy_history_requests_meet_429_sooner() -> None:
    # 1 token a second: what comes back during the test is under one.
    settings = {"api_rate": 1.0, "api_burst": 63}
    async with app_with(SimSource(seed=1), client=ATTACKER, **settings) as (_app, http):
        url = "/api/history/MSFT?interval=1m&range=5d"
        # The price is known before the answer: a cached answer costs the same.
        statuses = [(await http.get(url)).status_code for _ in range(13)]
        # A burst of 63 tokens at 5 a request: 12 answers, then 429 (not after 63).
        assert statuses == [200] * 12 + [429]
        refused = await http.get(url)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
        assert refused.json()["error"]["code"] == "rate_limited"
        # A cheap request still fits in what is left.
        assert (await http.get("/api/history/MSFT")).status_code == 200


async def test_a_year_of_daily_bars_is_charged_for_the_year_it_reads() -> None:
    """`1d` over `1y` is 366 bars but a year of source minutes (~100 ms of CPU on the
    simulator): 22 tokens, so the default burst of 60 holds two of them, not sixty."""
    async with app_with(SimSource(seed=1), client=ATTACKER, api_rate=0.01) as (_app, http):
        statuses = [
            (await http.get(f"/api/history/{LISTED[i]}?interval=1d&range=1y")).status_code
            for i in range(3)
        ]
        assert statuses == [200, 200, 429]


async def test_chunked_encoding_is_the_one_shot_encoding() -> None:
    bars = await SimSource(seed=2).history("AAPL", "1m", "5d")
    for some in (bars, bars[:1], bars[: history.ENCODE_CHUNK], bars[: history.ENCODE_CHUNK + 1]):
        body = {"ticker": "AAPL", "interval": "1m", "bars": [b.as_dict() for b in some]}
        expected = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        assert await history._encode("AAPL", "1m", some) == expected.encode()
    assert await history._encode("X", "1d", []) == b'{"ticker":"X","interval":"1d","bars":[]}'


class GatedSource(SimSource):
    """History that waits for the test's word, counting how many wait at once."""

    def __init__(self) -> None:
        super().__init__(seed=1)
        self.release = asyncio.Event()
        self.running = 0
        self.most = 0

    async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
            return await super().history(ticker, interval, range_)
        finally:
            self.running -= 1


async def fill_history_slots(http: httpx.AsyncClient) -> list[asyncio.Task[httpx.Response]]:
    """Distinct history requests until every slot computes one and the queue is full (the
    source gated: nothing finishes until the test releases it)."""
    requests = [
        asyncio.create_task(http.get(f"/api/history/{LISTED[i]}?interval=1h&range=5d"))
        for i in range(history.SLOTS + history.QUEUE)
    ]
    for _ in range(200):
        await asyncio.sleep(0.005)
        if history._slots().waiting == history.QUEUE:
            break
    return requests


async def test_at_most_a_couple_of_history_answers_are_computed_at_once() -> None:
    source = GatedSource()
    async with app_with(source) as (_app, http):
        requests = await fill_history_slots(http)
        assert source.running == history.SLOTS
        # The queue is full: one more distinct answer is refused at once, not queued...
        busy = await http.get(f"/api/history/{LISTED[99]}?interval=1h&range=5d")
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == str(history.BUSY_RETRY_AFTER)
        assert busy.json()["error"]["code"] == "upstream_busy"
        # ...while one being computed is joined (single flight), taking no slot.
        joined = asyncio.create_task(http.get(f"/api/history/{LISTED[0]}?interval=1h&range=5d"))
        source.release.set()
        answers = await asyncio.gather(*requests, joined)
        assert [r.status_code for r in answers] == [200] * (len(requests) + 1)
        assert source.most == history.SLOTS
        assert answers[-1].content == answers[0].content
        # The failure was not kept: asking again computes it.
        assert (
            await http.get(f"/api/history/{LISTED[99]}?interval=1h&range=5d")
        ).status_code == 200


async def test_first_bar_books_wait_for_a_slot_instead_of_being_refused() -> None:
    """Fifty tickers subscribed with bars at once start fifty books: with the history slots
    and their queue full, their history waits its turn (a refused one would leave the book
    without history for as long as the ticker is held)."""
    source = GatedSource()
    async with app_with(source) as (app, http):
        requests = await fill_history_slots(http)
        load = history.base_bars(app.state.services)
        books = [asyncio.create_task(load(LISTED[50 + i], "5m")) for i in range(10)]
        await asyncio.sleep(0.05)
        assert not any(b.done() for b in books)  # waiting, not refused
        source.release.set()
        await asyncio.gather(*requests)
        bars = await asyncio.gather(*books)
        assert all(len(b) > 0 for b in bars)
        assert source.most == history.SLOTS


async def test_a_first_book_waits_out_a_busy_upstream_budget(monkeypatch: Any) -> None:
    calls = 0

    class Busy(SimSource):
        async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise UpstreamBusy("busy", 1)
            return await super().history(ticker, interval, range_)

    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def quick_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    async with app_with(Busy(seed=1)) as (app, _http):
        monkeypatch.setattr(asyncio, "sleep", quick_sleep)
        bars = await history.base_bars(app.state.services)("AAPL", "5m")
    assert calls == 3 and len(bars) > 0
    assert slept.count(1) >= 2  # the budget's Retry-After, twice


async def test_a_first_book_reaches_back_past_a_day_that_just_began() -> None:
    """1m over 1d just after the day starts holds a few bars: the book asks for 5d then,
    to show the KEPT bars it can (the day's few alone would leave a 1m chart nearly empty)."""
    asked: list[str] = []

    class JustAfterMidnight(SimSource):
        async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
            asked.append(f"{interval} {range_}")
            bars = await super().history(ticker, interval, range_)
            return bars[-5:] if range_ == "1d" else bars

    async with app_with(JustAfterMidnight(seed=1)) as (app, _http):
        load = history.base_bars(app.state.services)
        assert len(await load("AAPL", "1m")) >= KEPT
        assert asked == ["1m 1d", "1m 5d"]
        assert len(await load("AAPL", "5m")) >= KEPT  # 5d of 5m: one call is enough
        assert asked[2:] == ["5m 5d"]
