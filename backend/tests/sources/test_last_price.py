"""The last-price view: what each event kind does to the `price_update`s the updater
publishes (sources/last_price.py). Pure, in-process."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stockfeed.models import Tick
from stockfeed.sources.base import Provenance
from stockfeed.sources.events import Quote, SourceState, Status, Summary, Trade, VendorBar
from stockfeed.sources.last_price import LastPriceView, day_key, day_span
from stockfeed.sources.wire_values import rfc3339_ns

IEX = Provenance("alpaca", "iex", 0)
YAHOO = Provenance("yfinance")
COINBASE = Provenance("coinbase")
T0 = rfc3339_ns("2026-12-07T15:00:00.123456789Z")  # a Monday, 10:00 in New York


def trade(price: str, at_ns: int = T0, ticker: str = "AAPL") -> Trade:
    return Trade(ticker, Decimal(price), Decimal(1), at_ns)


def test_a_trade_sets_price_and_time_and_says_where_it_came_from() -> None:
    view = LastPriceView()
    tick = view.apply(IEX, trade("126.55"))
    assert tick is not None
    assert (tick.price, tick.market_time) == (126.55, T0 // 1_000_000)
    assert (tick.source, tick.feed, tick.delayed) == ("alpaca", "iex", 0)
    assert tick.volume is None, "a trade's size is never a day volume"


def test_a_quote_a_bar_and_a_status_never_move_the_price() -> None:
    view = LastPriceView()
    view.apply(IEX, trade("10"))
    quote = Quote("AAPL", Decimal("9.99"), Decimal(3), Decimal("10.01"), Decimal(4), T0 + 1)
    assert view.apply(IEX, quote) is None
    bar = VendorBar(
        "AAPL", "1m", T0, Decimal(1), Decimal(2), Decimal(1), Decimal(2), Decimal(5), True
    )
    assert view.apply(IEX, bar) is None
    assert view.apply(IEX, Status("AAPL", "halted", T0, "H", "Trading Halt")) is None
    assert view.apply(IEX, SourceState(connected=True, authorised=True)) is None
    state = view.state("AAPL")
    assert state is not None and state.halted and state.bid == Decimal("9.99")
    assert view.apply(IEX, trade("10.5", T0 + 2)) is not None


def test_day_figures_from_a_documented_summary_and_later_trades_widen_the_range() -> None:
    view = LastPriceView()
    view.apply(IEX, trade("389.00"))
    day = Summary(
        "AAPL",
        T0,
        day_volume=Decimal(749378),
        open=Decimal("388.985"),
        high=Decimal("389.13"),
        low=Decimal("388.975"),
    )
    tick = view.apply(IEX, day)
    assert tick is not None and tick.volume == 749378 and isinstance(tick.volume, int)
    assert (tick.open, tick.high, tick.low) == (388.985, 389.13, 388.975)
    higher = view.apply(IEX, trade("390.5", T0 + 5))
    assert higher is not None and higher.high == 390.5 and higher.volume == 749378
    # The same summary again changes nothing on the wire: nothing to publish.
    again = Summary("AAPL", T0 + 6, day_volume=Decimal(749378))
    assert view.apply(IEX, again) is None


def test_a_rolling_24h_volume_is_never_the_day_volume() -> None:
    view = LastPriceView()
    view.apply(COINBASE, trade("21932.98", ticker="BTC-USD"))
    # Alone it is no news (it rides along with the next trade): nothing to publish.
    assert (
        view.apply(COINBASE, Summary("BTC-USD", T0, volume_24h=Decimal("16038.28770938"))) is None
    )
    tick = view.apply(COINBASE, trade("21933.00", T0 + 1, ticker="BTC-USD"))
    assert tick is not None
    assert tick.volume is None and tick.volume_24h == 16038.28770938


def test_after_a_failover_the_day_volume_is_not_mixed_across_sources() -> None:
    view = LastPriceView()
    view.apply(IEX, trade("100"))
    view.apply(IEX, Summary("AAPL", T0, day_volume=Decimal(1000)))
    # Yahoo takes over: its own (consolidated) count is ignored, its updates say null.
    yahoo = view.apply(
        YAHOO, Tick("AAPL", 100.5, market_time=T0 // 1_000_000 + 10, volume=50_000_000)
    )
    assert yahoo is not None
    assert (yahoo.source, yahoo.volume, yahoo.price) == ("yfinance", None, 100.5)
    # Alpaca is back: its own count again, never Yahoo's.
    back = view.apply(IEX, trade("100.7", T0 + 20_000_000))
    assert back is not None and (back.source, back.volume) == ("alpaca", 1000)


def test_the_day_figures_are_forgotten_when_the_session_changes() -> None:
    view = LastPriceView()
    view.apply(IEX, trade("100"))
    view.apply(IEX, Summary("AAPL", T0, day_volume=Decimal(1000), open=Decimal(99)))
    next_day = T0 + 86_400 * 1_000_000_000
    tick = view.apply(IEX, trade("101", next_day))
    assert tick is not None and (tick.volume, tick.open) == (None, None)
    # The next day's first summary belongs to whoever gives it first.
    yahoo = view.apply(YAHOO, Tick("AAPL", 101.2, market_time=next_day // 1_000_000 + 1, volume=7))
    assert yahoo is not None and yahoo.volume == 7


def test_a_summarising_source_tick_is_published_as_it_came_with_provenance() -> None:
    view = LastPriceView()
    sim = Tick("EURUSD=X", 1.08345, 1765120000000, 0, 1.08, 1.09, 1.07, 1.081, None, None, 5)
    tick = view.apply(Provenance("sim"), sim)
    assert tick is not None
    expected = (1.08345, 1765120000000, 0, 1.08, 1.09, 1.07, 1.081, 5, "sim", None, 0)
    assert (
        tick.price,
        tick.market_time,
        tick.volume,
        tick.open,
        tick.high,
        tick.low,
        tick.prev_close,
        tick.price_decimals,
        tick.source,
        tick.feed,
        tick.delayed,
    ) == expected


def test_prices_keep_their_digits_until_the_wire() -> None:
    view = LastPriceView()
    view.apply(COINBASE, trade("0.000012345678", ticker="SHIB-USD"))
    state = view.state("SHIB-USD")
    assert state is not None and state.price == Decimal("0.000012345678")
    tick = view.apply(COINBASE, trade("1260.01", ticker="ETH-USD"))
    assert tick is not None and repr(tick.price) == "1260.01"


def test_day_keys_follow_each_market() -> None:
    # 2026-12-08 02:00 UTC: still the 7th in New York, the 8th in UTC (crypto).
    at = rfc3339_ns("2026-12-08T02:00:00Z") / 1e9
    assert day_key("AAPL", at) == "2026-12-07"
    assert day_key("BTC-USD", at) == "2026-12-08"
    # FX's day rolls at 17:00 New York: 22:30 UTC (17:30 New York) is the next day's.
    assert day_key("EURUSD=X", rfc3339_ns("2026-12-07T22:30:00Z") / 1e9) == "2026-12-08"


@pytest.mark.parametrize(
    ("ticker", "moment"),
    [
        ("AAPL", "2026-03-08T12:00:00Z"),  # New York's spring-forward day: 23 hours
        ("AAPL", "2026-11-01T12:00:00Z"),  # fall back: 25 hours
        ("EURUSD=X", "2026-12-07T21:59:59Z"),
        ("BTC-USD", "2026-12-07T23:59:59Z"),
    ],
)
def test_a_day_span_holds_its_moment_and_every_moment_of_it_has_its_key(
    ticker: str, moment: str
) -> None:
    at = rfc3339_ns(moment) / 1e9
    key, start, end = day_span(ticker, at)
    assert start <= at < end and key == day_key(ticker, at)
    assert day_key(ticker, start) == key and day_key(ticker, end - 1) == key
    assert day_key(ticker, end) != key and day_key(ticker, start - 1) != key
