"""Per-ticker liveness: open, silent for longer than usual -> stale; closed is not stale.

In-process, on a clock the test moves: the hub relays updates (a MemoryBroker), the
liveness learns each ticker's usual gap, and what changes is seen where a client sees it:
snapshots, the market_status pushed to the ticker's subscribers, and `/metrics`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from stockfeed.fanout import liveness as liveness_module
from stockfeed.fanout.hub import Hub
from stockfeed.fanout.liveness import FLOOR, MIN_SAMPLES, Liveness
from stockfeed.market_hours import MarketClock, MarketSession
from tests.fanout.fakes import RecordingConnection, update

T = "AAPL"


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


class Market:
    """Market hours the test opens and closes."""

    def __init__(self) -> None:
        self.open = True

    def status(self, ticker: str, at: Any = None) -> MarketSession:
        if self.open:
            return MarketSession("XNYS", True, "regular", None, None)
        return MarketSession("XNYS", False, "closed", None, None)


def watch(hub: Hub, clock: Clock, market: Market, quote_ttl: float = 60.0) -> Liveness:
    live = Liveness(market, quote_ttl=quote_ttl, now=clock)  # type: ignore[arg-type]
    hub.liveness = hub.updates.liveness = live  # snapshots and statuses read it there
    return live


async def ticks(hub: Hub, clock: Clock, ticker: str, seqs: range, every: float) -> None:
    for seq in seqs:
        await hub.broker.publish(ticker, update(ticker, seq))
        clock.t += every


def test_the_usual_gap_is_learned_with_a_floor() -> None:
    clock, market = Clock(), Market()
    live = Liveness(market, quote_ttl=60.0, now=clock)  # type: ignore[arg-type]
    assert live.limit(T) == 60.0  # nothing learned yet: the quote TTL
    live.check([T])  # the market is seen open
    for _ in range(MIN_SAMPLES + 5):
        live.seen(T)
        clock.t += 10.0
    assert live.limit(T) == pytest.approx(40.0)  # four usual gaps
    for _ in range(200):
        live.seen(T)
        clock.t += 0.1
    assert live.limit(T) == FLOOR  # a busy ticker still gets the floor
    # A gap that is an outage (or a night) is not learned as a habit.
    clock.t += 3600
    live.seen(T)
    assert live.limit(T) == FLOOR


async def test_a_silent_ticker_goes_stale_and_comes_back(hub: Hub) -> None:
    clock, market = Clock(), Market()
    live = watch(hub, clock, market)
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    live.check([T])
    await ticks(hub, clock, T, range(1, 21), every=5.0)  # a tick every 5 s: limit 20 s
    assert live.limit(T) == pytest.approx(20.0)
    assert live.check([T]) == [] and not live.is_stale(T)
    clock.t += 10.0
    assert live.check([T]) == []
    clock.t += 6.0  # 21 s of silence (5 + 16 since the last tick): past max(15, 4 x 5 s)
    assert live.check([T]) == [T] and live.is_stale(T)
    assert live.stale_tickers() == [T]
    assert live.last_good(T) == pytest.approx((clock.t - 21.0) * 1000)
    # A new subscriber's snapshot says so (the quote itself is younger than the TTL).
    other = RecordingConnection()
    assert await hub.subscribe(other, T)
    snapshot = other.of_type("snapshot")[-1]
    assert snapshot["stale"] is True and isinstance(snapshot["age_ms"], int)
    status = other.of_type("market_status")[-1]
    assert (status["ticker"], status["stale"]) == (T, True)
    assert status["last_good"] == live.last_good(T)
    # The next update brings it back.
    await ticks(hub, clock, T, range(21, 22), every=0.0)
    assert live.check([T]) == [T] and not live.is_stale(T)
    fresh = RecordingConnection()
    assert await hub.subscribe(fresh, T)
    assert "stale" not in fresh.of_type("snapshot")[-1]


async def test_subscribers_are_told_when_the_mark_changes(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, market = Clock(), Market()
    live = watch(hub, clock, market)
    monkeypatch.setattr(liveness_module, "CHECK_INTERVAL", 0.001)
    client = RecordingConnection()
    bystander = RecordingConnection()
    assert await hub.subscribe(client, T)
    assert await hub.subscribe(bystander, "MSFT")
    live.check([T, "MSFT"])  # the markets are seen open
    await ticks(hub, clock, T, range(1, 11), every=1.0)
    await ticks(hub, clock, "MSFT", range(1, 11), every=0.0)
    task = asyncio.create_task(live.run(hub, hub.updates.stale_since))
    try:
        before = len(client.of_type("market_status"))
        clock.t += 30.0
        await _until(lambda: len(client.of_type("market_status")) > before)
        pushed = client.of_type("market_status")[-1]
        assert pushed["ticker"] == T and pushed["stale"] is True and pushed["is_open"] is True
        await ticks(hub, clock, T, range(11, 12), every=0.0)
        await _until(lambda: "stale" not in client.of_type("market_status")[-1])
        assert client.of_type("market_status")[-1]["ticker"] == T
        # Only the ticker's own subscribers hear of it.
        assert all(m.get("ticker") == "MSFT" for m in bystander.of_type("market_status"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_closed_market_is_never_stale(hub: Hub) -> None:
    clock, market = Clock(), Market()
    live = watch(hub, clock, market)
    client = RecordingConnection()
    assert await hub.subscribe(client, T)
    live.check([T])
    await ticks(hub, clock, T, range(1, 11), every=1.0)
    market.open = False
    clock.t += 3 * 86400.0  # a long weekend of silence
    assert live.check([T]) == [] and not live.is_stale(T)
    # When it opens, silence counts from the open, not from Friday's last update...
    market.open = True
    assert live.check([T]) == []
    clock.t += FLOOR - 1
    assert live.check([T]) == []
    # ...and a ticker that does not trade once its market is open goes stale.
    clock.t += 2.0
    assert live.check([T]) == [T]


async def test_a_ticker_that_never_updates_is_stale_after_the_quote_ttl(hub: Hub) -> None:
    clock, market = Clock(), Market()
    live = watch(hub, clock, market, quote_ttl=60.0)
    client = RecordingConnection()
    assert await hub.subscribe(client, "QUIET")
    assert live.check(["QUIET"]) == []
    clock.t += 59.0
    assert live.check(["QUIET"]) == []
    clock.t += 2.0
    assert live.check(["QUIET"]) == ["QUIET"]
    status = live.status("QUIET")
    assert status["stale"] is True and status["last_good"] == 0.0
    # A ticker nobody holds any more is forgotten with the rest of its state.
    await hub.unsubscribe(client, "QUIET")
    live.forget("QUIET")
    assert live.stale_tickers() == []


def test_status_of_a_failing_source_and_a_stale_ticker_are_told_apart() -> None:
    clock = Clock()
    live = Liveness(MarketClock(), quote_ttl=60.0, now=clock)
    crypto = live.status("BTC-USD", source_stale_since=123.0)
    assert crypto["ticker"] == "BTC-USD" and crypto["market"] == "CRYPTO"
    assert crypto["stale"] is True and crypto["last_good"] == 123.0
    assert "stale" not in live.status("BTC-USD")
    # A closed market: closed, not stale.
    at = datetime(2026, 11, 28, 17, tzinfo=UTC)
    assert MarketClock().status("AAPL", at).is_open is False


async def test_metrics_and_rest_name_the_stale_tickers() -> None:
    from stockfeed.app import create_app
    from stockfeed.config import Settings
    from stockfeed.services import Services

    app = create_app(Settings(source="none", tickers=["AAPL"]))
    async with app.router.lifespan_context(app):
        svc: Services = app.state.services
        clock = Clock()
        live = Liveness(Market(), quote_ttl=60.0, now=clock)  # type: ignore[arg-type]
        svc.hub.liveness = live
        live.check(["ZED"])
        svc.hub.on_message("ZED", update("ZED", 1))  # a fresh quote (by the TTL)...
        clock.t += 61.0
        assert live.check(["ZED"]) == ["ZED"]  # ...of a ticker silent since
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            text = (await client.get("/metrics")).text
            quotes = (await client.get("/api/quotes?tickers=ZED")).json()
            status = (await client.get("/api/market-status?tickers=ZED")).json()
    assert quotes["ZED"]["stale"] is True and quotes["ZED"]["data"]["price"] == 101.0
    assert status["ZED"]["ticker"] == "ZED" and status["ZED"]["stale"] is True
    assert "stockfeed_tickers_stale 1.0" in text
    assert 'stockfeed_ticker_stale{ticker="ZED"} 1.0' in text
    assert "stockfeed_ticker_stale_events_total 1.0" in text


async def _until(condition: Any, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.002)
