"""Fresh ticker names for each measurement, so no cache or seq of an earlier run interferes.

Names look like `BT` + a run tag + a counter + `.` + index (e.g. `BTK3F90A.7`): valid tickers
(1-15 of A-Z 0-9 . - = ^), unique per run and per measurement.
"""

from __future__ import annotations

import re
import time

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALID = re.compile(r"^[A-Z0-9.\-=^]{1,15}$")


def _base36(value: int, width: int) -> str:
    out = ""
    for _ in range(width):
        value, digit = divmod(value, 36)
        out = _DIGITS[digit] + out
    return out


class TickerNames:
    def __init__(self) -> None:
        self.tag = _base36(int(time.time()), 4)
        self.count = 0

    def fresh(self, k: int) -> list[str]:
        prefix = f"BT{self.tag}{_base36(self.count, 2)}."
        self.count += 1
        names = [f"{prefix}{i}" for i in range(k)]
        for name in names:
            if not _VALID.match(name):
                raise ValueError(f"{name!r} is not a valid ticker: use fewer tickers")
        return names
