"""Session-true figures on their own (sources/session_figures.py): a US stock's updates
through a week of New York sessions, as the updater stamps them, and as the wire says
them (protocol.price_update): `session`, `prev_close` the last regular close before the
trading day at every hour, `regular_close` once the day's session closed."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from stockfeed import protocol
from stockfeed.market_hours import MarketClock
from stockfeed.models import Tick
from stockfeed.sources.session_figures import SessionFigures

NY = ZoneInfo("America/New_York")
CLOCK = MarketClock()


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> int:
    """Epoch ms of a New York time in December 2026 (Monday 7, Tuesday 8, ...)."""
    return int(datetime(2026, month, day, hour, minute, tzinfo=NY).timestamp() * 1000)


def tick(price: float, market_time: int, prev_close: float | None = None, **kw: object) -> Tick:
    return Tick("AAPL", price, market_time=market_time, prev_close=prev_close, **kw)  # type: ignore[arg-type]


def wire(t: Tick) -> dict[str, object]:
    data: dict[str, object] = json.loads(protocol.price_update(t, 1))["data"]
    return data


def test_a_trading_day_from_pre_market_to_the_night() -> None:
    figures = SessionFigures(CLOCK)
    # Tuesday 8 Dec, 05:00: pre-market, measured from Monday's regular close.
    pre = tick(255.26, at(8, 5), prev_close=254.50)
    figures.stamp(pre)
    data = wire(pre)
    assert (data["session"], data["prev_close"], "regular_close" in data) == ("pre", 254.5, False)
    assert data["change"] == round(255.26 - 254.50, 4)
    assert data["change_percent"] == round((255.26 - 254.50) / 254.50 * 100, 4)
    for price, moment in ((255.0, at(8, 9, 30)), (256.1, at(8, 15, 59))):
        regular = tick(price, moment, prev_close=254.50)
        figures.stamp(regular)
        assert (regular.session, regular.prev_close, regular.regular_close) == (
            "regular",
            254.50,
            None,
        )
    # After hours, a source rebasing its change on today's close (Yahoo's streamer may):
    # the previous close stays Monday's; today's close is said apart.
    post = tick(257.0, at(8, 17), prev_close=256.1)
    figures.stamp(post)
    data = wire(post)
    assert (data["session"], data["prev_close"], data["regular_close"]) == ("post", 254.5, 256.1)
    assert data["change"] == round(257.0 - 254.50, 4), "measured from the previous close"
    night = tick(257.2, at(8, 21))
    figures.stamp(night)
    assert (night.session, night.prev_close, night.regular_close) == ("closed", 254.50, 256.1)
    # Wednesday's pre-market: a new trading day. The source says nothing (or still says
    # Monday's close for a moment): the close the updater saw on Tuesday is it.
    for given in (None, 254.50):
        wednesday = tick(257.5, at(9, 4, 30), prev_close=given)
        figures.stamp(wednesday)
        assert (wednesday.session, wednesday.prev_close, wednesday.regular_close) == (
            "pre",
            256.1,
            None,
        )
    # ... and when it gives Tuesday's, that is taken.
    given = tick(257.6, at(9, 5), prev_close=256.09)
    figures.stamp(given)
    assert given.prev_close == 256.09


def test_the_source_s_regular_close_counts_and_a_late_quote_changes_nothing() -> None:
    figures = SessionFigures(CLOCK)
    # The server starts after the close: only the source knows the regular close.
    first = tick(250.0, at(8, 18), prev_close=248.0, regular_close=249.5)
    figures.stamp(first)
    assert (first.session, first.regular_close) == ("post", 249.5)
    later = tick(250.2, at(8, 19))
    figures.stamp(later)
    assert (later.prev_close, later.regular_close) == (248.0, 249.5)
    # Wednesday pre-market, then a poll answering with Tuesday's close (a quote of the day
    # before): it is that day's, and Wednesday's figures stay.
    wednesday = tick(251.0, at(9, 6), prev_close=249.5)
    figures.stamp(wednesday)
    poll = tick(249.5, at(8, 16), prev_close=248.0)
    figures.stamp(poll)
    assert (poll.session, poll.prev_close) == ("post", 248.0)
    again = tick(251.1, at(9, 6, 1))
    figures.stamp(again)
    assert (again.session, again.prev_close, again.regular_close) == ("pre", 249.5, None)


def test_weekends_and_holidays_keep_the_last_day_s_figures() -> None:
    figures = SessionFigures(CLOCK)
    # Thursday 24 Dec 2026 is a half day (the close at 13:00), Christmas a holiday.
    figures.stamp(tick(300.0, at(24, 12, 59), prev_close=298.0))
    afternoon = tick(300.4, at(24, 14))
    figures.stamp(afternoon)
    assert (afternoon.session, afternoon.regular_close) == ("post", 300.0)
    for moment in (at(25, 12), at(26, 12), at(28, 3)):  # Christmas, Saturday, Monday night
        quiet = tick(300.4, moment)
        figures.stamp(quiet)
        assert (quiet.session, quiet.prev_close, quiet.regular_close) == ("closed", 298.0, 300.0)
    monday = tick(301.0, at(28, 4))
    figures.stamp(monday)
    assert (monday.session, monday.prev_close, monday.regular_close) == ("pre", 300.0, None)


def test_only_session_bound_instruments_get_sessions() -> None:
    figures = SessionFigures(CLOCK)
    for ticker in ("BTC-USD", "EURUSD=X", "ES=F"):
        t = Tick(ticker, 100.0, market_time=at(8, 21), prev_close=99.0)
        figures.stamp(t)
        assert (t.session, t.regular_close, t.prev_close) == (None, None, 99.0)
        assert "session" not in wire(t)
    index = Tick("^GSPC", 6000.0, market_time=at(8, 10), prev_close=5990.0)
    figures.stamp(index)
    assert index.session == "regular"
    # A simulator without market hours: every ticker trades around the clock, no sessions.
    always = SessionFigures(MarketClock(always_open=True))
    t = tick(250.0, at(8, 21), prev_close=249.0)
    always.stamp(t)
    assert t.session is None and "session" not in wire(t)
