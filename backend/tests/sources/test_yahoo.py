"""The yfinance source, tested without Yahoo: a real local websocket server replays frames
recorded from Yahoo's streamer, and blocking fetchers stand in for Yahoo's HTTP API."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yfinance.utils as yf_utils
from websockets.asyncio.server import Server, ServerConnection, serve
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError

from stockfeed.models import Bar, Tick
from stockfeed.sources.base import SourceError, UnknownTicker
from stockfeed.sources.yahoo import (
    YahooSource,
    bars_from_frame,
    quote_from_chart,
    tick_from_message,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "yahoo"
FRAMES: list[dict[str, Any]] = json.loads((FIXTURES / "streamer-frames.json").read_text())
BY_NAME = {frame["name"]: frame for frame in FRAMES}
# Chart metadata recorded from Yahoo (see fixtures/yahoo/README.md), by name.
CHARTS: dict[str, dict[str, Any]] = {
    chart["name"]: chart for chart in json.loads((FIXTURES / "chart-metadata.json").read_text())
}
# 2026-05-26 04:00 -04:00, the first EA bar.
EA_FIRST_BAR_TIME = 1779782400

Handler = Callable[[ServerConnection], Awaitable[None]]


# --- helpers ---------------------------------------------------------------------------------


def load_ea_frame() -> pd.DataFrame:
    """The EA bars shaped the way yfinance's history() returns them (exchange-local index)."""
    frame = pd.read_csv(FIXTURES / "EA-15m-history.csv", index_col=0)
    frame.index = pd.to_datetime(frame.index, utc=True).tz_convert("America/New_York")
    frame.index.name = "Datetime"
    return frame


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (up to 5 s) for a condition the source must reach."""
    try:
        async with asyncio.timeout(5.0):
            while not predicate():  # noqa: ASYNC110 - the conditions are the source's state
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError("condition not reached in time") from None


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a stream() task; it must end by CancelledError, never another exception."""
    assert not task.done(), task.exception() if task.done() else None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class Collector:
    def __init__(self) -> None:
        self.ticks: list[Tick] = []

    async def __call__(self, tick: Tick) -> None:
        self.ticks.append(tick)


def port_of(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


def no_quotes(tickers: list[str]) -> dict[str, Tick]:
    raise AssertionError(f"the quote fetcher must not be called here (got {tickers})")


def not_trading(ticker: str) -> bool:
    return False


def expected_from_decoded(decoded: dict[str, Any]) -> dict[str, Any]:
    """What a Tick must hold for one message as yfinance 1.7.0 decoded it."""
    price = decoded["price"]
    change = decoded.get("change")
    return {
        "ticker": decoded["id"],
        "price": price,
        "market_time": int(decoded["time"]),
        "volume": int(decoded["day_volume"]) if "day_volume" in decoded else None,
        "open": decoded.get("open_price"),
        "high": decoded.get("day_high"),
        "low": decoded.get("day_low"),
        "change": change,
        "change_percent": decoded.get("change_percent"),
        "prev_close": None if change is None else price - change,
    }


def assert_tick_matches(tick: Tick, decoded: dict[str, Any]) -> None:
    expected = expected_from_decoded(decoded)
    prev_close = expected.pop("prev_close")
    for field, value in expected.items():
        assert getattr(tick, field) == value, (field, decoded["id"])
    if prev_close is None:
        assert tick.prev_close is None
    else:
        # Rounded to the quote's precision (price_hint) to undo float32 noise.
        assert tick.prev_close == pytest.approx(prev_close, abs=0.005)


class Fetcher:
    """A blocking quote fetcher that records its calls (time, tickers, thread)."""

    def __init__(self, answer: Callable[[int, list[str]], dict[str, Tick]]) -> None:
        self.answer = answer
        self.calls: list[tuple[float, list[str], int]] = []

    def __call__(self, tickers: list[str]) -> dict[str, Tick]:
        self.calls.append((time.monotonic(), list(tickers), threading.get_ident()))
        return self.answer(len(self.calls), tickers)


def fresh_quotes(call: int, tickers: list[str]) -> dict[str, Tick]:
    # A new quote time on every call, as a trading market gives.
    return {
        t: Tick(ticker=t, price=100.0 + call, market_time=1_780_000_000_000 + call * 1000)
        for t in tickers
    }


# --- parsing ---------------------------------------------------------------------------------


def test_tick_from_message_on_every_recorded_frame() -> None:
    for frame in FRAMES:
        tick = tick_from_message(frame["decoded_by_yfinance_1_7_0"])
        assert tick is not None, frame["name"]
        assert_tick_matches(tick, frame["decoded_by_yfinance_1_7_0"])


def test_tick_from_message_rejects_messages_without_a_quote() -> None:
    # What yfinance returns for an undecodable frame when hide_exceptions is on.
    assert tick_from_message({"error": "Error parsing message", "raw_base64": "xx"}) is None
    assert tick_from_message({"id": "NOT A TICKER", "price": 1.0}) is None
    no_price = dict(BY_NAME["aapl_1"]["decoded_by_yfinance_1_7_0"])
    del no_price["price"]
    assert tick_from_message(no_price) is None
    lower = dict(BY_NAME["jpy_1"]["decoded_by_yfinance_1_7_0"], id="jpy=x")
    tick = tick_from_message(lower)
    assert tick is not None and tick.ticker == "JPY=X"


def test_bars_from_frame_on_recorded_ea_history() -> None:
    frame = load_ea_frame()
    bars = bars_from_frame(frame)

    assert len(bars) == 319 == len(frame)
    assert bars[0] == Bar(
        time=EA_FIRST_BAR_TIME, open=170.0712, high=200.8117, low=170.0712, close=199.85, volume=0
    )
    # 2026-05-26 09:30 -04:00, the regular-session open, the first bar with volume.
    opening = next(bar for bar in bars if bar.volume > 0)
    assert opening.time == EA_FIRST_BAR_TIME + 5 * 3600 + 30 * 60
    assert opening.open == pytest.approx(200.606506347656)
    assert opening.close == pytest.approx(200.925003051758)
    assert opening.volume == 73897
    # 2026-06-03 14:15 -04:00 = 18:15 UTC.
    assert bars[-1].time == 1780510500
    assert bars[-1].volume == 36730
    assert all(type(bar.time) is int and type(bar.volume) is int for bar in bars)
    assert [bar.time for bar in bars] == sorted({bar.time for bar in bars})


def test_bars_from_frame_skips_rows_with_missing_values() -> None:
    frame = load_ea_frame()
    frame.loc[frame.index[1], "Close"] = math.nan
    bars = bars_from_frame(frame)
    assert len(bars) == 318
    assert EA_FIRST_BAR_TIME + 45 * 60 not in {bar.time for bar in bars}


def test_bars_from_frame_refuses_a_frame_without_ohlcv() -> None:
    with pytest.raises(ValueError, match="Volume"):
        bars_from_frame(load_ea_frame().drop(columns=["Volume"]))


def test_quote_from_chart_without_metadata_uses_the_last_real_bar() -> None:
    frame = load_ea_frame()
    tick = quote_from_chart("EA", frame, {})
    assert tick is not None
    assert tick.price == pytest.approx(202.770004272461)
    assert tick.market_time == 1780510500 * 1000
    # Nothing in a bare frame says what the day's volume, range or previous close are.
    assert (tick.volume, tick.open, tick.high, tick.low, tick.prev_close) == (None,) * 5


def recorded_meta(name: str, *, as_yfinance: bool) -> dict[str, Any]:
    """A recorded chart metadata, raw (epoch seconds, as Yahoo sends it) or as yfinance's
    `get_history_metadata()` hands it over (its times made exchange-local Timestamps)."""
    meta = copy.deepcopy(CHARTS[name]["meta"])
    return yf_utils.format_history_metadata(meta) if as_yfinance else meta  # type: ignore[no-any-return]


def minute_frame(rows: list[tuple[str, float, float, float, float, int]]) -> pd.DataFrame:
    """1-minute bars in the shape yfinance's history() returns them (an exchange-local
    index): made in the test, next to recorded metadata of the same day (no recording
    pairs them)."""
    index = pd.DatetimeIndex([pd.Timestamp(t, tz="America/New_York") for t, *_ in rows])
    frame = pd.DataFrame(
        [row[1:] for row in rows], index=index, columns=["Open", "High", "Low", "Close", "Volume"]
    )
    frame.index.name = "Datetime"
    return frame


@pytest.mark.parametrize("as_yfinance", [False, True], ids=["raw", "yfinance"])
def test_quote_from_chart_reads_recorded_metadata_in_milliseconds(as_yfinance: bool) -> None:
    # 24 Mar 2025, captured at 09:51:33 New York: regularMarketTime 1742824293 (seconds).
    meta = recorded_meta("aapl_regular_2025_03_24", as_yfinance=as_yfinance)
    tick = quote_from_chart("AAPL", pd.DataFrame(), meta)
    assert tick is not None
    assert tick.market_time == 1742824293 * 1000, "epoch ms, whatever shape the time came in"
    assert tick.price == 220.003
    assert (tick.high, tick.low, tick.volume) == (221.021, 218.58, 5800260)
    assert tick.price_decimals == 2
    assert tick.open is None, "no bars: nothing tells the session's first trade"
    assert tick.regular_close is None, "the session has not closed"


@pytest.mark.parametrize("as_yfinance", [False, True], ids=["raw", "yfinance"])
def test_quote_from_chart_newest_of_metadata_and_last_bar_wins(as_yfinance: bool) -> None:
    meta = recorded_meta("aapl_regular_2025_03_24", as_yfinance=as_yfinance)
    # The day so far in minutes: pre-market at 08:00 and 09:29, the regular session from
    # its start (currentTradingPeriod.regular.start = 09:30) to the 09:50 minute.
    rows = [
        ("2025-03-24 08:00", 218.10, 218.30, 218.00, 218.20, 0),
        ("2025-03-24 09:29", 218.90, 219.00, 218.80, 218.95, 0),
        ("2025-03-24 09:30", 219.50, 219.90, 219.20, 219.70, 912000),
        ("2025-03-24 09:31", 219.70, 220.10, 219.60, 220.05, 301000),
        ("2025-03-24 09:50", 220.00, 220.10, 219.95, 220.02, 88000),
    ]
    tick = quote_from_chart("AAPL", minute_frame(rows), meta)
    assert tick is not None
    # 09:50:00 (the last bar's start) is older than 09:51:33: the metadata's price wins.
    assert (tick.price, tick.market_time) == (220.003, 1742824293000)
    assert tick.open == 219.50, "the first bar at or after the regular session's start"
    # A bar newer than the metadata (09:52, the metadata lagging): the bar wins, its
    # time the minute's start, in ms.
    later = [*rows, ("2025-03-24 09:52", 220.10, 220.40, 220.05, 220.35, 51000)]
    tick = quote_from_chart("AAPL", minute_frame(later), meta)
    assert tick is not None
    assert (tick.price, tick.market_time) == (220.35, 1742824320 * 1000)
    assert tick.open == 219.50


@pytest.mark.parametrize("as_yfinance", [False, True], ids=["raw", "yfinance"])
def test_quote_from_chart_before_the_open_has_no_open(as_yfinance: bool) -> None:
    # 20 Feb 2025, captured at 06:47 New York: the metadata's regular price is the last
    # session's close (19 Feb 16:00:01); today's pre-market bars are newer.
    meta = recorded_meta("aapl_premarket_2025_02_20", as_yfinance=as_yfinance)
    tick = quote_from_chart("AAPL", pd.DataFrame(), meta)
    assert tick is not None
    assert (tick.price, tick.market_time) == (244.87, 1739998801 * 1000)
    rows = [
        ("2025-02-20 04:00", 244.90, 245.10, 244.80, 245.00, 0),
        ("2025-02-20 06:45", 245.30, 245.60, 245.25, 245.50, 0),
    ]
    tick = quote_from_chart("AAPL", minute_frame(rows), meta)
    assert tick is not None
    assert (tick.price, tick.market_time) == (245.50, 1740051900 * 1000)
    assert tick.open is None, "pre-market bars are not the session's open"


@pytest.mark.parametrize("as_yfinance", [False, True], ids=["raw", "yfinance"])
def test_quote_from_chart_before_the_open_measures_from_the_last_regular_close(
    as_yfinance: bool,
) -> None:
    # In the recorded pre-market metadata, `previousClose` (244.47) is the close before
    # the last session, and `regularMarketPrice` (244.87) that session's close, stamped
    # before today's session starts: the previous close is 244.87, as quote sites show
    # pre-market changes.
    meta = recorded_meta("aapl_premarket_2025_02_20", as_yfinance=as_yfinance)
    rows = [("2025-02-20 06:45", 245.30, 245.60, 245.25, 245.50, 0)]
    tick = quote_from_chart("AAPL", minute_frame(rows), meta)
    assert tick is not None
    assert tick.prev_close == 244.87 != CHARTS["aapl_premarket_2025_02_20"]["meta"]["previousClose"]
    assert tick.regular_close is None, "today's session has not closed"
    # The same metadata once its session is over (the capture's times moved a day back,
    # so that the regular price of 19 Feb is stamped after that day's close): it is the
    # regular close, and the previous close is the one before it.
    raw = recorded_meta("aapl_premarket_2025_02_20", as_yfinance=False)
    for period in raw["currentTradingPeriod"].values():
        period["start"] -= 86400
        period["end"] -= 86400
    meta = yf_utils.format_history_metadata(raw) if as_yfinance else raw
    tick = quote_from_chart("AAPL", pd.DataFrame(), meta)
    assert tick is not None
    assert (tick.price, tick.regular_close, tick.prev_close) == (244.87, 244.87, 244.47)


# --- streaming over a real websocket ------------------------------------------------------


async def test_stream_emits_recorded_streamer_frames() -> None:
    wanted = frozenset({"AAPL", "BTC-USD", "JPY=X"})
    subscribe_messages: list[dict[str, Any]] = []

    async def yahoo(conn: ServerConnection) -> None:
        subscribe_messages.append(json.loads(await conn.recv()))
        # Garbage first: it must be skipped without dropping the connection.
        await conn.send("not json")
        await conn.send(json.dumps({"type": "pricing", "message": "bm90IHByb3RvYnVm"}))
        for frame in FRAMES:
            await conn.send(frame["envelope_v2"])
        await conn.wait_closed()

    async with serve(yahoo, "127.0.0.1", 0) as server:
        source = YahooSource(
            streamer_url=f"ws://127.0.0.1:{port_of(server)}",
            is_trading=not_trading,
            quote_fetcher=no_quotes,
        )
        emitted = Collector()
        task = asyncio.create_task(source.stream(lambda: wanted, emitted))
        await until(lambda: len(emitted.ticks) == len(FRAMES))
        await stop(task)
        await source.close()

    assert len(subscribe_messages) == 1
    assert set(subscribe_messages[0]["subscribe"]) == wanted
    for tick, frame in zip(emitted.ticks, FRAMES, strict=True):
        assert_tick_matches(tick, frame["decoded_by_yfinance_1_7_0"])

    aapl_1, aapl_5, btc_1 = emitted.ticks[0], emitted.ticks[2], emitted.ticks[4]
    assert (aapl_1.ticker, aapl_1.price, aapl_1.market_time) == ("AAPL", 307.2, 1785937395000)
    assert aapl_1.volume == 5422202
    assert aapl_1.prev_close == 309.38  # 307.2 - (-2.1799927), at 2 decimals
    assert aapl_5.volume is None and aapl_5.open is None and aapl_5.high is None
    assert (btc_1.open, btc_1.high, btc_1.low) == (92529.99, 95227.555, 92517.22)
    assert btc_1.volume == 59712028672 and btc_1.prev_close == 93313.19
    assert source.health.stale is False and source.health.last_tick_ms is not None


async def test_stream_follows_changes_of_the_wanted_tickers() -> None:
    wanted = {"AAPL", "JPY=X"}
    received: list[dict[str, Any]] = []

    async def yahoo(conn: ServerConnection) -> None:
        async for message in conn:
            received.append(json.loads(message))
            if "unsubscribe" in received[-1]:
                # JPY=X is no longer wanted: its frame must not come out of the source.
                await conn.send(BY_NAME["jpy_1"]["envelope_v2"])
                await conn.send(BY_NAME["aapl_1"]["envelope_v2"])

    async with serve(yahoo, "127.0.0.1", 0) as server:
        source = YahooSource(
            streamer_url=f"ws://127.0.0.1:{port_of(server)}",
            is_trading=not_trading,
            quote_fetcher=no_quotes,
            check_interval=0.05,
        )
        emitted = Collector()
        task = asyncio.create_task(source.stream(lambda: frozenset(wanted), emitted))
        await until(lambda: len(received) == 1)
        wanted.discard("JPY=X")
        wanted.add("msft")  # wanted() may hand over any spelling; Yahoo gets it upper-cased
        await until(lambda: len(emitted.ticks) == 1)
        await stop(task)
        await source.close()

    assert set(received[0]["subscribe"]) == {"AAPL", "JPY=X"}
    assert received[1] == {"unsubscribe": ["JPY=X"]}
    assert set(received[2]["subscribe"]) == {"AAPL", "MSFT"}
    assert [tick.ticker for tick in emitted.ticks] == ["AAPL"]


async def test_stream_survives_dropped_and_refused_connections() -> None:
    wanted = frozenset({"AAPL", "BTC-USD"})
    connections: list[dict[str, Any]] = []

    async def flaky_yahoo(conn: ServerConnection) -> None:
        connections.append(json.loads(await conn.recv()))
        if len(connections) == 1:
            # A clean close: yfinance 1.7.0's own listen() spins on the closed socket
            # forever without yielding; the source must reconnect instead.
            await conn.send(BY_NAME["aapl_1"]["envelope_v2"])
            await conn.close()
        else:
            conn.transport.abort()  # a dropped TCP connection, no close frame

    server = await serve(flaky_yahoo, "127.0.0.1", 0)
    port = port_of(server)
    source = YahooSource(
        streamer_url=f"ws://127.0.0.1:{port}",
        is_trading=not_trading,
        quote_fetcher=no_quotes,
        reconnect_backoff=(0.05, 0.2),
        check_interval=0.05,
    )
    emitted = Collector()
    task = asyncio.create_task(source.stream(lambda: wanted, emitted))
    try:
        # Between attempts (a new one may already be connected when the server counts it).
        await until(
            lambda: len(connections) >= 3 and source.health.extra["streamer"] == "reconnecting"
        )
        assert [tick.ticker for tick in emitted.ticks] == ["AAPL"]
        assert source.health.stale is True
        assert "Yahoo streamer connection failed" in (source.health.last_error or "")

        # Nobody listening any more: connections are refused, the stream keeps trying.
        server.close()
        await server.wait_closed()
        await until(lambda: "ConnectionRefused" in (source.health.last_error or ""))
        await asyncio.sleep(0.5)
        assert not task.done()
        assert source.health.stale is True

        # Yahoo is back: the source reconnects, resubscribes and streams again.
        back: list[dict[str, Any]] = []

        async def yahoo(conn: ServerConnection) -> None:
            back.append(json.loads(await conn.recv()))
            await conn.send(BY_NAME["btc_1"]["envelope_v2"])
            await conn.wait_closed()

        server = await serve(yahoo, "127.0.0.1", port)
        await until(lambda: len(emitted.ticks) == 2)
        assert emitted.ticks[1].ticker == "BTC-USD"
        assert set(back[0]["subscribe"]) == wanted
        assert source.health.stale is False
        assert source.health.extra["streamer"] == "connected"
        await stop(task)
    finally:
        task.cancel()
        await source.close()
        server.close()
        await server.wait_closed()


async def test_close_ends_the_streamer_connection() -> None:
    closed = asyncio.Event()
    connections = 0

    async def yahoo(conn: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await conn.recv()
        await conn.wait_closed()
        closed.set()

    async with serve(yahoo, "127.0.0.1", 0) as server:
        source = YahooSource(
            streamer_url=f"ws://127.0.0.1:{port_of(server)}",
            is_trading=not_trading,
            quote_fetcher=no_quotes,
            reconnect_backoff=(0.05, 0.1),
            check_interval=0.05,
        )
        task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL"}), Collector()))
        await until(lambda: source.health.extra["streamer"] == "connected")
        await source.close()
        await asyncio.wait_for(closed.wait(), 5)
        await asyncio.sleep(0.3)
        assert connections == 1  # a closed source does not reconnect
        await stop(task)


# --- polling -------------------------------------------------------------------------------


async def test_polling_emits_quotes_when_streaming_is_off() -> None:
    fetcher = Fetcher(fresh_quotes)
    source = YahooSource(streaming=False, poll_interval=0.05, quote_fetcher=fetcher)
    emitted = Collector()
    task = asyncio.create_task(source.stream(lambda: frozenset({"MSFT", "AAPL"}), emitted))
    await until(lambda: len(emitted.ticks) >= 6)
    await stop(task)

    assert all(tickers == ["AAPL", "MSFT"] for _, tickers, _ in fetcher.calls)
    # Blocking fetches run in a worker thread, never on the event loop.
    assert all(thread != threading.get_ident() for _, _, thread in fetcher.calls)
    assert {tick.ticker for tick in emitted.ticks} == {"AAPL", "MSFT"}
    assert emitted.ticks[0].price == 101.0
    assert source.health.stale is False
    assert source.health.extra["streamer"] == "off"


async def test_polling_skips_quotes_that_did_not_change() -> None:
    def same_quote(call: int, tickers: list[str]) -> dict[str, Tick]:
        return {"AAPL": Tick(ticker="AAPL", price=190.0, market_time=1_780_000_000_000)}

    fetcher = Fetcher(same_quote)
    source = YahooSource(streaming=False, poll_interval=0.02, quote_fetcher=fetcher)
    emitted = Collector()
    task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL"}), emitted))
    await until(lambda: len(fetcher.calls) >= 5)
    await stop(task)
    assert len(emitted.ticks) == 1
    assert source.health.stale is False


async def test_polling_leaves_out_tickers_that_are_not_trading() -> None:
    fetcher = Fetcher(fresh_quotes)
    source = YahooSource(
        streaming=False,
        poll_interval=0.02,
        quote_fetcher=fetcher,
        is_trading=lambda ticker: ticker != "AAPL",
    )
    emitted = Collector()
    task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL", "BTC-USD"}), emitted))
    await until(lambda: len(fetcher.calls) >= 5)
    await stop(task)
    assert all(tickers == ["BTC-USD"] for _, tickers, _ in fetcher.calls)
    assert {tick.ticker for tick in emitted.ticks} == {"BTC-USD"}


async def test_polling_never_calls_yahoo_when_no_market_trades() -> None:
    source = YahooSource(
        streaming=False, poll_interval=0.02, quote_fetcher=no_quotes, is_trading=not_trading
    )
    task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL", "MSFT"}), Collector()))
    await asyncio.sleep(0.3)
    await stop(task)  # no_quotes would have failed the round and marked the source stale
    assert source.health.stale is False and source.health.last_error is None


async def test_rate_limit_pauses_polling_for_the_backoff() -> None:
    def rate_limited(call: int, tickers: list[str]) -> dict[str, Tick]:
        raise YFRateLimitError()

    fetcher = Fetcher(rate_limited)
    source = YahooSource(
        streaming=False,
        poll_interval=0.02,
        quote_fetcher=fetcher,
        rate_limit_backoff=(30.0, 600.0),
    )
    task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL"}), Collector()))
    await until(lambda: source.health.stale)
    await asyncio.sleep(0.3)  # 15 polling rounds without the backoff
    await stop(task)

    assert len(fetcher.calls) == 1
    assert "rate limited by Yahoo" in (source.health.last_error or "")
    assert source.health.backoff_until_ms is not None
    remaining_s = (source.health.backoff_until_ms - time.time() * 1000) / 1000
    assert 29 < remaining_s <= 30


async def test_rate_limit_backoff_doubles_then_polling_recovers() -> None:
    def limited_twice(call: int, tickers: list[str]) -> dict[str, Tick]:
        if call <= 2:
            raise YFRateLimitError()
        return fresh_quotes(call, tickers)

    fetcher = Fetcher(limited_twice)
    source = YahooSource(
        streaming=False,
        poll_interval=0.02,
        quote_fetcher=fetcher,
        rate_limit_backoff=(0.2, 5.0),
    )
    emitted = Collector()
    task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL"}), emitted))
    await until(lambda: len(emitted.ticks) >= 1)
    await stop(task)

    first, second, third = (call[0] for call in fetcher.calls[:3])
    assert second - first >= 0.2
    assert third - second >= 0.4
    assert source.health.stale is False and source.health.backoff_until_ms is None


async def test_failed_and_empty_polls_mark_the_source_stale_and_retry() -> None:
    outcome: list[str] = ["error"]

    def flaky(call: int, tickers: list[str]) -> dict[str, Tick]:
        if outcome[0] == "error":
            raise OSError("Could not resolve host: query2.finance.yahoo.com")
        if outcome[0] == "empty":
            return {}
        return fresh_quotes(call, tickers)

    fetcher = Fetcher(flaky)
    source = YahooSource(streaming=False, poll_interval=0.02, quote_fetcher=fetcher)
    emitted = Collector()
    task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL"}), emitted))

    await until(lambda: len(fetcher.calls) >= 3)  # retried on the next rounds
    assert source.health.stale is True
    assert "Could not resolve host" in (source.health.last_error or "")

    outcome[0] = "empty"
    await until(lambda: "no quotes for AAPL" in (source.health.last_error or ""))
    assert source.health.stale is True

    outcome[0] = "ok"
    await until(lambda: len(emitted.ticks) >= 1)
    assert source.health.stale is False
    await stop(task)


async def test_a_failing_consumer_does_not_stop_the_feed() -> None:
    seen: list[Tick] = []

    async def broken_emit(tick: Tick) -> None:
        seen.append(tick)
        raise RuntimeError("the updater is broken")

    source = YahooSource(streaming=False, poll_interval=0.02, quote_fetcher=Fetcher(fresh_quotes))
    task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL"}), broken_emit))
    await until(lambda: len(seen) >= 3)
    await stop(task)


async def test_polling_covers_only_tickers_the_streamer_is_silent_on() -> None:
    async def yahoo(conn: ServerConnection) -> None:
        await conn.recv()
        while True:  # AAPL trades on the streamer; MSFT never shows up there
            await conn.send(BY_NAME["aapl_1"]["envelope_v2"])
            await asyncio.sleep(0.03)

    async with serve(yahoo, "127.0.0.1", 0) as server:
        fetcher = Fetcher(fresh_quotes)
        source = YahooSource(
            streamer_url=f"ws://127.0.0.1:{port_of(server)}",
            poll_interval=0.4,
            quote_fetcher=fetcher,
            check_interval=0.05,
        )
        emitted = Collector()
        task = asyncio.create_task(source.stream(lambda: frozenset({"AAPL", "MSFT"}), emitted))
        # Rounds before the streamer's first AAPL may ask for it (a loaded machine can be
        # slow to hear it); once it has been heard, rounds skip it.
        await until(lambda: any(tick.ticker == "AAPL" for tick in emitted.ticks))
        heard = len(fetcher.calls)
        await until(lambda: len(fetcher.calls) >= heard + 3)
        await stop(task)
        await source.close()

    # The round that may have been under way when AAPL was heard, then only MSFT.
    assert all(tickers == ["MSFT"] for _, tickers, _ in fetcher.calls[heard + 1 :])


# --- history -------------------------------------------------------------------------------


async def test_history_maps_the_fetched_frame_in_a_thread() -> None:
    calls: list[tuple[str, str, str, int]] = []

    def fetch(ticker: str, interval: str, range_: str) -> pd.DataFrame:
        calls.append((ticker, interval, range_, threading.get_ident()))
        return load_ea_frame()

    bars = await YahooSource(history_fetcher=fetch).history("EA", "15m", "5d")
    assert bars == bars_from_frame(load_ea_frame())
    assert bars[0].time == EA_FIRST_BAR_TIME
    assert calls[0][:3] == ("EA", "15m", "5d")
    assert calls[0][3] != threading.get_ident()


def raising(exc: Exception) -> Callable[[str, str, str], pd.DataFrame]:
    def fetch(ticker: str, interval: str, range_: str) -> pd.DataFrame:
        raise exc

    return fetch


async def test_history_without_data_is_a_source_error() -> None:
    def empty(ticker: str, interval: str, range_: str) -> pd.DataFrame:
        return load_ea_frame().iloc[0:0]

    with pytest.raises(SourceError, match="no history from Yahoo for EA"):
        await YahooSource(history_fetcher=empty).history("EA", "15m", "5d")


async def test_history_rate_limited_is_a_source_error() -> None:
    source = YahooSource(history_fetcher=raising(YFRateLimitError()))
    with pytest.raises(SourceError, match="rate limited by Yahoo"):
        await source.history("EA", "1d", "1mo")


async def test_history_network_error_is_a_source_error() -> None:
    source = YahooSource(history_fetcher=raising(OSError("Connection timed out")))
    with pytest.raises(SourceError, match="Connection timed out") as caught:
        await source.history("EA", "1d", "1mo")
    assert not isinstance(caught.value, UnknownTicker)


async def test_history_of_a_symbol_yahoo_does_not_know() -> None:
    # Yahoo's chart answer for an unknown symbol, as yfinance raises it.
    not_found = YFPricesMissingError(
        "ZZZZQ", "(period=5d)", yahoo_reason="No data found, symbol may be delisted"
    )
    with pytest.raises(UnknownTicker):
        await YahooSource(history_fetcher=raising(not_found)).history("ZZZZQ", "15m", "5d")
    # yfinance's own guess ("possibly delisted") without Yahoo's verdict proves nothing.
    guess = YFPricesMissingError("EA", "(period=5d)")
    with pytest.raises(SourceError):
        await YahooSource(history_fetcher=raising(guess)).history("EA", "15m", "5d")


# --- probe and can_quote -------------------------------------------------------------------


async def test_probe_is_false_fast_when_yahoo_is_unreachable() -> None:
    def unreachable(tickers: list[str]) -> dict[str, Tick]:
        raise OSError("Could not resolve host: query2.finance.yahoo.com")

    started = time.monotonic()
    assert await YahooSource(quote_fetcher=unreachable).probe(timeout=5.0) is False
    assert time.monotonic() - started < 2.0


async def test_probe_is_false_when_yahoo_hangs_past_the_timeout() -> None:
    release = threading.Event()

    def hanging(tickers: list[str]) -> dict[str, Tick]:
        release.wait(10)
        return fresh_quotes(1, tickers)

    started = time.monotonic()
    try:
        assert await YahooSource(quote_fetcher=hanging).probe(timeout=0.2) is False
        assert time.monotonic() - started < 2.0
    finally:
        release.set()  # let the worker thread end before the loop shuts down


async def test_probe_is_true_when_yahoo_quotes() -> None:
    fetcher = Fetcher(fresh_quotes)
    assert await YahooSource(quote_fetcher=fetcher).probe(timeout=2.0) is True
    assert fetcher.calls[0][1] == ["AAPL"]
    assert await YahooSource(quote_fetcher=Fetcher(lambda n, t: {})).probe(timeout=2.0) is False


async def test_can_quote_answers_and_caches() -> None:
    fetcher = Fetcher(fresh_quotes)
    source = YahooSource(quote_fetcher=fetcher)
    answers = await asyncio.gather(*(source.can_quote("msft") for _ in range(5)))
    assert answers == [True] * 5
    assert await source.can_quote("MSFT") is True
    assert len(fetcher.calls) == 1  # one shared lookup, then the cache
    assert fetcher.calls[0][1] == ["MSFT"]


async def test_can_quote_false_for_symbols_yahoo_does_not_know() -> None:
    def unknown(call: int, tickers: list[str]) -> dict[str, Tick]:
        raise YFPricesMissingError(
            tickers[0], "", yahoo_reason="No data found, symbol may be delisted"
        )

    fetcher = Fetcher(unknown)
    source = YahooSource(quote_fetcher=fetcher)
    assert await source.can_quote("ZZZZQ") is False
    assert await source.can_quote("ZZZZQ") is False
    assert len(fetcher.calls) == 1
    assert await YahooSource(quote_fetcher=Fetcher(lambda n, t: {})).can_quote("ZZZZQ") is False


async def test_can_quote_unknown_on_network_trouble() -> None:
    def down(call: int, tickers: list[str]) -> dict[str, Tick]:
        raise OSError("Connection refused")

    fetcher = Fetcher(down)
    source = YahooSource(quote_fetcher=fetcher)
    assert await source.can_quote("AAPL") is None
    assert await source.can_quote("AAPL") is None
    assert len(fetcher.calls) == 2  # "cannot tell" is not cached

    release = threading.Event()

    def hanging(tickers: list[str]) -> dict[str, Tick]:
        release.wait(10)
        return {}

    try:
        slow = YahooSource(quote_fetcher=hanging, lookup_timeout=0.2)
        assert await slow.can_quote("AAPL") is None
    finally:
        release.set()
