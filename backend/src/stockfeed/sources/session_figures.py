"""Session-true figures (protocol v1.2) for instruments with a regular session and pre-
and post-market around it (US equities, ETFs, indices), stamped on every update by the
updater, whatever the source:

- A trading day runs from its pre-market's start (04:00 New York) to its post-market's
  end (market_hours.TradingDay). Between two days (the night, a weekend, a holiday) the
  figures are still the last day's: at 03:00 on a Monday, Friday's.
- `session`: where the quote's own time (`market_time`, else now) falls: `pre`,
  `regular`, `post`, or `closed` (after the post-market, before the next day).
- `prev_close`: the regular close of the trading day before the quote's, the same at
  every hour of that day, so that `change` (price - prev_close) is what quote sites show
  before the open, during the session and after hours. The source's value is taken as
  long as the day's regular session has not closed (sources give it when the day
  starts: the simulator, Yahoo, a vendor's daily close); after the close the one held
  stays, so a source that rebases its after-hours change on today's close (whose
  price - change is then today's close) cannot move it. A source that gives none (or
  still gives the day before's for a moment: a vendor fetches the new one a few seconds
  into the day) gets the regular close the updater saw itself the day before.
- `regular_close`: once the day's regular session has closed, its close: the source's
  where it says (the simulator, Yahoo's chart), else the last price seen in the regular
  session, provided the updater saw the session end.

Crypto, FX and futures have no such sessions (nor a simulator run without market hours):
their updates are left as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from stockfeed.market_hours import MarketClock, Session, TradingDay
from stockfeed.models import Tick

# Tickers tracked at most; past it the least recently seen half is forgotten (their next
# update starts from what its source says, which is all a new ticker has anyway).
MAX_TRACKED = 20_000


@dataclass(slots=True)
class _Track:
    schedule: str
    day: TradingDay | None = None
    until: float = 0.0  # the next trading day's start: [day.start, until) is `day`'s
    prev_close: float | None = None  # held for `day`
    # The day before's prev_close: a source still giving it at the next day's start
    # (a vendor's previous close is fetched again a few seconds after it) is not heard.
    outdated: float | None = None
    source_close: float | None = None  # the source's regular close of `day`
    regular_last: float | None = None  # the last price seen in `day`'s regular session
    seen_close: float | None = None  # regular_last once a quote after the close came
    closes: dict[date, float] = field(default_factory=dict)  # seen regular closes


class SessionFigures:
    def __init__(self, clock: MarketClock, now: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._now = now
        self._tracks: dict[str, _Track | None] = {}  # None: not session-bound
        # Per schedule, the last trading day worked out (with its span's end and the day
        # before it): every ticker of that schedule rolls into the same day.
        self._spans: dict[str, tuple[TradingDay, float, TradingDay]] = {}

    def forget(self, keep: frozenset[str]) -> None:
        self._tracks = {t: s for t, s in self._tracks.items() if t in keep}

    def _track(self, ticker: str) -> _Track | None:
        try:
            return self._tracks[ticker]
        except KeyError:
            pass
        schedule = self.clock.schedule(ticker)
        bound = schedule == self.clock.calendar or schedule.endswith(":regular")
        if len(self._tracks) >= MAX_TRACKED:
            for old in list(self._tracks)[: MAX_TRACKED // 2]:
                del self._tracks[old]
        track = self._tracks[ticker] = _Track(schedule) if bound else None
        return track

    def stamp(self, tick: Tick) -> None:
        """Set `session`, `prev_close` and `regular_close` of a session-bound ticker's
        update (in place); anything else is left as it is."""
        track = self._track(tick.ticker)
        if track is None:
            return
        at = tick.market_time / 1000 if tick.market_time is not None else self._now()
        day = track.day
        if day is not None and at < day.start:
            self._older(track, tick, at)  # a late quote of a day before: it changes nothing
            return
        if day is None or at >= track.until:
            day = self._roll(track, at)
            if day is None:
                return
        session = _session(day, at)
        if session == "regular":
            track.regular_last = tick.price
        closed = at >= day.close
        if closed and track.seen_close is None and track.regular_last is not None:
            track.seen_close = track.regular_last
        given = tick.prev_close
        if given is not None and given != track.outdated:
            if not closed or track.prev_close is None:
                track.prev_close = given
        if track.prev_close is not None:
            tick.prev_close = track.prev_close
        if closed:
            if tick.regular_close is not None:
                track.source_close = tick.regular_close
            tick.regular_close = (
                track.source_close if track.source_close is not None else track.seen_close
            )
        else:
            tick.regular_close = None
        tick.session = session

    def _older(self, track: _Track, tick: Tick, at: float) -> None:
        """A quote of an earlier trading day than the one held (a poll answering with the
        last session's close while the stream is in today's pre-market): its session by
        its own time, its figures as its source gave them."""
        day = self.clock.current_day(track.schedule, at)
        if day is None:
            return
        tick.session = _session(day, at)
        if at < day.close:
            tick.regular_close = None

    def _span(self, schedule: str, at: float) -> tuple[TradingDay, float, TradingDay] | None:
        """The trading day `at` belongs to, the start of the next one, and the day before."""
        found = self._spans.get(schedule)
        if found is not None and found[0].start <= at < found[1]:
            return found
        day = self.clock.current_day(schedule, at)
        if day is None:
            return None
        following = self.clock.trading_days(schedule, at, at + 10 * 86400)
        starts = [d.start for d in following if d.start > at]
        span = (
            day,
            float(starts[0]) if starts else at + 86400.0,
            self.clock.previous_day(schedule, day),
        )
        self._spans[schedule] = span
        return span

    def _roll(self, track: _Track, at: float) -> TradingDay | None:
        """The quote is of another trading day than the last one: start that day's."""
        span = self._span(track.schedule, at)
        if span is None:
            track.day = None
            return None
        day, until, previous = span
        before = track.day
        if before is not None:
            close = track.source_close if track.source_close is not None else track.seen_close
            if close is not None:
                track.closes[before.date] = close
                while len(track.closes) > 3:
                    del track.closes[min(track.closes)]
        if before is not None and day.date > before.date:
            track.outdated = track.prev_close
        else:
            track.outdated = None
        track.day = day
        track.until = until
        track.source_close = track.regular_last = track.seen_close = None
        track.prev_close = track.closes.get(previous.date)
        return day


def _session(day: TradingDay, at: float) -> Session:
    """The session of `day` that `at` (at or after the day's start) falls in."""
    if at < day.open:
        return "pre"
    if at < day.close:
        return "regular"
    if at < day.end:
        return "post"
    return "closed"
