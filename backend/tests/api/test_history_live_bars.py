"""`GET /api/history` ends with the process's own bars where it builds them
(bar_history.py `with_live_bars`): the answer's bytes are spliced, not re-encoded."""

from __future__ import annotations

import json
import time

from stockfeed.bar_history import encode, with_live_bars
from stockfeed.fanout.bars import bar_text, rest_text
from stockfeed.models import Bar


def live(*bars: tuple[int, float]) -> list[tuple[int, str]]:
    return [(t, rest_text(bar_text(t, c, c, c, c, 7, t == bars[-1][0]))) for t, c in bars]


async def test_the_book_replaces_the_source_from_its_first_bar_on() -> None:
    source = [Bar(t, 1.0, 1.0, 1.0, 1.0, 1) for t in (0, 60, 120, 180)]
    body = await encode("AAPL", "1m", source)
    merged = json.loads(with_live_bars(body, live((120, 5.0), (240, 6.0)), 0))
    assert merged["ticker"] == "AAPL" and merged["interval"] == "1m"
    assert [(b["time"], b["close"]) for b in merged["bars"]] == [
        (0, 1.0), (60, 1.0), (120, 5.0), (240, 6.0)
    ]  # fmt: skip
    assert set(merged["bars"][-1]) == {"time", "open", "high", "low", "close", "volume"}
    # The book is the truth over its whole span (a minute without trades has no bar, even
    # where the source had one), but bars older than the answer's range are left out.
    clipped = json.loads(with_live_bars(body, live((-60, 4.0), (60, 5.0)), 0))
    assert [b["time"] for b in clipped["bars"]] == [60]
    # An answer without bars: the book's bars of the range (the last day here).
    empty = await encode("AAPL", "1m", [])
    now = int(time.time()) // 60 * 60
    old = now - 2 * 86400
    day = now - 86400
    only = json.loads(with_live_bars(empty, live((old, 3.0), (now - 60, 4.0), (now, 5.0)), day))
    assert [b["time"] for b in only["bars"]] == [now - 60, now]
