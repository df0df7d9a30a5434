"""Reading vendors' values at the edge: times to integer epoch nanoseconds, numbers to
exact decimals.

`datetime.fromisoformat` keeps microseconds only, and a float keeps ~15 digits: both lose
what vendors send (Alpaca's and Coinbase's timestamps carry nanoseconds; Coinbase sends
prices as decimal strings). So RFC 3339 fractions are split by hand, and JSON is read with
`parse_float=Decimal`, which keeps a number's digits exactly as they were written.
"""

from __future__ import annotations

import calendar
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


class BadValue(ValueError):
    """A vendor value that is not what its documentation says it is."""


# 2021-02-22T15:51:44.208Z, 2024-03-12T10:27:48.858228144Z, 2019-01-30T13:33:45.5-05:00
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$"
)


def rfc3339_ns(text: object) -> int:
    """Epoch nanoseconds of an RFC 3339 timestamp, its fraction kept to the nanosecond."""
    if not isinstance(text, str):
        raise BadValue(f"a timestamp must be a string, not {type(text).__name__}")
    match = _RFC3339.match(text.strip())
    if match is None:
        raise BadValue(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = (match.group(7) or "").ljust(9, "0")
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise BadValue(f"not a valid time: {text[:40]!r}")
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError) as exc:
        raise BadValue(f"not a valid time: {text[:40]!r}") from exc
    if match.group(9):  # an offset: local time minus offset is UTC
        offset = int(match.group(10)) * 3600 + int(match.group(11)) * 60
        seconds -= offset if match.group(9) == "+" else -offset
    return seconds * NS_PER_S + int(fraction)


def epoch_ns(value: object, unit: str) -> int:
    """An integer epoch in `unit` ("s", "ms", "us", "ns"), as a number or a string of
    digits (Coinbase's candle `start` is a string of seconds), to nanoseconds."""
    scale = {"s": NS_PER_S, "ms": NS_PER_MS, "us": 1000, "ns": 1}[unit]
    if isinstance(value, bool):
        raise BadValue("a timestamp is not a boolean")
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) * scale
    if isinstance(value, int):
        return value * scale
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value) * scale
    raise BadValue(f"not an epoch in {unit}: {str(value)[:40]!r}")


def decimal(value: object) -> Decimal:
    """An exact decimal from a JSON number (read as Decimal or int) or a decimal string."""
    if isinstance(value, bool):
        raise BadValue("a number is not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise BadValue(f"not a decimal number: {value[:40]!r}") from None
    else:
        # A float here means someone parsed the frame without parse_float=Decimal: its
        # digits are already gone, so refuse rather than pretend.
        raise BadValue(f"not an exact number: {type(value).__name__}")
    if not result.is_finite():
        raise BadValue(f"not a finite number: {value!r}")
    return result


def optional_decimal(value: object) -> Decimal | None:
    return None if value is None or value == "" else decimal(value)


def loads(text: str | bytes) -> Any:
    """JSON with every non-integer number as an exact Decimal."""
    return json.loads(text, parse_float=Decimal)


def to_float(value: Decimal | None) -> float | None:
    """The wire's JSON number: the nearest double, whose shortest repr is the decimal
    itself for up to 15 significant digits (every price and size vendors send)."""
    return None if value is None else float(value)
