"""Session-true figures as clients get them from a real server process on a fixed clock
(Debian's faketime around `stockfeed serve --source sim`): before the open, after hours,
at night and on a holiday, every price of a US stock is measured from the last REGULAR
close (never an after-hours print), says its session and, after the close, the day's
regular close; at night a second subscriber still gets a snapshot and REST the last
price; a restart draws the same simulated past.

Expected figures come from the server's own history (its 1-minute bars cover every
session, its daily bars the regular session), not from the code under test."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.servers import IN_CI, StartServer
from tests.wsutil import recv_json

pytestmark = pytest.mark.process
NY = ZoneInfo("America/New_York")
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def faketime_env(moment: str) -> dict[str, str]:
    """The server's clock starts at `moment` (UTC) and runs on. FAKETIME_DONT_FAKE_MONOTONIC
    is not set: with this libfaketime it makes every time.sleep fail."""
    if not FAKETIME_LIB.exists():
        if IN_CI:
            pytest.fail("faketime is required under CI (.ci/run installs it)")
        pytest.skip("no faketime (apt-get install faketime)")
    return {
        "LD_PRELOAD": str(FAKETIME_LIB),
        "FAKETIME": f"@{moment}",
        "TZ": "UTC",
        "STOCKFEED_SIM_MARKET_HOURS": "true",
    }


async def serve(start_server: StartServer, moment: str, *args: str, **env: str) -> Any:
    server = start_server("--source", "sim", *args, env={**faketime_env(moment), **env}, wait=False)
    await asyncio.to_thread(server.wait_ready)
    return server


async def history(server: Any, interval: str, range_: str, ticker: str = "AAPL") -> list[Any]:
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        answer = await http.get(f"/api/history/{ticker}?interval={interval}&range={range_}")
    assert answer.status_code == 200, answer.text
    bars: list[Any] = answer.json()["bars"]
    return bars


def utc_day(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp())


def ny(day: date, hour: int, minute: int = 0) -> int:
    return int(
        datetime.combine(day, datetime.min.time(), NY).replace(hour=hour, minute=minute).timestamp()
    )


async def figures(server: Any, day: date, close_hour: int = 16) -> tuple[float, float]:
    """(the regular close, the last print) of `day`, from the server's history: its daily
    bar's close, which must be its last 1-minute bar before the close, and its last
    1-minute bar of the day (the post-market's last print)."""
    daily = {b["time"]: b for b in await history(server, "1d", "1mo")}
    minutes = await history(server, "1m", "5d")
    of_day = [b for b in minutes if ny(day, 4) <= b["time"] < ny(day, 20)]
    regular = [b for b in of_day if b["time"] < ny(day, close_hour)]
    close = daily[utc_day(day)]["close"]
    assert regular[-1]["close"] == close, "the daily bar closes at the regular close"
    return close, of_day[-1]["close"]


async def first_quote(url: str) -> dict[str, Any]:
    """The first snapshot or price_update of a new subscriber."""
    async with connect(url) as ws:
        while True:
            msg = await recv_json(ws, timeout=20)
            if msg["type"] in ("snapshot", "price_update"):
                return msg


def change_of(data: dict[str, Any]) -> float:
    return round(data["price"] - data["prev_close"], 4)


async def test_pre_market_change_is_measured_from_the_last_regular_close(
    start_server: StartServer,
) -> None:
    # Tuesday 8 Dec 2026, 04:30 New York: pre-market; Monday's close is the base.
    server = await serve(start_server, "2026-12-08 09:30:00", "--tickers", "AAPL")
    monday_close, monday_last = await figures(server, date(2026, 12, 7))
    assert monday_last != monday_close, "Monday's after-hours last print moved away"
    async with connect(server.ws + "/ws/stocks/AAPL") as ws:
        updates = []
        while len(updates) < 3:
            msg = await recv_json(ws, timeout=20)
            if msg["type"] == "price_update":
                updates.append(msg["data"])
    for data in updates:
        assert data["session"] == "pre"
        assert data["prev_close"] == monday_close != monday_last
        assert data["change"] == change_of(data), "pre-market change = price - last close"
        assert data["change_percent"] == round(change_of(data) / monday_close * 100, 4)
        assert "regular_close" not in data, "today's session has not closed"
    # No daily bar for today before the open (a daily bar is the regular session's).
    assert utc_day(date(2026, 12, 8)) not in {b["time"] for b in await history(server, "1d", "5d")}


async def test_after_hours_says_the_regular_close_and_keeps_the_previous_one(
    start_server: StartServer,
) -> None:
    # Tuesday 17:00 New York: post-market.
    server = await serve(start_server, "2026-12-08 22:00:00", "--tickers", "AAPL")
    monday_close, _ = await figures(server, date(2026, 12, 7))
    async with connect(server.ws + "/ws/stocks/AAPL") as ws:
        while (msg := await recv_json(ws, timeout=20))["type"] != "price_update":
            pass
    tuesday_close, _ = await figures(server, date(2026, 12, 8))
    data = msg["data"]
    assert (data["session"], data["regular_close"], data["prev_close"]) == (
        "post",
        tuesday_close,
        monday_close,
    )
    assert data["change"] == change_of(data)


async def test_at_night_every_subscriber_gets_the_last_price_and_rest_answers_it(
    start_server: StartServer,
) -> None:
    # Tuesday 03:00 New York: closed. The last trading day is Monday: its after-hours last
    # print is the price, its regular close said apart, Friday's close the base.
    server = await serve(
        start_server,
        "2026-12-08 08:00:00",
        "--tickers",
        "AAPL",
        STOCKFEED_QUOTE_TTL="2",
    )
    friday_close, _ = await figures(server, date(2026, 12, 4))
    monday_close, monday_last = await figures(server, date(2026, 12, 7))
    url = server.ws + "/ws/stocks/AAPL"
    async with connect(url) as first:
        while (held := await recv_json(first, timeout=20))["type"] != "snapshot":
            pass
        # A second subscriber while the first holds the ticker: a snapshot too.
        second = await first_quote(url)
    for msg in (held, second):
        assert msg["type"] == "snapshot"
        data = msg["data"]
        assert data["price"] == monday_last
        assert (data["session"], data["regular_close"], data["prev_close"]) == (
            "post",
            monday_close,
            friday_close,
        )
        assert data["market_time"] < ny(date(2026, 12, 7), 20) * 1000
    await asyncio.sleep(2.5)  # older than the quote TTL: the last price, marked stale
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        quote = await http.get("/api/quotes/AAPL")
        other = await http.get("/api/quotes/NVDA")  # not in the watchlist: asked for now
    assert quote.status_code == 200, quote.text
    body = quote.json()
    assert body["stale"] is True and body["age_ms"] >= 2000
    assert (body["data"]["price"], body["data"]["session"]) == (monday_last, "post")
    assert other.status_code == 200, other.text
    assert other.json()["data"]["session"] == "post"


async def test_on_a_holiday_the_last_half_day_s_figures(start_server: StartServer) -> None:
    # Christmas 2026 (Friday), noon in New York. The last trading day, Thursday 24 Dec, was
    # a half day: its regular close at 13:00, its post-market until 17:00.
    server = await serve(start_server, "2026-12-25 17:00:00", "--tickers", "AAPL")
    eve_close, eve_last = await figures(server, date(2026, 12, 24), close_hour=13)
    before_close, _ = await figures(server, date(2026, 12, 23))
    data = (await first_quote(server.ws + "/ws/stocks/AAPL"))["data"]
    assert data["price"] == eve_last
    assert (data["session"], data["regular_close"], data["prev_close"]) == (
        "post",
        eve_close,
        before_close,
    )
    assert data["change"] == change_of(data)
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        status = (await http.get("/api/market-status?tickers=AAPL")).json()
    assert json.dumps(status).count('"closed"') >= 1


async def test_the_default_seed_draws_the_same_past_on_every_start(
    start_server: StartServer,
) -> None:
    # The test servers' own seed (7) unset: the default one, as a user starts it.
    moment = "2026-12-08 08:00:00"
    first = await serve(start_server, moment, "--tickers", "AAPL", STOCKFEED_SIM_SEED="")
    assert "seed 0 (the default)" in first.log()
    past = await history(first, "1d", "1y")
    first.stop()
    again = await serve(start_server, moment, "--tickers", "AAPL", STOCKFEED_SIM_SEED="")
    assert await history(again, "1d", "1y") == past
    other = await serve(start_server, moment, "--tickers", "AAPL", "--sim-seed", "7")
    assert [b["close"] for b in await history(other, "1d", "1y")] != [b["close"] for b in past]
