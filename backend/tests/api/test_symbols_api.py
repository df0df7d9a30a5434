"""`GET /api/symbols` and the simulator's refusal of what it does not list, in-process.

The real app over ASGI (its lifespan runs: services, updater, hub), on the simulator, or
on a Yahoo source whose search fetcher is a fake (nothing reaches the network).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from stockfeed.app import create_app
from stockfeed.config import Settings
from stockfeed.services import Services
from stockfeed.sources.budget import UpstreamBudget
from stockfeed.sources.symbols import SymbolInfo
from stockfeed.sources.yahoo import YahooSource
from tests.servers import StartServer
from tests.wsutil import recv_json, recv_until

SIM = {"source": "sim", "sim_seed": 7, "sim_market_hours": False, "tickers": ["AAPL"]}


@asynccontextmanager
async def app_with(**settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Settings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def test_good_queries_answer_best_match_first() -> None:
    async with app_with(**SIM) as (_app, client):
        r = await client.get("/api/symbols", params={"q": "app"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert body["symbols"][0] == {
            "symbol": "AAPL",
            "name": "Apple Inc.",
            "exchange": "NASDAQ",
            "type": "equity",
            "currency": "USD",
            "price_decimals": 2,
        }
        fx = (await client.get("/api/symbols", params={"q": "eurusd"})).json()["symbols"][0]
        assert (fx["symbol"], fx["type"], fx["price_decimals"]) == ("EURUSD=X", "fx", 5)
        top = await client.get("/api/symbols", params={"q": "s&p", "limit": 3})
        assert len(top.json()["symbols"]) == 3
        assert top.json()["symbols"][0]["symbol"] == "^GSPC"
        # Names in any case, and the unmatched: an empty list, not an error.
        assert (await client.get("/api/symbols?q=BITCOIN")).json()["symbols"][0]["symbol"] == (
            "BTC-USD"
        )
        assert (await client.get("/api/symbols?q=zzzzqqq")).json() == {"symbols": []}
        assert (await client.get("/api/symbols?q=%20%20")).json() == {"symbols": []}
        # The document says what the answer is.
        doc = (await client.get("/openapi.json")).json()
        assert "/api/symbols" in doc["paths"]


@pytest.mark.parametrize(
    "query",
    [
        None,  # missing
        "",  # empty
        "a" * 65,  # oversized
        "<script>alert(1)</script>",
        "'; DROP TABLE symbols; --",
        "AAPL\x00",
        "a\nb",
        '{"$ne": 1}',
        "../../etc/passwd\\",
        "%",
    ],
)
async def test_bad_queries_are_422_and_reach_nothing(query: str | None) -> None:
    async with app_with(**SIM) as (app, client):
        svc: Services = app.state.services
        params = {} if query is None else {"q": query}
        r = await client.get("/api/symbols", params=params)
        assert error(r) == (422, "bad_request"), r.text
        assert r.json()["error"]["message"]
        assert svc.answers.misses == 0  # refused before any search
        bad_limit = await client.get("/api/symbols", params={"q": "a", "limit": 51})
        assert error(bad_limit) == (422, "bad_request")


async def test_answers_are_cached_and_rate_limited_like_the_rest_of_the_api() -> None:
    settings = {**SIM, "limit_exempt_ips": [], "api_burst": 4, "api_rate": 0.01}
    async with app_with(**settings) as (app, client):
        svc: Services = app.state.services
        assert svc.source is not None
        calls: list[str] = []
        search = svc.source.search_symbols

        async def counted(query: str, limit: int) -> list[SymbolInfo]:
            calls.append(query)
            return await search(query, limit)

        svc.source.search_symbols = counted  # type: ignore[method-assign]
        first = await client.get("/api/symbols", params={"q": "Apple"})
        again = await client.get("/api/symbols", params={"q": "  apple "})
        assert first.content == again.content and calls == ["Apple"]
        await client.get("/api/symbols", params={"q": "msft"})
        await client.get("/api/symbols", params={"q": "tsla"})
        refused = await client.get("/api/symbols", params={"q": "nvda"})
        assert error(refused) == (429, "rate_limited") and "retry-after" in refused.headers


async def test_on_yahoo_it_is_yahoos_search_within_the_upstream_budget() -> None:
    quotes = [
        {
            "symbol": "AAPL",
            "quoteType": "EQUITY",
            "exchange": "NMS",
            "exchDisp": "NASDAQ",
            "longname": "Apple Inc.",
        }
    ]
    calls: list[str] = []

    def fetch(query: str, limit: int) -> list[dict[str, Any]]:
        calls.append(query)
        if query == "down":
            raise RuntimeError("Yahoo is down")
        return quotes

    async with app_with(source="none", tickers=["AAPL"]) as (app, client):
        svc: Services = app.state.services
        assert error(await client.get("/api/symbols?q=apple")) == (503, "source_unavailable")
        budget = UpstreamBudget(calls_per_minute=6, burst=2)
        budget.configure(6, 2)
        source = YahooSource(search_fetcher=fetch, client_budget=budget)
        svc.source, svc.upstream = source, budget
        try:
            r = await client.get("/api/symbols?q=apple")
            assert r.json()["symbols"][0]["symbol"] == "AAPL"
            assert (await client.get("/api/symbols?q=APPLE")).content == r.content  # cached
            assert error(await client.get("/api/symbols?q=down")) == (503, "source_unavailable")
            busy = await client.get("/api/symbols?q=msft")
            assert error(busy) == (503, "upstream_busy") and busy.headers["retry-after"] == "10"
            assert calls == ["apple", "down"]  # the failure was not cached, nor answered twice
        finally:
            await source.close()


async def test_the_simulator_refuses_what_it_does_not_list_over_rest() -> None:
    async with app_with(**SIM) as (_app, client):
        for path in (
            "/api/quotes/ZZZZQ",
            "/api/history/ZZZZQ",
            "/api/quotes/AAPL.",
            "/api/quotes/=",
        ):
            assert error(await client.get(path)) == (404, "unknown_ticker"), path
        quote = (await client.get("/api/quotes/EURUSD=X")).json()
        assert quote["data"]["price_decimals"] == 5
        assert 0.8 < quote["data"]["price"] < 1.4


@pytest.mark.parametrize("into_the_day", [120, 12 * 3600])
async def test_history_of_an_unknown_ticker_is_a_404_at_any_hour(
    monkeypatch: pytest.MonkeyPatch, into_the_day: int
) -> None:
    # The harness's simulator trades UTC days. Two minutes into one, a 5m, 15m or 1h
    # range holds no bar yet: nothing kept and nothing to ask the source for, which once
    # answered 200 with no bars for a ticker nobody lists (CI ran just after 00:00 UTC).
    real = time.time
    offset = real() % 86400 - into_the_day
    monkeypatch.setattr(time, "time", lambda: real() - offset)
    async with app_with(**SIM) as (_app, client):
        for interval in ("1m", "5m", "15m", "1h", "1d"):
            path = f"/api/history/ZZZZQ?interval={interval}&range=1d"
            assert error(await client.get(path)) == (404, "unknown_ticker"), path
            known = await client.get(f"/api/history/AAPL?interval={interval}&range=1d")
            assert known.status_code == 200, (interval, known.text)


@pytest.mark.process
async def test_the_simulator_refuses_what_it_does_not_list_over_websockets(
    start_server: StartServer,
) -> None:
    # A real server: every message read is checked against the AsyncAPI document too.
    server = start_server("--source", "sim", "--sim-tick-interval", "0.2", "--tickers", "AAPL")
    async with connect(server.ws + "/ws") as ws:
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL", "ZZZZQ", "---"]}))
        seen: dict[str, Any] = {}
        while "subscribed" not in seen or "market_status" not in seen:
            msg = await recv_json(ws)
            if msg["type"] == "error":
                seen.setdefault("errors", {})[msg["ticker"]] = msg["code"]
            else:
                seen.setdefault(msg["type"], msg)
        assert seen["errors"] == {"ZZZZQ": "unknown_ticker", "---": "unknown_ticker"}
        assert seen["subscribed"]["tickers"] == ["AAPL"]
        # market_status names its ticker (the harness runs the simulator around the clock).
        assert seen["market_status"]["ticker"] == "AAPL"
        assert seen["market_status"]["market"] == "SIM"
        update = await recv_until(ws, "price_update")
        assert update["data"]["price_decimals"] == 2
    async with connect(server.ws + "/ws") as again:
        await again.send(json.dumps({"action": "subscribe", "tickers": ["AAPL"]}))
        snapshot = await recv_until(again, "snapshot")
        assert snapshot["data"]["price_decimals"] == 2  # snapshots carry it
    async with connect(server.ws + "/ws/stocks/NOTREAL") as single:
        refused = await recv_json(single)
        assert (refused["type"], refused["code"]) == ("error", "unknown_ticker")
