"""Yahoo failing in every way it does: errors, rate limits, hung requests, empty and
malformed answers. The source backs off, marks itself stale (in the health endpoint and in
`market_status`), never crashes and never invents a price.

Yahoo is faked only at the network boundary: the blocking quote fetcher (`fetch_quotes`,
the one function that makes Yahoo's HTTP calls) answers with recorded data or fails. The
end-to-end tests run the real app (uvicorn, the fast path, the hub) in this process, so
that the fake fetcher can be put in place of the real one.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import connect
from yfinance.exceptions import YFRateLimitError

from stockfeed.app import create_asgi
from stockfeed.config import Settings
from stockfeed.models import Tick
from stockfeed.server.asgi import UVICORN_OPTIONS
from stockfeed.sources import yahoo
from stockfeed.sources.yahoo import YahooSource, tick_from_message
from tests.servers import free_port
from tests.wsutil import recv_json

pytestmark = pytest.mark.process

FIXTURES = Path(__file__).parents[1] / "fixtures" / "yahoo"
FRAMES = {f["name"]: f for f in json.loads((FIXTURES / "streamer-frames.json").read_text())}
BTC = FRAMES["btc_1"]["decoded_by_yfinance_1_7_0"]  # a real BTC-USD quote from Yahoo


def recorded_btc() -> Tick:
    tick = tick_from_message(BTC)
    assert tick is not None
    return tick


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling the source's own state
            await asyncio.sleep(0.02)


class Emitted:
    def __init__(self) -> None:
        self.ticks: list[Tick] = []

    async def __call__(self, tick: Tick) -> None:
        self.ticks.append(tick)


async def stop(task: asyncio.Task[None]) -> None:
    assert not task.done(), task.exception() if task.done() else None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- the source alone ----------------------------------------------------------------------


async def test_a_hung_request_marks_the_source_stale_and_polling_goes_on() -> None:
    release = threading.Event()
    calls: list[int] = []

    def fetcher(tickers: list[str]) -> dict[str, Tick]:
        calls.append(len(calls))
        if len(calls) == 1:
            release.wait(10)  # Yahoo accepted the connection and never answered
            return {}
        return {"BTC-USD": recorded_btc()}

    source = YahooSource(
        streaming=False, poll_interval=0.05, poll_timeout=0.2, quote_fetcher=fetcher
    )
    emitted = Emitted()
    task = asyncio.create_task(source.stream(lambda: frozenset({"BTC-USD"}), emitted))
    try:
        await until(lambda: source.health.stale)
        assert "TimeoutError" in (source.health.last_error or "")
        assert emitted.ticks == []
        await until(lambda: len(emitted.ticks) == 1)  # the next round is not held up
        assert source.health.stale is False
        assert emitted.ticks[0].price == BTC["price"]
        await stop(task)
    finally:
        release.set()
        task.cancel()


async def test_malformed_quotes_are_dropped_never_emitted() -> None:
    good = recorded_btc()
    bad_prices = [math.nan, math.inf, -math.inf, 0.0, -12.5]
    answers: list[dict[str, Tick]] = [
        # Values no real quote has; a symbol that is not a ticker; nothing at all.
        {"BTC-USD": Tick(ticker="BTC-USD", price=p, market_time=1)}
        for p in bad_prices
    ] + [{"NOT A TICKER": Tick(ticker="NOT A TICKER", price=10.0)}, {}]

    def fetcher(tickers: list[str]) -> dict[str, Tick]:
        return answers.pop(0) if answers else {"btc-usd": good}

    source = YahooSource(streaming=False, poll_interval=0.02, quote_fetcher=fetcher)
    emitted = Emitted()
    task = asyncio.create_task(source.stream(lambda: frozenset({"BTC-USD"}), emitted))
    await until(lambda: len(answers) == 6)
    assert source.health.stale is True
    assert "no quotes for BTC-USD" in (source.health.last_error or "")
    await until(lambda: bool(emitted.ticks))
    await stop(task)
    # The one emitted tick is the recorded quote, field for field, nothing filled in.
    assert len(emitted.ticks) == 1
    tick = emitted.ticks[0]
    assert (tick.ticker, tick.price, tick.volume) == ("BTC-USD", 94745.08, 59712028672)
    assert (tick.open, tick.high, tick.low) == (92529.99, 95227.555, 92517.22)
    assert source.health.stale is False


async def test_every_kind_of_failure_keeps_the_feed_alive() -> None:
    failures: list[Exception] = [
        OSError("Could not resolve host: query2.finance.yahoo.com"),
        TimeoutError("Read timed out"),
        ValueError("Expecting value: line 1 column 1 (char 0)"),  # an HTML error page
        KeyError("chart"),  # JSON of an unexpected shape
        RuntimeError("500 Internal Server Error"),
    ]
    seen: list[str] = []

    def fetcher(tickers: list[str]) -> dict[str, Tick]:
        if failures:
            raise failures.pop(0)
        return {"BTC-USD": recorded_btc()}

    source = YahooSource(streaming=False, poll_interval=0.02, quote_fetcher=fetcher)
    emitted = Emitted()
    task = asyncio.create_task(source.stream(lambda: frozenset({"BTC-USD"}), emitted))

    def record() -> bool:
        if source.health.stale and (not seen or seen[-1] != source.health.last_error):
            seen.append(source.health.last_error or "")
        return bool(emitted.ticks)

    await until(record)
    await stop(task)
    assert not failures
    assert any("Could not resolve host" in s for s in seen), seen
    assert [t.price for t in emitted.ticks] == [BTC["price"]]
    assert source.health.stale is False


# --- the whole server ----------------------------------------------------------------------


@asynccontextmanager
async def serve(fetcher: Callable[[list[str]], dict[str, Tick]]) -> AsyncIterator[str]:
    """The real app on a free port, with `fetcher` in place of Yahoo's HTTP calls."""
    settings = Settings(
        source="yfinance",
        yahoo_streaming=False,
        tickers=["BTC-USD"],  # crypto trades around the clock: polled whatever the day
        poll_interval=0.1,
    )
    port = free_port()
    config = uvicorn.Config(
        create_asgi(settings),
        host="127.0.0.1",
        port=port,
        ws="stockfeed.server.fast_websocket:FastWebSocketProtocol",
        ws_per_message_deflate=False,
        lifespan="on",
        log_level="warning",
        **UVICORN_OPTIONS,
    )
    server = uvicorn.Server(config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yahoo, "fetch_quotes", fetcher)
        task = asyncio.create_task(server.serve())
        try:
            await until(lambda: server.started or task.done(), timeout=30)
            assert server.started, task.exception() if task.done() else "not started"
            yield f"127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 20)


async def health(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/api/ws/health")).json()
    return body


async def wait_health(
    client: httpx.AsyncClient, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    last: dict[str, Any] = {}
    async with asyncio.timeout(15):
        while not check(last := await health(client)):  # noqa: ASYNC110 - polling HTTP
            await asyncio.sleep(0.05)
    return last


async def test_rate_limited_yahoo_degrades_health_and_market_status() -> None:
    calls: list[list[str]] = []

    def rate_limited(tickers: list[str]) -> dict[str, Tick]:
        calls.append(tickers)
        raise YFRateLimitError()

    async with serve(rate_limited) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as client:
            body = await wait_health(client, lambda h: bool(h and h["source"]["stale"]))
            assert body["status"] == "degraded"
            assert "source stale" in body["problems"]
            assert "rate limited by Yahoo" in body["source"]["last_error"]
            assert body["source"]["simulated"] is False
            assert body["source"]["published"] == 0  # nothing made up meanwhile

            async with connect(f"ws://{host}/ws/stocks/BTC-USD") as ws:
                # No quote to stand in: no snapshot, straight to the market's status.
                status = await recv_json(ws)
            assert status["type"] == "market_status" and status["market"] == "CRYPTO"
            assert status["stale"] is True and status["last_good"] == 0

            quote = await client.get("/api/quotes/BTC-USD")
            assert quote.status_code == 404
            assert quote.json()["error"]["code"] == "no_quote"
            # Backing off: one polling request, and the lookups wait for the limit too.
            assert len(calls) == 1, calls


async def test_yahoo_failing_then_answering_recovers_with_the_real_quote() -> None:
    phase = ["down"]

    def fetcher(tickers: list[str]) -> dict[str, Tick]:
        if phase[0] == "down":
            raise OSError("Could not resolve host: query2.finance.yahoo.com")
        if phase[0] == "garbage":
            return {"BTC-USD": Tick(ticker="BTC-USD", price=math.nan)}
        return {"BTC-USD": recorded_btc()}

    async with serve(fetcher) as host:
        async with (
            httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as client,
            connect(f"ws://{host}/ws/stocks/BTC-USD") as ws,
        ):
            body = await wait_health(client, lambda h: bool(h and h["source"]["stale"]))
            assert "Could not resolve host" in body["source"]["last_error"]
            phase[0] = "garbage"
            body = await wait_health(
                client, lambda h: "no quotes" in (h["source"]["last_error"] or "")
            )
            assert body["status"] == "degraded" and body["source"]["published"] == 0
            phase[0] = "up"
            # The first price the client ever sees is Yahoo's recorded quote.
            while (msg := await recv_json(ws))["type"] not in ("price_update", "snapshot"):
                assert msg["type"] == "market_status", msg
            data = msg["data"]
            assert msg["type"] == "price_update" and msg["ticker"] == "BTC-USD"
            assert data["price"] == BTC["price"] and data["volume"] == int(BTC["day_volume"])
            assert data["market_time"] == int(BTC["time"])
            assert (data["open"], data["high"], data["low"]) == (
                BTC["open_price"],
                BTC["day_high"],
                BTC["day_low"],
            )
            body = await wait_health(client, lambda h: h["status"] == "ok")
            assert body["source"]["stale"] is False
