"""In-process, where no socket is the point: answer caches separated by kind (symbol
searches cannot push history out), `/api/tickers` limited to a token's claim, and the
one-second render cache of the status endpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from stockfeed.api.answer_cache import KIND_SHARES, AnswerCaches
from stockfeed.api.render_cache import RenderCache
from stockfeed.app import create_app
from stockfeed.config import Settings
from stockfeed.services import Services
from stockfeed.sources.sim import SimSource
from stockfeed.sources.symbols import Directory

SECRET = "rest-exposure-secret-" + "x" * 32
LISTED = Directory.bundled().symbols()


@asynccontextmanager
async def app_with(**settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Settings(source="none", tickers=["AAPL", "MSFT", "TSLA"], **settings))
    async with app.router.lifespan_context(app):
        svc: Services = app.state.services
        svc.source = SimSource(seed=1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield app, http


def test_each_kind_has_its_own_share_of_the_budget() -> None:
    caches = AnswerCaches(8 * 1024 * 1024)
    assert {k: c.max_bytes for k, c in caches.kinds.items()} == {
        "history": 6 * 1024 * 1024,
        "symbols": 1024 * 1024,
        "can_quote": 1024 * 1024,
    }
    assert set(KIND_SHARES) == set(caches.kinds)
    for i in range(40):
        assert caches.put(("history", "sim", f"T{i}", "1m", "5d"), b"h", 100_000, 60)
    history_bytes = caches.kinds["history"].bytes
    # A flood of distinct searches, many times the whole budget's worth...
    for i in range(5000):
        caches.put(("symbols", "sim", f"q{i}", 10), b"s", 5000, 3600)
    # ...evicts searches only: every history answer is still there.
    assert all(caches.get(("history", "sim", f"T{i}", "1m", "5d"))[0] for i in range(40))
    assert caches.kinds["history"].bytes == history_bytes
    assert caches.kinds["symbols"].bytes <= caches.kinds["symbols"].max_bytes
    assert caches.kinds["symbols"].evictions > 0 and caches.kinds["history"].evictions == 0
    assert caches.bytes == sum(c.bytes for c in caches.kinds.values())
    stats = caches.stats()
    assert stats["evictions"] == caches.kinds["symbols"].evictions
    assert set(stats["kinds"]) == set(KIND_SHARES)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no answer cache for kind"):
        caches.get(("other", "x"))


async def test_symbol_searches_cannot_push_history_out_through_the_routes() -> None:
    async with app_with(rest_cache_bytes=2 * 1024 * 1024) as (app, http):
        svc: Services = app.state.services
        for ticker in LISTED[:3]:
            assert (
                await http.get(f"/api/history/{ticker}?interval=5m&range=5d")
            ).status_code == 200
        kept = len(svc.answers.kinds["history"])
        assert kept == 3
        # Distinct searches until the searches' share has evicted some of its own.
        queries = (f"{a}{b}" for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnop")
        while svc.answers.kinds["symbols"].evictions == 0:
            assert (
                await http.get("/api/symbols", params={"q": next(queries), "limit": 50})
            ).status_code == 200
        misses = svc.answers.kinds["history"].misses
        for ticker in LISTED[:3]:
            assert (
                await http.get(f"/api/history/{ticker}?interval=5m&range=5d")
            ).status_code == 200
        assert svc.answers.kinds["history"].misses == misses, "history was served from the cache"
        health = (await http.get("/api/ws/health")).json()
        assert health["rest_cache"]["kinds"]["history"]["entries"] == 3
        assert health["rest_cache"]["kinds"]["symbols"]["evictions"] > 0


def bearer(**claims: Any) -> dict[str, str]:
    now = int(time.time())
    token = jwt.encode({"sub": "u", "exp": now + 600, **claims}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


async def test_tickers_lists_only_what_the_token_may_see() -> None:
    async with app_with(auth_secret=SECRET) as (app, http):
        hub = app.state.services.hub
        hub.latest.update({"AAPL": {}, "BTC-USD": {}, "ETH-USD": {}, "NVDA": {}})
        everything = (await http.get("/api/tickers", headers=bearer())).json()
        assert everything == {
            "watchlist": ["AAPL", "MSFT", "TSLA"],
            "active": ["AAPL", "BTC-USD", "ETH-USD", "NVDA"],
        }
        limited = await http.get("/api/tickers", headers=bearer(tickers=["MSFT", "BTC-*"]))
        assert limited.json() == {"watchlist": ["MSFT"], "active": ["BTC-USD"]}
        assert (await http.get("/api/tickers")).status_code == 401


async def test_render_cache_keeps_a_body_a_second_and_renders_once_at_a_time() -> None:
    now = [100.0]
    cache = RenderCache(ttl=1.0, clock=lambda: now[0])
    calls = 0
    gate = asyncio.Event()

    async def render() -> bytes:
        nonlocal calls
        calls += 1
        await gate.wait()
        return f"body {calls}".encode()

    waiting = [asyncio.create_task(cache.get("k", render)) for _ in range(50)]
    await asyncio.sleep(0.01)
    gate.set()
    assert set(await asyncio.gather(*waiting)) == {b"body 1"} and calls == 1
    now[0] += 0.9
    assert await cache.get("k", render) == b"body 1"
    assert await cache.get("other", render) == b"body 2"  # keys are apart
    now[0] += 0.2
    assert await cache.get("k", render) == b"body 3"  # a second after its render
    assert (cache.renders, cache.hits) == (3, 50)


async def test_a_failed_render_is_not_kept_and_a_caller_leaving_cancels_nothing() -> None:
    cache = RenderCache()
    attempts = 0

    async def failing() -> bytes:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        await cache.get("k", failing)
    with pytest.raises(RuntimeError):
        await cache.get("k", failing)
    assert attempts == 2

    async def slow() -> bytes:
        await asyncio.sleep(0.05)
        return b"done"

    impatient = asyncio.create_task(cache.get("s", slow))
    patient = asyncio.create_task(cache.get("s", slow))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert await patient == b"done"


async def test_fresh_renders_for_exempt_callers_and_shared_ones_for_others() -> None:
    async with app_with(limit_exempt_ips=["127.0.0.1"]) as (app, _http):
        svc: Services = app.state.services
        for ip, shared in (("127.0.0.1", False), ("192.0.2.9", True)):
            transport = httpx.ASGITransport(app=app, client=(ip, 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                before = svc.renders.renders + svc.renders.hits
                for _ in range(3):
                    assert (await http.get("/api/ws/health")).status_code == 200
                assert (svc.renders.renders + svc.renders.hits - before == 3) is shared
        assert svc.renders.renders == 1 and svc.renders.hits == 2
