"""Market hours against the real XNYS calendar, at fixed moments (never the wall clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from stockfeed import market_hours
from stockfeed.market_hours import MarketClock, MarketSession, Session

NY = ZoneInfo("America/New_York")


def et(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def clock() -> MarketClock:
    return MarketClock()


# 2026-11-24 is a normal Tuesday (EST, UTC-5); 2026-11-26 is Thanksgiving; 2026-11-27 is the
# half day after it; 2026-11-28 a Saturday; 2026-07-14 a Tuesday in daylight time (UTC-4).
EQUITY_CASES: list[tuple[datetime, Session, datetime, datetime]] = [
    # A normal Tuesday, boundaries included.
    (et(2026, 11, 24, 3, 59), "closed", utc(2026, 11, 24, 14, 30), utc(2026, 11, 24, 21)),
    (et(2026, 11, 24, 4), "pre", utc(2026, 11, 24, 14, 30), utc(2026, 11, 24, 21)),
    (et(2026, 11, 24, 8), "pre", utc(2026, 11, 24, 14, 30), utc(2026, 11, 24, 21)),
    (et(2026, 11, 24, 9, 30), "regular", utc(2026, 11, 25, 14, 30), utc(2026, 11, 24, 21)),
    (et(2026, 11, 24, 10), "regular", utc(2026, 11, 25, 14, 30), utc(2026, 11, 24, 21)),
    (et(2026, 11, 24, 16), "post", utc(2026, 11, 25, 14, 30), utc(2026, 11, 25, 21)),
    (et(2026, 11, 24, 17), "post", utc(2026, 11, 25, 14, 30), utc(2026, 11, 25, 21)),
    (et(2026, 11, 24, 20), "closed", utc(2026, 11, 25, 14, 30), utc(2026, 11, 25, 21)),
    (et(2026, 11, 24, 21), "closed", utc(2026, 11, 25, 14, 30), utc(2026, 11, 25, 21)),
    # The evening before Thanksgiving already points past the holiday.
    (et(2026, 11, 25, 21), "closed", utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18)),
    # Thanksgiving: closed all day, no pre or post market either.
    (et(2026, 11, 26, 0), "closed", utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18)),
    (et(2026, 11, 26, 8), "closed", utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18)),
    (et(2026, 11, 26, 12), "closed", utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18)),
    (et(2026, 11, 26, 17), "closed", utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18)),
    # The half day: the regular session ends at 13:00, post-market at 17:00.
    (et(2026, 11, 27, 8), "pre", utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18)),
    (et(2026, 11, 27, 12, 59), "regular", utc(2026, 11, 30, 14, 30), utc(2026, 11, 27, 18)),
    (et(2026, 11, 27, 13), "post", utc(2026, 11, 30, 14, 30), utc(2026, 11, 30, 21)),
    (et(2026, 11, 27, 14), "post", utc(2026, 11, 30, 14, 30), utc(2026, 11, 30, 21)),
    (et(2026, 11, 27, 16, 59), "post", utc(2026, 11, 30, 14, 30), utc(2026, 11, 30, 21)),
    (et(2026, 11, 27, 17), "closed", utc(2026, 11, 30, 14, 30), utc(2026, 11, 30, 21)),
    (et(2026, 11, 27, 17, 30), "closed", utc(2026, 11, 30, 14, 30), utc(2026, 11, 30, 21)),
    # A Saturday: closed even in what would be pre/regular/post hours on a weekday.
    (et(2026, 11, 28, 8), "closed", utc(2026, 11, 30, 14, 30), utc(2026, 11, 30, 21)),
    (et(2026, 11, 28, 12), "closed", utc(2026, 11, 30, 14, 30), utc(2026, 11, 30, 21)),
    (et(2026, 11, 28, 17), "closed", utc(2026, 11, 30, 14, 30), utc(2026, 11, 30, 21)),
    # Daylight time: the same 09:30-16:00 is 13:30-20:00 UTC.
    (et(2026, 7, 14, 8), "pre", utc(2026, 7, 14, 13, 30), utc(2026, 7, 14, 20)),
    (et(2026, 7, 14, 9, 29), "pre", utc(2026, 7, 14, 13, 30), utc(2026, 7, 14, 20)),
    (utc(2026, 7, 14, 13, 30), "regular", utc(2026, 7, 15, 13, 30), utc(2026, 7, 14, 20)),
    (utc(2026, 7, 14, 20), "post", utc(2026, 7, 15, 13, 30), utc(2026, 7, 15, 20)),
]


def _case_id(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


@pytest.mark.parametrize(("at", "session", "next_open", "next_close"), EQUITY_CASES, ids=_case_id)
def test_equity_sessions(
    clock: MarketClock, at: datetime, session: Session, next_open: datetime, next_close: datetime
) -> None:
    is_open = session == "regular"  # the contract: open means the regular session only
    assert clock.status("AAPL", at) == MarketSession(
        "XNYS", is_open, session, next_open, next_close
    )
    assert clock.is_trading("AAPL", at) is (session != "closed")


def test_returned_times_are_utc(clock: MarketClock) -> None:
    status = clock.status("MSFT", et(2026, 11, 24, 10))
    assert status.next_open is not None and status.next_close is not None
    assert status.next_open.utcoffset() == status.next_close.utcoffset()
    assert status.next_open.tzinfo is UTC and status.next_close.tzinfo is UTC


def test_is_trading_follows_the_session(clock: MarketClock) -> None:
    assert clock.is_trading("AAPL", et(2026, 11, 24, 8)) is True  # pre
    assert clock.is_trading("AAPL", et(2026, 11, 24, 10)) is True  # regular
    assert clock.is_trading("AAPL", et(2026, 11, 24, 17)) is True  # post
    assert clock.is_trading("AAPL", et(2026, 11, 24, 21)) is False
    assert clock.is_trading("AAPL", et(2026, 11, 26, 12)) is False  # Thanksgiving
    assert clock.is_trading("AAPL", et(2026, 11, 28, 12)) is False  # Saturday
    assert clock.is_trading("BTC-USD", et(2026, 11, 29, 3)) is True
    assert clock.is_trading("EURUSD=X", et(2026, 11, 28, 12)) is False
    assert clock.is_trading("EURUSD=X", et(2026, 11, 29, 18)) is True


def test_crypto_is_always_open(clock: MarketClock) -> None:
    for at in (et(2026, 11, 29, 3), et(2026, 11, 26, 12), et(2026, 11, 24, 23, 59)):
        assert clock.status("BTC-USD", at) == MarketSession("CRYPTO", True, "regular", None, None)
    # Needs no calendar, so "now" is safe to check here: the answer cannot depend on it.
    assert clock.status("ETH-USDT").is_open is True


@pytest.mark.parametrize(
    ("at", "is_open", "next_open", "next_close"),
    [
        # Saturday: closed until Sunday 17:00 ET (22:00Z in winter).
        (et(2026, 11, 28, 12), False, utc(2026, 11, 29, 22), utc(2026, 12, 4, 22)),
        (et(2026, 11, 29, 16, 59), False, utc(2026, 11, 29, 22), utc(2026, 12, 4, 22)),
        (et(2026, 11, 29, 17), True, utc(2026, 12, 6, 22), utc(2026, 12, 4, 22)),
        (et(2026, 11, 29, 18), True, utc(2026, 12, 6, 22), utc(2026, 12, 4, 22)),
        # Thanksgiving has no effect on FX.
        (et(2026, 11, 26, 12), True, utc(2026, 11, 29, 22), utc(2026, 11, 27, 22)),
        (et(2026, 11, 27, 16, 59), True, utc(2026, 11, 29, 22), utc(2026, 11, 27, 22)),
        (et(2026, 11, 27, 17), False, utc(2026, 11, 29, 22), utc(2026, 12, 4, 22)),
        # The weekend US clocks spring forward: Sunday 17:00 EDT is 21:00Z.
        (et(2026, 3, 7, 12), False, utc(2026, 3, 8, 21), utc(2026, 3, 13, 21)),
    ],
    ids=_case_id,
)
def test_fx_week(
    clock: MarketClock, at: datetime, is_open: bool, next_open: datetime, next_close: datetime
) -> None:
    session: Session = "regular" if is_open else "closed"
    status = clock.status("EURUSD=X", at)
    assert status == MarketSession("FX", is_open, session, next_open, next_close)
    assert clock.is_trading("EURUSD=X", at) is is_open


def test_message_is_the_contract_shape(clock: MarketClock) -> None:
    status = clock.status("AAPL", et(2026, 11, 26, 12))
    expected = {
        "type": "market_status",
        "market": "XNYS",
        "is_open": False,
        "session": "closed",
        "next_open": "2026-11-27T14:30:00Z",
        "next_close": "2026-11-27T18:00:00Z",
    }
    assert status.message() == expected
    assert list(status.message()) == list(expected)  # the contract's key order


def test_message_marks_a_stale_source(clock: MarketClock) -> None:
    status = clock.status("AAPL", et(2026, 11, 24, 10))
    assert status.message(stale_since_ms=1764001234567.5) == {
        "type": "market_status",
        "market": "XNYS",
        "is_open": True,
        "session": "regular",
        "next_open": "2026-11-25T14:30:00Z",
        "next_close": "2026-11-24T21:00:00Z",
        "stale": True,
        "last_good": 1764001234567.5,
    }


def test_message_drops_sub_second_parts_and_uses_null() -> None:
    status = MarketSession(
        "XNYS", False, "pre", datetime(2026, 7, 14, 9, 30, 0, 123456, tzinfo=NY), None
    )
    assert status.message()["next_open"] == "2026-07-14T13:30:00Z"
    crypto = MarketSession("CRYPTO", True, "regular", None, None).message()
    assert crypto["next_open"] is None and crypto["next_close"] is None


def test_moments_outside_the_default_window(clock: MarketClock) -> None:
    # 2019-12-24 was a half day (13:00 close), far before the window built around today.
    assert clock.status("AAPL", et(2019, 12, 24, 14)).session == "post"
    assert clock.status("AAPL", et(2019, 12, 24, 12)).next_close == utc(2019, 12, 24, 18)
    # Thanksgiving 2035 is November 22.
    assert clock.status("AAPL", et(2035, 11, 22, 10)).next_open == utc(2035, 11, 23, 14, 30)


def test_calendar_is_built_once_and_shared() -> None:
    at = et(2026, 11, 24, 10)
    MarketClock().status("AAPL", at)
    built = market_hours._sessions.cache_info().currsize
    for _ in range(3):
        MarketClock().status("AAPL", at)
    assert market_hours._sessions.cache_info().currsize == built


def test_alias_reports_the_exchange_code() -> None:
    assert MarketClock("NYSE").status("AAPL", et(2026, 11, 24, 10)).market == "XNYS"


def test_bad_input_is_refused_clearly(clock: MarketClock) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.status("AAPL", datetime(2026, 11, 24, 10))
    with pytest.raises(ValueError, match="unknown exchange calendar"):
        MarketClock("NOPE")
