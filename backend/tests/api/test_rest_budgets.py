"""REST that cannot be used as an amplifier: the per-IP request rate (429), the byte-bounded
answer cache with single flight and negative answers, the budget of upstream calls made for
clients, and a flood of distinct history requests against a real server (RSS printed)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI

from stockfeed.api.answer_cache import ENTRY_OVERHEAD, AnswerCache, Fill
from stockfeed.app import create_app
from stockfeed.config import Settings
from stockfeed.models import Bar, Tick
from stockfeed.services import Services
from stockfeed.sources.base import SourceError, UnknownTicker
from stockfeed.sources.budget import UpstreamBudget, UpstreamBusy
from stockfeed.sources.sim import SimSource
from stockfeed.sources.symbols import Directory
from stockfeed.sources.yahoo import YahooSource
from tests.servers import StartServer

pytestmark = pytest.mark.process

FLOOD_REQUESTS = 300
FLOOD_CONCURRENCY = 8
FLOOD_RSS_LIMIT_MIB = 100
# Distinct tickers the simulator quotes (it lists real symbols only).
LISTED = Directory.bundled().symbols()


# --- helpers ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# A moment one minute before 00:00 UTC: 5 days of 1-minute bars of a simulator trading
# around the clock (its days are UTC dates) are then 7,200 bars.
LAST_MINUTE_OF_A_DAY = 1_795_564_799.5  # 2026-11-24 23:59:59.5 UTC


class CountingSource(SimSource):
    """The simulator's bars, but slow (so requests overlap) and counted; `unknown` tickers
    are refused the way a real source refuses them."""

    def __init__(self, unknown: frozenset[str] = frozenset(), fail: bool = False) -> None:
        super().__init__(seed=7, market_hours=False, now=lambda: LAST_MINUTE_OF_A_DAY)
        self.calls: list[tuple[str, str, str]] = []
        self.lookups: list[str] = []
        self.unknown = unknown
        self.fail = fail

    async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        self.calls.append((ticker, interval, range_))
        await asyncio.sleep(0.2)
        if ticker in self.unknown:
            raise UnknownTicker(f"no such symbol {ticker}")
        if self.fail:
            raise SourceError("the provider is down")
        return await super().history(ticker, interval, range_)

    async def can_quote(self, ticker: str) -> bool | None:
        self.lookups.append(ticker)
        await asyncio.sleep(0.05)
        return ticker not in self.unknown


def ea_like_frame(_ticker: str, _interval: str, _range: str) -> pd.DataFrame:
    index = pd.date_range("2026-05-26 13:30", periods=3, freq="15min", tz="UTC")
    return pd.DataFrame(
        {"Open": 1.0, "High": 2.0, "Low": 0.5, "Close": 1.5, "Volume": 100.0}, index=index
    )


def quotes_of(tickers: list[str]) -> dict[str, Tick]:
    return {t: Tick(ticker=t, price=10.0, market_time=1) for t in tickers}


@asynccontextmanager
async def app_with(source: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app in-process (relay-only services, then `source` put in), over ASGI."""
    app = create_app(Settings(source="none", tickers=["AAPL"]))
    async with app.router.lifespan_context(app):
        svc: Services = app.state.services
        svc.source = svc.history.source = source
        budget = getattr(source, "client_budget", None)
        if isinstance(budget, UpstreamBudget):
            svc.upstream = budget
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


def vm_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# --- the answer cache --------------------------------------------------------------------------


def test_cache_evicts_least_recently_used_past_its_byte_budget() -> None:
    entry = 1000
    cache = AnswerCache(8 * 4 * (entry + ENTRY_OVERHEAD))  # room for exactly 32 entries
    for i in range(32):
        assert cache.put(i, b"x", entry, 60)
    assert len(cache) == 32 and cache.bytes == 32 * (entry + ENTRY_OVERHEAD)
    assert cache.get(0) == (True, b"x")  # 0 is now the most recently used
    cache.put(32, b"x", entry, 60)
    assert cache.get(1) == (False, None), "the least recently used went"
    assert cache.get(0)[0] and cache.get(32)[0]
    assert cache.bytes <= cache.max_bytes and cache.evictions == 1
    # An answer bigger than an eighth of the budget is not kept: it would flush the rest.
    assert not cache.put("big", b"x", cache.max_bytes // 4, 60)
    assert len(cache) == 32 and cache.too_big == 1


def test_cache_entries_expire_and_give_their_bytes_back() -> None:
    clock = Clock()
    cache = AnswerCache(1 << 20, clock=clock)
    cache.put("a", 1, 100, ttl=10)
    cache.put("b", 2, 100, ttl=0)  # no TTL: not kept
    assert cache.get("a") == (True, 1) and cache.get("b") == (False, None)
    clock.now += 10
    assert cache.get("a") == (False, None)
    assert cache.bytes == 0 and len(cache) == 0


async def test_cache_single_flight_shares_one_call_and_failures_are_not_kept() -> None:
    cache = AnswerCache(1 << 20)
    calls = 0
    gate = asyncio.Event()

    async def failing() -> Fill[int]:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise SourceError("down")

    waiters = [asyncio.create_task(cache.get_or_load("k", failing)) for _ in range(10)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert calls == 1 and cache.misses == 1 and cache.joins == 9
    assert all(isinstance(r, SourceError) for r in results)
    assert len({id(r) for r in results}) == 1, "every waiter gets the same error"
    assert len(cache) == 0

    async def working() -> Fill[int]:
        nonlocal calls
        calls += 1
        return Fill(42, 8, 60)

    assert await cache.get_or_load("k", working) == 42  # the failure was not cached
    assert await cache.get_or_load("k", working) == 42
    assert calls == 2 and cache.hits == 1


async def test_cache_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    cache = AnswerCache(1 << 20)

    async def slow() -> Fill[str]:
        await asyncio.sleep(0.1)
        return Fill("done", 4, 60)

    impatient = asyncio.create_task(cache.get_or_load("k", slow))
    patient = asyncio.create_task(cache.get_or_load("k", slow))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert await patient == "done"
    assert cache.get("k") == (True, "done")


# --- single flight and negative answers through the route -----------------------------------


async def test_concurrent_identical_history_requests_make_one_source_call() -> None:
    source = CountingSource()
    async with app_with(source) as (app, client):
        url = "/api/history/AAPL?interval=1m&range=5d"
        answers = await asyncio.gather(*(client.get(url) for _ in range(20)))
        assert [r.status_code for r in answers] == [200] * 20
        assert source.calls == [("AAPL", "1m", "5d")]
        assert len({r.content for r in answers}) == 1
        assert answers[0].json()["ticker"] == "AAPL" and len(answers[0].json()["bars"]) == 7200
        # Later: a hit, same bytes, still no source call.
        again = await client.get(url)
        assert again.content == answers[0].content and len(source.calls) == 1

        cache = app.state.services.answers
        assert cache.misses == 1 and cache.joins == 19 and cache.hits == 1
        assert cache.bytes >= len(answers[0].content)
        health = (await client.get("/api/ws/health")).json()
        assert health["rest_cache"]["bytes"] == cache.bytes
        assert health["rest_cache"]["single_flight_joins"] == 19
        metrics = (await client.get("/metrics")).text
        assert "stockfeed_rest_cache_single_flight_joins_total 19.0" in metrics
        assert "stockfeed_rest_cache_hits_total 1.0" in metrics


async def test_unknown_tickers_are_remembered_and_failures_are_not() -> None:
    source = CountingSource(unknown=frozenset({"NOPE"}))
    async with app_with(source) as (_app, client):
        for _ in range(3):
            r = await client.get("/api/history/NOPE")
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "unknown_ticker"
        assert len(source.calls) == 1, "the negative answer is cached"
        for _ in range(3):
            r = await client.get("/api/quotes/NOPE")
            assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_ticker"
        assert source.lookups == ["NOPE"]

        source.fail = True
        for _ in range(2):
            r = await client.get("/api/history/DOWN")
            assert r.status_code == 503 and r.json()["error"]["code"] == "source_unavailable"
        assert len(source.calls) == 3, "a failure is asked again, not cached"


# --- the budget of upstream calls -------------------------------------------------------------


async def test_upstream_budget_refuses_history_and_lookups_once_spent() -> None:
    budget = UpstreamBudget(calls_per_minute=6, burst=2)  # one call every 10 s after 2
    source = YahooSource(
        history_fetcher=ea_like_frame, quote_fetcher=quotes_of, client_budget=budget
    )
    try:
        async with app_with(source) as (_app, client):
            for ticker in ("AAA", "BBB"):
                r = await client.get(f"/api/history/{ticker}?interval=15m&range=1d")
                assert r.status_code == 200, r.text
            r = await client.get("/api/history/CCC?interval=15m&range=1d")
            assert r.status_code == 503
            assert r.headers["retry-after"] == "10"
            assert r.json()["error"]["code"] == "upstream_busy"
            # A cached answer costs nothing upstream.
            assert (await client.get("/api/history/AAA?interval=15m&range=1d")).status_code == 200
            # A lookup of a ticker nobody watches is a call too.
            r = await client.get("/api/quotes/DDD")
            assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_busy"
            assert r.headers["retry-after"] == "10"
            assert budget.calls == 2 and budget.refused == 2
            metrics = (await client.get("/metrics")).text
            assert "stockfeed_upstream_refusals_total 2.0" in metrics
            assert "stockfeed_upstream_client_calls_total 2.0" in metrics
    finally:
        await source.close()


async def test_upstream_budget_never_queues_behind_a_hung_call() -> None:
    release = threading.Event()

    def hung(ticker: str, interval: str, range_: str) -> pd.DataFrame:
        release.wait(10)
        return ea_like_frame(ticker, interval, range_)

    budget = UpstreamBudget(calls_per_minute=600, burst=10, max_in_flight=1)
    source = YahooSource(history_fetcher=hung, client_budget=budget)
    try:
        first = asyncio.create_task(source.history("AAA", "15m", "1d"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(UpstreamBusy):
            await source.history("BBB", "15m", "1d")
        assert time.monotonic() - started < 1.0, "refused at once, not queued"
        release.set()
        assert len(await first) == 3
        await asyncio.sleep(0.05)
        assert budget.in_flight == 0
        assert len(await source.history("BBB", "15m", "1d")) == 3
    finally:
        release.set()
        await source.close()


async def test_upstream_budget_also_refuses_while_yahoo_has_us_rate_limited() -> None:
    source = YahooSource(history_fetcher=ea_like_frame)
    loop = asyncio.get_running_loop()
    source._rate_limited_until = loop.time() + 30  # what a 429 to the poller leaves behind
    try:
        with pytest.raises(UpstreamBusy) as refused:
            await source.history("AAA", "15m", "1d")
        assert 29 <= refused.value.retry_after <= 30
    finally:
        await source.close()


async def test_the_updaters_polling_is_outside_the_client_budget() -> None:
    polled: list[list[str]] = []

    def fetch(tickers: list[str]) -> dict[str, Tick]:
        polled.append(tickers)
        return quotes_of(tickers)

    budget = UpstreamBudget(calls_per_minute=1, burst=1)
    source = YahooSource(quote_fetcher=fetch, streaming=False, client_budget=budget)
    emitted: list[Tick] = []
    both = asyncio.Event()

    async def emit(tick: Tick) -> None:
        emitted.append(tick)
        if {t.ticker for t in emitted} == {"AAPL", "MSFT"}:
            both.set()

    try:
        assert await source.can_quote("AAA") is True  # spends the budget
        with pytest.raises(UpstreamBusy):
            await source.can_quote("BBB")
        task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL", "MSFT"}), emit))
        await asyncio.wait_for(both.wait(), 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert {t.ticker for t in emitted} == {"AAPL", "MSFT"}
        assert budget.calls == 1, "polls drew nothing from the client budget"
    finally:
        await source.close()


# --- against a real server ---------------------------------------------------------------------


def test_rest_rate_limit_per_ip_answers_429_with_retry_after(start_server: StartServer) -> None:
    server = start_server(
        "--source",
        "sim",
        env={
            "STOCKFEED_LIMIT_EXEMPT_IPS": "",  # loopback counts too
            "STOCKFEED_API_BURST": "5",
            "STOCKFEED_API_RATE": "0.5",
            # Health's own budget, roomy: waiting for the server to start polls it too.
            "STOCKFEED_STATUS_BURST": "100",
        },
    )
    with httpx.Client(base_url=server.base, timeout=10) as client:
        statuses = [client.get("/api/tickers").status_code for _ in range(5)]
        assert statuses == [200] * 5
        refused = client.get("/api/history/AAPL")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"
        assert refused.headers["content-type"] == "application/json"
        error = refused.json()["error"]
        assert error["code"] == "rate_limited" and error["message"]
        assert client.get("/api/quotes/AAPL").status_code == 429
        # Load balancers and Prometheus have a budget of their own (status_burst).
        for _ in range(19):
            assert client.get("/api/ws/health").status_code == 200
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "stockfeed_rest_rate_limited_total 2.0" in metrics.text
        assert "stockfeed_status_rate_limited_total 0.0" in metrics.text
        time.sleep(2.1)  # one token back
        assert client.get("/api/tickers").status_code == 200


@pytest.mark.timeout(400)
def test_rest_flood_of_distinct_history_requests_stays_bounded(start_server: StartServer) -> None:
    """300 requests for 5 days of 1-minute bars (up to 7,200 bars, ~640 KB), each for another
    ticker, 8 at a time: the server's RSS grows by the cache's budget (32 MiB) and change,
    not by every answer (before: +515 MiB)."""
    server = start_server("--source", "sim")
    pid = server.proc.pid

    async def flood() -> tuple[dict[int, int], float, dict[str, Any]]:
        statuses: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=server.base, timeout=120) as client:
            warm = await client.get(f"/api/history/{LISTED[-1]}?interval=1m&range=5d")
            assert warm.status_code == 200
            await asyncio.sleep(0.5)
            before = vm_rss_mib(pid)
            slots = asyncio.Semaphore(FLOOD_CONCURRENCY)

            async def one(i: int) -> None:
                async with slots:
                    r = await client.get(f"/api/history/{LISTED[i]}?interval=1m&range=5d")
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

            await asyncio.gather(*(one(i) for i in range(FLOOD_REQUESTS)))
            await asyncio.sleep(0.5)
            health = (await client.get("/api/ws/health")).json()
        return statuses, before, health

    statuses, before, health = asyncio.run(flood())
    after = vm_rss_mib(pid)
    cache = health["rest_cache"]
    print(
        f"\nREST flood: {FLOOD_REQUESTS} x /api/history/T?interval=1m&range=5d, "
        f"{FLOOD_CONCURRENCY} at a time: server RSS {before:.0f} -> {after:.0f} MiB "
        f"(+{after - before:.0f} MiB); cache {cache['bytes'] / 2**20:.1f} MiB in "
        f"{cache['entries']} entries, {cache['evictions']} evicted; statuses {statuses}"
    )
    assert statuses == {200: FLOOD_REQUESTS}
    assert cache["bytes"] <= cache["max_bytes"]
    assert after - before < FLOOD_RSS_LIMIT_MIB
