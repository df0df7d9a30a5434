"""Market hours: is a ticker's market open, in which session, and when it next opens/closes.

Equities follow an exchange calendar (XNYS by default) from `exchange_calendars`, so holidays
and half days come from the calendar, never from a hard-coded list. Pre- and post-market
hours are not in the calendar, so they are derived here from the exchange's local time.
Crypto trades around the clock; FX trades Sunday 17:00 to Friday 17:00 New York time.
"""

from __future__ import annotations

import functools
import warnings
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import exchange_calendars as xcals

from stockfeed.tickers import asset_class

Session = Literal["closed", "pre", "regular", "post"]

# Extended hours as US brokers run them: pre-market from 04:00 local; post-market for four
# hours after the close, which gives 20:00 on a normal day and 17:00 on a half day.
_PRE_OPEN = time(4, 0)
_POST_LENGTH = timedelta(hours=4)

# The FX week opens and closes at 17:00 New York time (the Sydney open / New York close).
_NEW_YORK = ZoneInfo("America/New_York")
_FX_ROLL = time(17, 0)
_SUNDAY, _FRIDAY = 6, 4

# Room kept at the end of a calendar window so next_open/next_close after `at` still exist
# (the longest XNYS closure is a few days; a month is ample).
_LOOKAHEAD = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class MarketSession:
    market: str  # "XNYS" (or another calendar name) for equities, "CRYPTO", "FX"
    is_open: bool  # True only in the regular session
    session: Session
    next_open: datetime | None  # UTC; next start of the regular session (None for crypto)
    next_close: datetime | None  # UTC; next end of the regular session (None for crypto)

    def message(self, stale_since_ms: float | None = None) -> dict[str, object]:
        """The contract's `market_status` object; `stale_since_ms` marks a failing source."""
        out: dict[str, object] = {
            "type": "market_status",
            "market": self.market,
            "is_open": self.is_open,
            "session": self.session,
            "next_open": _iso(self.next_open),
            "next_close": _iso(self.next_close),
        }
        if stale_since_ms is not None:
            out["stale"] = True
            out["last_good"] = stale_since_ms
        return out


def _iso(moment: datetime | None) -> str | None:
    # Second precision with "Z": what JavaScript's Date and every ISO parser read alike.
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Sessions:
    """Regular-session bounds in UTC, sorted, so lookups are a bisect instead of pandas."""

    tz: ZoneInfo
    opens: list[datetime]
    closes: list[datetime]

    def covers(self, at: datetime) -> bool:
        return self.opens[0] <= at and at + _LOOKAHEAD <= self.closes[-1]


@functools.cache
def _sessions(calendar: str, first_year: int, last_year: int) -> _Sessions:
    # Building a calendar takes a noticeable fraction of a second: done once per window
    # and process, then shared by every MarketClock.
    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads `Series.values`, which pandas 3.1 deprecates; the
        # pinned pair works, and the notice is noise to anyone running the server or tests.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        cal = xcals.get_calendar(calendar, start=f"{first_year}-01-01", end=f"{last_year}-12-31")
    return _Sessions(
        tz=ZoneInfo(str(cal.tz)),
        opens=[ts.to_pydatetime().astimezone(UTC) for ts in cal.opens],
        closes=[ts.to_pydatetime().astimezone(UTC) for ts in cal.closes],
    )


def _utc(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None or at.utcoffset() is None:
        # A naive time could be UTC or local; guessing would shift sessions by hours.
        raise ValueError("market hours need a timezone-aware datetime")
    return at.astimezone(UTC)


def _local_at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def _next_weekly(at: datetime, weekday: int, clock: time, tz: ZoneInfo) -> datetime:
    """The first `weekday` at `clock` (local time in `tz`) strictly after `at`."""
    local = at.astimezone(tz)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    moment = _local_at(day, clock, tz)
    if moment <= at:
        moment = _local_at(day + timedelta(days=7), clock, tz)
    return moment


class MarketClock:
    """Answers market-hours questions per ticker; cheap to create, calendars are shared."""

    def __init__(self, calendar: str = "XNYS") -> None:
        try:
            # Aliases ("NYSE") resolve to the MIC ("XNYS") so `market` is always the MIC.
            self._calendar: str = xcals.resolve_alias(calendar)
        except xcals.errors.InvalidCalendarName:
            raise ValueError(f"unknown exchange calendar {calendar!r}") from None

    def status(self, ticker: str, at: datetime | None = None) -> MarketSession:
        """The market status of `ticker` at `at` (default: now)."""
        moment = _utc(at)
        kind = asset_class(ticker)
        if kind == "crypto":
            return MarketSession("CRYPTO", True, "regular", None, None)
        if kind == "fx":
            return self._fx(moment)
        return self._equity(moment)

    def is_trading(self, ticker: str, at: datetime | None = None) -> bool:
        """Whether quotes can move (any session but closed): whether a live source polls."""
        return self.status(ticker, at).session != "closed"

    def _window(self, at: datetime) -> _Sessions:
        # The usual window spans last year to two years ahead of today; a moment outside it
        # (tests, replays of old files) gets its own window, also built once.
        this_year = datetime.now(UTC).year
        sessions = _sessions(self._calendar, this_year - 1, this_year + 2)
        if sessions.covers(at):
            return sessions
        return _sessions(self._calendar, at.year - 1, at.year + 2)

    def _equity(self, at: datetime) -> MarketSession:
        sessions = self._window(at)
        # The first session whose close is strictly after `at`: the one running now or next.
        i = bisect_right(sessions.closes, at)
        open_, close = sessions.opens[i], sessions.closes[i]
        next_open = sessions.opens[bisect_right(sessions.opens, at)]
        if open_ <= at:
            return MarketSession(self._calendar, True, "regular", next_open, close)

        session: Session = "closed"
        local_day = at.astimezone(sessions.tz).date()
        if i > 0 and at < sessions.closes[i - 1] + _POST_LENGTH:
            session = "post"
        elif open_.astimezone(sessions.tz).date() == local_day and at >= _local_at(
            local_day, _PRE_OPEN, sessions.tz
        ):
            session = "pre"
        return MarketSession(self._calendar, False, session, next_open, close)

    def _fx(self, at: datetime) -> MarketSession:
        # Holidays are ignored: the FX market has no single calendar and banks' closures
        # rarely stop quoting altogether.
        next_open = _next_weekly(at, _SUNDAY, _FX_ROLL, _NEW_YORK)
        next_close = _next_weekly(at, _FRIDAY, _FX_ROLL, _NEW_YORK)
        # Open exactly when the week's close comes before the next open.
        is_open = next_close < next_open
        return MarketSession(
            "FX", is_open, "regular" if is_open else "closed", next_open, next_close
        )
