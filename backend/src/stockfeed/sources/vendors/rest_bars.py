"""Vendors' REST bars as /api/history serves them, shared by the plugins whose vendors
stamp bars with their start (Alpaca, Massive): `time` the bucket start in epoch seconds,
and for `1d` 00:00 UTC of the session's date (vendors stamp days at 00:00 New York or
04:00Z, which is the day before in UTC)."""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Any

from stockfeed.models import Bar
from stockfeed.sources.last_price import day_key
from stockfeed.sources.wire_values import NS_PER_S, decimal

_HALF_DAY_S = 43200


def session_date(ticker: str, day_start_ns: int) -> str:
    """The session date (ISO) of a vendor's day bar starting at `day_start_ns`: the date
    at its midday, whatever hour of its day the vendor stamped it at."""
    return day_key(ticker, day_start_ns // NS_PER_S + _HALF_DAY_S)


def rest_bar(ticker: str, interval: str, start_ns: int, raw: dict[str, Any]) -> Bar:
    """A bar with the vendor's `o`, `h`, `l`, `c`, `v` (Alpaca's and Massive's keys)."""
    seconds = start_ns // NS_PER_S
    if interval == "1d":
        day = datetime.strptime(session_date(ticker, start_ns), "%Y-%m-%d")
        seconds = calendar.timegm(day.timetuple())
    volume = decimal(raw["v"])
    return Bar(
        time=seconds,
        open=float(decimal(raw["o"])),
        high=float(decimal(raw["h"])),
        low=float(decimal(raw["l"])),
        close=float(decimal(raw["c"])),
        volume=int(volume) if volume == volume.to_integral_value() else float(volume),
    )
