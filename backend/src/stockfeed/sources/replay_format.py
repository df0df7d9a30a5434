"""The replay file format: read, validated, and written in one place (the replay source,
`stockfeed record` and the settings check at start-up all use it).

File format
-----------
JSON Lines (UTF-8), one tick per line::

    {"ticker":"EA","price":199.85,"market_time":1779782400000,"volume":0,
     "open":170.0712,"high":200.8117,"low":170.0712,"prev_close":null}

- `ticker` (string, a valid ticker; upper-cased), `price` (number > 0) and `market_time`
  (epoch milliseconds, integer) are required.
- `volume` (the ticker's cumulative volume of the day, integer >= 0), `open`, `high`, `low`,
  `prev_close`, `change` and `change_percent` (numbers) are optional; missing or `null`
  means the recording did not have them, and they are sent on as `null`. Other keys are
  ignored.
- Lines are sorted by `market_time` (ties allowed). Blank lines and lines starting with `#`
  are ignored.

The whole file is checked when the source is created: a malformed line raises `ValueError`
naming the file and the line number, so a bad recording fails at start-up, not mid-demo.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

from stockfeed.models import Tick
from stockfeed.tickers import InvalidTicker, normalize_ticker

_OPTIONAL_FLOATS = ("open", "high", "low", "prev_close", "change", "change_percent")


def format_line(tick: Tick) -> str:
    """One line of the format: the tick's fields, those it lacks (None) left out."""
    record: dict[str, object] = {
        "ticker": tick.ticker,
        "price": tick.price,
        "market_time": tick.market_time,
        "volume": tick.volume,
        "open": tick.open,
        "high": tick.high,
        "low": tick.low,
        "prev_close": tick.prev_close,
        "change": tick.change,
        "change_percent": tick.change_percent,
    }
    compact = {k: v for k, v in record.items() if v is not None}
    return json.dumps(compact, separators=(",", ":")) + "\n"


def load_jsonl(path: str | Path) -> list[Tick]:
    """Read and validate a replay file; raise ValueError naming the file and line on error."""
    path = Path(path)
    ticks: list[Tick] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read replay file: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: replay file is not UTF-8 text: {exc}") from exc
    previous_time: int | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            tick = _parse_line(stripped)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from None
        assert tick.market_time is not None
        if previous_time is not None and tick.market_time < previous_time:
            raise ValueError(
                f"{path}:{lineno}: market_time {tick.market_time} is earlier than the line "
                f"before ({previous_time}); lines must be sorted by market_time"
            )
        previous_time = tick.market_time
        ticks.append(tick)
    if not ticks:
        raise ValueError(f"{path}: replay file holds no ticks")
    return ticks


def _parse_line(line: str) -> Tick:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    for key in ("ticker", "price", "market_time"):
        if obj.get(key) is None:
            raise ValueError(f"missing required field {key!r}")
    try:
        ticker = normalize_ticker(obj["ticker"])
    except InvalidTicker as exc:
        raise ValueError(str(exc)) from None
    price = _number(obj, "price")
    assert price is not None
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    market_time = _integer(obj, "market_time")
    volume = _integer(obj, "volume")
    if volume is not None and volume < 0:
        raise ValueError(f"volume must not be negative, got {volume}")
    floats = {key: _number(obj, key) for key in _OPTIONAL_FLOATS}
    return Tick(
        ticker=ticker,
        price=price,
        market_time=market_time,
        volume=volume,
        open=floats["open"],
        high=floats["high"],
        low=floats["low"],
        prev_close=floats["prev_close"],
        change=floats["change"],
        change_percent=floats["change_percent"],
    )


def _number(obj: dict[str, object], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{key} must be finite, got {value!r}")
    return float(value)


def _integer(obj: dict[str, object], key: str) -> int | None:
    value = _number(obj, key)
    if value is None:
        return None
    if not value.is_integer():
        raise ValueError(f"{key} must be a whole number, got {obj[key]!r}")
    return int(value)


def write_jsonl(ticks: Iterable[Tick], path: str | Path, header: str | None = None) -> int:
    """Write ticks in the replay format (None fields left out); return how many were written.

    `header` lines are written first as `#` comments, e.g. to say where the data came from.
    """
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        if header:
            for line in header.splitlines():
                out.write(f"# {line}".rstrip() + "\n")
        for tick in ticks:
            out.write(format_line(tick))
            count += 1
    return count
