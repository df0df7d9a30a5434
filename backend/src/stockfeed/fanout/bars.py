"""Candles from the price stream: one `BarBook` per (ticker, interval), folded update by
update in `seq` order. Pure and deterministic, nothing of asyncio: the same updates
folded onto the same state give the same bars, byte for byte, on every process.

The rules (docs/protocol.md#bars):

- A bar's bucket is its update's `data.market_time` (else its `timestamp`) floored to the
  interval, aligned to the epoch in UTC; a `1d` bar's `time` is 00:00 UTC of the
  session's date (New York's date for equities, FX's day rolling at 17:00 New York, the
  UTC date for crypto).
- `volume` is the sum of the differences of cumulative day volume between consecutive
  seqs (a drop means the day's count restarted: the new count is the delta). Null while
  the source has no volume.
- An update that changes neither price nor volume is no trade: no bar. A bucket without
  an update has no bar (no flat bars invented).
- A `1d` bar of an instrument with sessions (an update with `data.session`) is its
  regular session's, as quote sites draw daily candles: pre- and post-market updates
  change no daily bar (their volume is counted in no daily bar either), so its close is
  the regular close.
- A bar is `final` once an update lands in a later bucket; data older than the forming
  bar (a late quote) goes into the forming bar, so a final bar never changes.
- At most `KEPT` bars are kept: the forming one and the newest finals.

A book can be written out (`checkpoint`) and read back (`from_checkpoint`) exactly: that
is how every process of a deployment starts from the same state (fanout/bar_feed.py).
"""

from __future__ import annotations

import calendar
import json
import math
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from stockfeed.protocol.messages import dumps
from stockfeed.sources.base import INTERVAL_SECONDS, INTERVALS
from stockfeed.tickers import asset_class

# Bars kept per book, the forming one included: what a `bars` message holds. 120 is two
# hours of 1m bars, ten of 5m, a week of 1h; a chart reads older ones over REST.
KEPT = 120
_NEW_YORK = ZoneInfo("America/New_York")
_FX_ROLL = 7 * 3600  # FX's trading day starts at 17:00 New York: shift by 7 h to its date
# Sessions (`data.session`) whose updates are in no daily bar.
_OUTSIDE_REGULAR = frozenset({"pre", "post", "closed"})


class BadBars(ValueError):
    """The `bars` of a subscribe are malformed: the message says how."""


def parse_bars(value: object) -> tuple[str, ...]:
    """The intervals a subscribe asks bars for (`None`: none), in order, without repeats."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadBars('bars must be a list of intervals, like ["1m","5m"]')
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or item not in INTERVAL_SECONDS:
            shown = repr(item)[:20]
            raise BadBars(f"bars: unknown interval {shown}: use {', '.join(INTERVALS)}")
        if item not in out:
            out.append(item)
    return tuple(out)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def session_day(ticker: str, epoch_s: float) -> tuple[int, float, float]:
    """(the `1d` bar's time, start, end): 00:00 UTC of the session's date, and the span of
    epoch seconds whose bar that is."""
    kind = asset_class(ticker)
    if kind == "crypto":
        day = int(epoch_s // 86400) * 86400
        return day, float(day), float(day + 86400)
    shift = _FX_ROLL if kind == "fx" else 0
    date = datetime.fromtimestamp(epoch_s + shift, _NEW_YORK).date()
    start = datetime.combine(date, clock_time(), _NEW_YORK).timestamp() - shift
    end = datetime.combine(date + timedelta(days=1), clock_time(), _NEW_YORK).timestamp() - shift
    return calendar.timegm(date.timetuple()), start, end


def bar_text(
    time: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: int | None,
    final: bool,
) -> str:
    """One BAR as it goes on the wire: a REST history bar plus `final`."""
    return dumps(
        {
            "time": time,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "final": final,
        }
    )


def rest_text(text: str) -> str:
    """A wire BAR without `final`: the REST history bar of the same time, same bytes."""
    return text[: text.rindex(',"final":')] + "}"


class Forming:
    """The bar being built (the only mutable one: finals are kept as their text)."""

    __slots__ = ("close", "high", "low", "open", "time", "volume")

    def __init__(
        self, time: int, open_: float, high: float, low: float, close: float, volume: int | None
    ) -> None:
        self.time = time
        self.open = open_
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume

    def text(self, final: bool) -> str:
        return bar_text(self.time, self.open, self.high, self.low, self.close, self.volume, final)


class BarBook:
    """The bars of one ticker and interval, as of update `seq`."""

    __slots__ = (
        "_day",
        "finals",
        "forming",
        "interval",
        "price",
        "seq",
        "step",
        "ticker",
        "volume",
    )

    def __init__(self, ticker: str, interval: str) -> None:
        self.ticker = ticker
        self.interval = interval
        self.step = INTERVAL_SECONDS[interval]
        self.seq = 0  # the last update folded (0: none yet)
        self.volume: int | None = None  # cumulative day volume at `seq`
        self.price: float | None = None  # price at `seq`
        self.finals: deque[str] = deque(maxlen=KEPT - 1)  # texts, oldest first
        self.forming: Forming | None = None
        self._day: tuple[int, float, float] | None = None  # cache of session_day

    # -- folding ---------------------------------------------------------------------

    def bucket(self, epoch_s: float) -> int:
        if self.interval != "1d":
            return int(epoch_s // self.step) * self.step
        day = self._day
        if day is None or not day[1] <= epoch_s < day[2]:
            day = self._day = session_day(self.ticker, epoch_s)
        return day[0]

    def apply(self, seq: int, update: dict[str, Any], *, count_volume: bool = True) -> list[str]:
        """Fold one update (the next seq); the BAR texts it changed, in order: the bar it
        made final, then the forming one. [] when it traded nothing."""
        changed, closed = self.fold(seq, update, count_volume=count_volume)
        if not changed:
            return []
        out: list[str] = []
        if closed is not None:
            final = closed.text(True)
            self.finals.append(final)
            out.append(final)
        forming = self.forming
        assert forming is not None
        out.append(forming.text(False))
        return out

    def continue_from(self, update: dict[str, Any]) -> None:
        """Take the price and cumulative volume of an update as the last ones folded (a
        book that goes on from a kept state: the next update's volume is counted from
        there), without folding it."""
        data = update.get("data")
        if isinstance(data, dict):
            self.volume = _count(data.get("volume"))
            self.price = _number(data.get("price"))

    def fold(
        self, seq: int, update: dict[str, Any], *, count_volume: bool = True
    ) -> tuple[bool, Forming | None]:
        """`apply` without the texts: (whether a bar changed, the bar it made final).
        The market-data store's fold (kept/keeper.py) uses it: it keeps no texts, and
        writes its bars out in batches."""
        self.seq = seq
        data = update.get("data")
        if not isinstance(data, dict):
            return False, None
        price = _number(data.get("price"))
        when = update_time(update)
        if price is None or when is None:
            return False, None
        volume = _count(data.get("volume"))
        before_volume, before_price = self.volume, self.price
        self.volume, self.price = volume, price
        if self.interval == "1d" and data.get("session") in _OUTSIDE_REGULAR:
            return False, None  # a daily bar is the regular session's
        delta: int | None = None
        if volume is not None:
            if before_volume is None:
                delta = 0  # where the count stood before is unknown
            else:
                delta = volume - before_volume if volume >= before_volume else volume
        if delta == 0 and price == before_price:
            return False, None  # no trade, no bar
        if not count_volume and delta is not None:
            delta = 0
        bucket = self.bucket(when)
        bar = self.forming
        if bar is not None and bucket <= bar.time:
            bar.high = max(bar.high, price)
            bar.low = min(bar.low, price)
            bar.close = price
            if delta is not None:
                bar.volume = delta if bar.volume is None else bar.volume + delta
            return True, None
        closed = bar
        bar = self.forming = Forming(bucket, price, price, price, price, delta)
        if (
            self.interval == "1d"
            and volume is not None
            and (before_volume is None or volume < before_volume)
        ):
            # The source's day restarted here (or is first seen): its day fields are this
            # session's so far, ticks before the first one we saw included.
            bar.open = _number(data.get("open")) or price
            bar.high = max(price, _number(data.get("high")) or price)
            bar.low = min(price, _number(data.get("low")) or price)
            bar.volume = volume
        return True, closed

    # -- reading -----------------------------------------------------------------------

    def texts(self) -> list[str]:
        """Every kept BAR text, oldest first, ending with the forming one."""
        out = list(self.finals)
        if self.forming is not None:
            out.append(self.forming.text(False))
        return out

    def rest_bars(self) -> list[tuple[int, str]]:
        """(time, REST bar text) of every kept bar, oldest first."""
        # Every text starts `{"time":N,` (bar_text's key order).
        return [(int(t[8 : t.index(",")]), rest_text(t)) for t in self.texts()]

    # -- one state for every process ---------------------------------------------------

    def checkpoint(self) -> str:
        state = {"seq": self.seq, "volume": self.volume, "price": self.price}
        head = dumps(state)
        return head[:-1] + ',"bars":[' + ",".join(self.texts()) + "]}"

    @classmethod
    def from_checkpoint(cls, ticker: str, interval: str, text: str) -> BarBook | None:
        """The book a checkpoint describes; None when it is not one."""
        try:
            state = json.loads(text)
            book = cls(ticker, interval)
            seq = _count(state["seq"])
            if seq is None or seq < 0:
                return None
            book.seq = seq
            book.volume = _count(state.get("volume"))
            book.price = _number(state.get("price"))
            bars = state["bars"]
            for i, bar in enumerate(bars):
                values = bar_values(bar)
                if values is None:
                    return None
                if i == len(bars) - 1 and bar.get("final") is False:
                    book.forming = Forming(*values)
                else:
                    book.finals.append(bar_text(*values, True))
            return book
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    @classmethod
    def scratch(
        cls,
        ticker: str,
        interval: str,
        base: Iterable[dict[str, Any]],
        run: Sequence[tuple[int, dict[str, Any]]],
    ) -> BarBook:
        """A first book: the source's history bars (`base`, REST shape) up to where the
        updates (`run`, consecutive seqs) begin, then the updates folded on top. The
        bucket the updates begin in is only partly covered by them: it starts from the
        source's bar (its volume as the source counted it), updated by their prices."""
        book = cls(ticker, interval)
        first = None
        for _, update in run:
            when = update_time(update)
            if when is not None:
                first = book.bucket(when)
                break
        history = sorted(
            (values for values in map(bar_values, base) if values is not None),
            key=lambda values: values[0],
        )
        for values in history:
            if first is not None and values[0] > first:
                break
            if first is not None and values[0] == first:
                book.forming = Forming(*values)
                break
            book.finals.append(bar_text(*values, True))
        if not run and book.finals:
            # No update yet: the source's newest bar may still be forming.
            newest = bar_values(json.loads(book.finals.pop()))
            assert newest is not None
            book.forming = Forming(*newest)
        seeded = book.forming.time if book.forming is not None else None
        for seq, update in run:
            # The source's bar counted the volume of the updates in its bucket already.
            when = update_time(update)
            forming = book.forming
            in_seeded = (
                seeded is not None
                and forming is not None
                and forming.time == seeded
                and when is not None
                and book.bucket(when) <= seeded
            )
            book.apply(seq, update, count_volume=not in_seeded)
        return book


def newest_time(interval: str, now: float) -> int:
    """The newest bar time there can be at `now`: the bucket forming now; for `1d` the next
    UTC date (a session's date can be ahead of UTC: FX's starts the evening before, and the
    24-hour simulator's days are UTC dates while a book's are the exchange's)."""
    if interval == "1d":
        return int(now // 86400) * 86400 + 86400
    step = INTERVAL_SECONDS[interval]
    return int(now // step) * step


def update_time(update: dict[str, Any]) -> float | None:
    """Epoch seconds an update buckets by: `data.market_time`, else `timestamp`."""
    data = update.get("data")
    when = _number(data.get("market_time")) if isinstance(data, dict) else None
    if when is None:
        when = _number(update.get("timestamp"))
    return None if when is None else when / 1000.0


def bar_values(bar: object) -> tuple[int, float, float, float, float, int | None] | None:
    """(time, open, high, low, close, volume) of a bar object, or None when malformed."""
    if not isinstance(bar, dict):
        return None
    time = _count(bar.get("time"))
    prices = [_number(bar.get(k)) for k in ("open", "high", "low", "close")]
    volume = bar.get("volume")
    if time is None or any(p is None for p in prices):
        return None
    count = None if volume is None else _count(volume)
    if volume is not None and count is None:
        return None
    open_, high, low, close = prices  # as parsed: ints stay ints, so the text is the same
    assert open_ is not None and high is not None and low is not None and close is not None
    return time, open_, high, low, close, count
