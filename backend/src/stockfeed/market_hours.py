"""Market hours: is a ticker's market open, in which session, and when it next opens/closes.

Equities follow an exchange calendar (XNYS by default) from `exchange_calendars`, so holidays
and half days come from the calendar, never from a hard-coded list. Pre- and post-market
hours are not in the calendar, so they are derived here from the exchange's local time.
Crypto trades around the clock; FX trades Sunday 17:00 to Friday 17:00 New York time;
futures (`=F`) trade CME Globex hours, Sunday 18:00 to Friday 17:00 New York time with a
break from 17:00 to 18:00 each weekday.

`trading_days` lists the days a market trades in a span of time, each with its date (what
a daily bar is labelled with), the window in which quotes move (pre- to post-market for
equities) and its regular session: the simulator trades exactly in those windows.
A clock made with `always_open=True` describes the simulator run without market hours
(`STOCKFEED_SIM_MARKET_HOURS=false`): one market, `SIM`, open around the clock, whose
days are UTC dates, for every ticker.
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
# The trading schedules `trading_days` knows: an exchange calendar's name (e.g. XNYS, with
# pre- and post-market), `<calendar>:regular` (its regular sessions only: indices), and
# the calendar-free markets.
CRYPTO, FX, CME, SIM = "CRYPTO", "FX", "CME", "SIM"

# Extended hours as US brokers run them: pre-market from 04:00 local; post-market for four
# hours after the close, which gives 20:00 on a normal day and 17:00 on a half day.
_PRE_OPEN = time(4, 0)
_POST_LENGTH = timedelta(hours=4)

# The FX week opens and closes at 17:00 New York time (the Sydney open / New York close).
_NEW_YORK = ZoneInfo("America/New_York")
_FX_ROLL = time(17, 0)
_SUNDAY, _FRIDAY = 6, 4
# CME Globex: each trading day runs 18:00 to 17:00 New York time (the date of its end).
_CME_OPEN, _CME_CLOSE = time(18, 0), time(17, 0)
_DAY = timedelta(days=1)

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

    def message(
        self, stale_since_ms: float | None = None, ticker: str | None = None
    ) -> dict[str, object]:
        """The contract's `market_status` object; `stale_since_ms` marks a failing source
        (or, with `ticker`, a ticker silent for longer than usual: fanout/liveness.py)."""
        out: dict[str, object] = {
            "type": "market_status",
            "market": self.market,
            "is_open": self.is_open,
            "session": self.session,
            "next_open": _iso(self.next_open),
            "next_close": _iso(self.next_close),
        }
        if ticker is not None:
            out["ticker"] = ticker
        if stale_since_ms is not None:
            out["stale"] = True
            out["last_good"] = stale_since_ms
        return out


@dataclass(frozen=True, slots=True)
class TradingDay:
    """One day of a market, times in epoch seconds (UTC)."""

    date: date  # the session's date: a daily bar's `time` is its 00:00 UTC
    start: int  # quotes start moving (pre-market's start for equities)
    end: int  # and stop (post-market's end); the next day starts at or after it
    open: int  # the regular session
    close: int

    @property
    def bar_time(self) -> int:
        """The daily bar's `time`: 00:00 UTC of the session's date (never shifted)."""
        return int(datetime.combine(self.date, time(0), tzinfo=UTC).timestamp())


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


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


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

    def __init__(self, calendar: str = "XNYS", *, always_open: bool = False) -> None:
        try:
            # Aliases ("NYSE") resolve to the MIC ("XNYS") so `market` is always the MIC.
            self._calendar: str = xcals.resolve_alias(calendar)
        except xcals.errors.InvalidCalendarName:
            raise ValueError(f"unknown exchange calendar {calendar!r}") from None
        self.always_open = always_open

    @property
    def calendar(self) -> str:
        return self._calendar

    def status(self, ticker: str, at: datetime | None = None) -> MarketSession:
        """The market status of `ticker` at `at` (default: now)."""
        moment = _utc(at)
        if self.always_open:
            return MarketSession(SIM, True, "regular", None, None)
        kind = asset_class(ticker)
        if kind == "crypto":
            return MarketSession(CRYPTO, True, "regular", None, None)
        if kind == "fx":
            return self._fx(moment)
        if kind == "future":
            return self._cme(moment)
        return self._equity(moment)

    def schedule(self, ticker: str, instrument_type: str | None = None) -> str:
        """The trading schedule (`trading_days`) of a ticker; `instrument_type` (the symbol
        directory's) tells an index, which trades its regular session only."""
        if self.always_open:
            return SIM
        kind = asset_class(ticker)
        if kind == "crypto" or instrument_type == "crypto":
            return CRYPTO
        if kind == "fx" or instrument_type == "fx":
            return FX
        if kind == "future" or instrument_type == "future":
            return CME
        if instrument_type == "index":
            return f"{self._calendar}:regular"
        return self._calendar

    def trading_days(self, schedule: str, first: float, last: float) -> list[TradingDay]:
        """The days of `schedule` whose window [start, end) meets [first, last] (epoch
        seconds), oldest first."""
        lo = datetime.fromtimestamp(first, UTC)
        hi = datetime.fromtimestamp(last, UTC)
        if schedule in (CRYPTO, SIM):
            return [_utc_day(day) for day in _dates(lo.date(), hi.date())]
        if schedule in (FX, CME):
            # A day starts the evening before its date: look one date further.
            days = [_weekly_day(schedule, day) for day in _dates(lo.date(), hi.date() + _DAY)]
            return [d for d in days if d is not None and d.end > first and d.start <= last]
        calendar, _, regular = schedule.partition(":")
        sessions = self._window(lo, calendar)
        if not sessions.covers(hi):
            sessions = _sessions(calendar, lo.year - 1, hi.year + 2)
        # Sessions whose post-market may still run at `first` (it ends 4 h after the close).
        i = bisect_right(sessions.closes, lo - _POST_LENGTH)
        out: list[TradingDay] = []
        while i < len(sessions.opens) and sessions.opens[i] - timedelta(hours=6) <= hi:
            open_, close = sessions.opens[i], sessions.closes[i]
            session_date = open_.astimezone(sessions.tz).date()
            if regular:
                start, end = _epoch(open_), _epoch(close)
            else:
                start = _epoch(_local_at(session_date, _PRE_OPEN, sessions.tz))
                end = _epoch(close + _POST_LENGTH)
            if end > first and start <= last:
                out.append(TradingDay(session_date, start, end, _epoch(open_), _epoch(close)))
            i += 1
        return out

    def trading_day(self, schedule: str, at: float) -> TradingDay | None:
        """The day of `schedule` trading at `at` (epoch seconds), or None when it is closed."""
        for day in self.trading_days(schedule, at, at):
            if day.start <= at < day.end:
                return day
        return None

    def current_day(self, schedule: str, at: float) -> TradingDay | None:
        """The day of `schedule` trading at `at`, or else the last one that ended before
        it: the day whose figures a quote shows at night, on a weekend or a holiday (its
        close is the last close; the day before it gives the previous close). None only
        when nothing traded in the ten days before `at`."""
        days = [d for d in self.trading_days(schedule, at - 10 * 86400, at) if d.start <= at]
        return days[-1] if days else None

    def previous_day(self, schedule: str, day: TradingDay) -> TradingDay:
        """The day of `schedule` before `day` (a holiday or weekend in between is skipped)."""
        earlier = self.trading_days(schedule, day.start - 10 * 86400, day.start - 1)
        earlier = [d for d in earlier if d.date < day.date]
        if not earlier:  # pragma: no cover - no market is closed for ten days
            raise ValueError(f"no trading day of {schedule} before {day.date}")
        return earlier[-1]

    def is_trading(self, ticker: str, at: datetime | None = None) -> bool:
        """Whether quotes can move (any session but closed): whether a live source polls."""
        return self.status(ticker, at).session != "closed"

    def _window(self, at: datetime, calendar: str | None = None) -> _Sessions:
        # The usual window spans last year to two years ahead of today; a moment outside it
        # (tests, replays of old files) gets its own window, also built once.
        calendar = calendar or self._calendar
        this_year = datetime.now(UTC).year
        sessions = _sessions(calendar, this_year - 1, this_year + 2)
        if sessions.covers(at):
            return sessions
        return _sessions(calendar, at.year - 1, at.year + 2)

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

    def _cme(self, at: datetime) -> MarketSession:
        # Like FX, holidays are ignored: Globex mostly trades them, with an early close.
        local = at.astimezone(_NEW_YORK)
        today = _weekly_day(CME, local.date())
        tomorrow = _weekly_day(CME, local.date() + _DAY)
        current = next(
            (d for d in (today, tomorrow) if d is not None and d.start <= at.timestamp() < d.end),
            None,
        )
        following = self.trading_days(CME, at.timestamp() + 1, at.timestamp() + 4 * 86400)
        upcoming = [d for d in following if d.start > at.timestamp()]
        next_open = datetime.fromtimestamp(upcoming[0].start, UTC) if upcoming else None
        ends = [d.end for d in (current, *upcoming) if d is not None]
        next_close = datetime.fromtimestamp(ends[0], UTC) if ends else None
        is_open = current is not None
        return MarketSession(
            CME, is_open, "regular" if is_open else "closed", next_open, next_close
        )


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _utc_day(day: date) -> TradingDay:
    start = _epoch(datetime.combine(day, time(0), tzinfo=UTC))
    return TradingDay(day, start, start + 86400, start, start + 86400)


def _weekly_day(schedule: str, day: date) -> TradingDay | None:
    """An FX or CME day: Monday to Friday, starting the evening before its date (New York
    time) and ending at 17:00 on it."""
    if day.weekday() >= 5:
        return None
    opens_at = _FX_ROLL if schedule == FX else _CME_OPEN
    start = _epoch(_local_at(day - _DAY, opens_at, _NEW_YORK))
    end = _epoch(_local_at(day, _FX_ROLL if schedule == FX else _CME_CLOSE, _NEW_YORK))
    return TradingDay(day, start, end, start, end)
