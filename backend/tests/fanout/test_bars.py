"""The bar book alone (fanout/bars.py): how updates fold into bars, deterministically."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stockfeed.fanout.bars import KEPT, BadBars, BarBook, parse_bars, rest_text, session_day

T0 = 1_764_101_220  # a minute boundary (2025-11-25 20:07:00 UTC)


def upd(seq: int, price: float, at_s: float, volume: int | None, **data: Any) -> dict[str, Any]:
    return {
        "type": "price_update",
        "ticker": "AAPL",
        "seq": seq,
        "timestamp": at_s * 1000 + 5,
        "data": {"price": price, "volume": volume, "market_time": int(at_s * 1000), **data},
    }


def bars(texts: list[str]) -> list[dict[str, Any]]:
    return [json.loads(t) for t in texts]


def test_updates_fold_into_bars_and_a_later_bucket_makes_the_bar_final() -> None:
    book = BarBook("AAPL", "1m")
    assert bars(book.apply(1, upd(1, 10.0, T0 + 1, 100))) == [
        {"time": T0, "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0, "volume": 0,
         "final": False},
    ]  # fmt: skip
    book.apply(2, upd(2, 11.0, T0 + 20, 130))
    assert bars(book.apply(3, upd(3, 9.5, T0 + 59, 150)))[0] == {
        "time": T0, "open": 10.0, "high": 11.0, "low": 9.5, "close": 9.5, "volume": 50,
        "final": False,
    }  # fmt: skip
    changed = bars(book.apply(4, upd(4, 9.75, T0 + 61, 175)))
    assert [b["final"] for b in changed] == [True, False]
    assert changed[0]["time"] == T0 and changed[0]["close"] == 9.5
    assert changed[1] == {
        "time": T0 + 60, "open": 9.75, "high": 9.75, "low": 9.75, "close": 9.75,
        "volume": 25, "final": False,
    }  # fmt: skip
    assert book.seq == 4
    assert [b["time"] for b in bars(book.texts())] == [T0, T0 + 60]


def test_no_trade_no_bar_and_no_flat_bars_for_empty_buckets() -> None:
    book = BarBook("AAPL", "1m")
    book.apply(1, upd(1, 10.0, T0 + 1, 100))
    # A repeated quote (a poll of the same trade) changes nothing: no bar, even in a new bucket.
    assert book.apply(2, upd(2, 10.0, T0 + 70, 100)) == []
    assert book.seq == 2
    # Ten minutes without updates: no bars for them.
    book.apply(3, upd(3, 10.5, T0 + 660, 120))
    assert [b["time"] for b in bars(book.texts())] == [T0, T0 + 660]


def test_volume_is_the_sum_of_cumulative_differences_and_survives_a_day_restart() -> None:
    book = BarBook("AAPL", "5m")
    book.apply(1, upd(1, 10.0, T0, 1_000))
    book.apply(2, upd(2, 10.1, T0 + 10, 1_250))
    book.apply(3, upd(3, 10.2, T0 + 20, 40))  # the day's count started again: 40 traded
    assert bars(book.texts())[-1]["volume"] == 250 + 40


def test_volume_is_null_when_the_source_has_none() -> None:
    book = BarBook("AAPL", "1m")
    book.apply(1, upd(1, 10.0, T0, None))
    book.apply(2, upd(2, 10.0, T0 + 5, None))  # same price, unknown volume: still a quote
    assert bars(book.texts())[-1]["volume"] is None


def test_late_data_goes_into_the_forming_bar_and_a_final_bar_never_changes() -> None:
    book = BarBook("AAPL", "1m")
    book.apply(1, upd(1, 10.0, T0 + 1, 100))
    book.apply(2, upd(2, 11.0, T0 + 65, 110))
    final = book.finals[-1]
    changed = bars(book.apply(3, upd(3, 12.0, T0 + 30, 120)))  # a quote from the first minute
    assert changed == [
        {"time": T0 + 60, "open": 11.0, "high": 12.0, "low": 11.0, "close": 12.0,
         "volume": 20, "final": False},
    ]  # fmt: skip
    assert book.finals[-1] == final


def test_market_time_missing_buckets_by_timestamp_and_no_price_is_skipped() -> None:
    book = BarBook("AAPL", "1m")
    update = upd(1, 10.0, T0 + 3, 1)
    del update["data"]["market_time"]
    assert bars(book.apply(1, update))[0]["time"] == T0
    assert book.apply(2, {"type": "price_update", "seq": 2, "data": {"price": None}}) == []
    assert book.seq == 2


def test_only_the_newest_bars_are_kept() -> None:
    book = BarBook("AAPL", "1m")
    for i in range(KEPT + 30):
        book.apply(i + 1, upd(i + 1, 10.0 + i, T0 + 60 * i, 100 + i))
    kept = bars(book.texts())
    assert len(kept) == KEPT
    assert kept[-1]["time"] == T0 + 60 * (KEPT + 29) and not kept[-1]["final"]
    assert all(b["final"] for b in kept[:-1])


def test_a_checkpoint_reads_back_to_the_same_book_byte_for_byte() -> None:
    book = BarBook("AAPL", "1m")
    for i in range(1, 200):
        book.apply(i, upd(i, 100 + (i % 7) * 0.01, T0 + 17 * i, 1000 + 3 * i))
    copy = BarBook.from_checkpoint("AAPL", "1m", book.checkpoint())
    assert copy is not None and copy.texts() == book.texts() and copy.seq == book.seq
    # And both fold on identically.
    for i in range(200, 260):
        u = upd(i, 101 + (i % 5) * 0.01, T0 + 17 * i, 1000 + 3 * i)
        assert copy.apply(i, u) == book.apply(i, u)
    assert copy.checkpoint() == book.checkpoint()
    assert BarBook.from_checkpoint("AAPL", "1m", "not json") is None
    assert BarBook.from_checkpoint("AAPL", "1m", '{"seq":1,"bars":[{"time":"x"}]}') is None


def test_scratch_takes_the_source_history_before_the_updates_and_merges_their_bucket() -> None:
    base = [
        {"time": T0 - 120, "open": 9.0, "high": 9.5, "low": 8.9, "close": 9.2, "volume": 500},
        {"time": T0 - 60, "open": 9.2, "high": 9.8, "low": 9.1, "close": 9.7, "volume": 600},
        {"time": T0, "open": 9.7, "high": 9.9, "low": 9.6, "close": 9.8, "volume": 300},
        {"time": T0 + 60, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1},
    ]
    run = [(7, upd(7, 10.0, T0 + 30, 5_000)), (8, upd(8, 9.5, T0 + 40, 5_100)),
           (9, upd(9, 9.6, T0 + 70, 5_150))]  # fmt: skip
    book = BarBook.scratch("AAPL", "1m", base, run)
    got = bars(book.texts())
    assert got[0] == {**base[0], "final": True} and got[1] == {**base[1], "final": True}
    # The bucket the updates start in: the source's bar (and its volume), their prices on top.
    assert got[2] == {"time": T0, "open": 9.7, "high": 10.0, "low": 9.5, "close": 9.5,
                      "volume": 300, "final": True}  # fmt: skip
    # Buckets the updates cover entirely are theirs alone (the source's later bar is not used).
    assert got[3] == {"time": T0 + 60, "open": 9.6, "high": 9.6, "low": 9.6, "close": 9.6,
                      "volume": 50, "final": False}  # fmt: skip
    assert book.seq == 9
    # No update yet: the source's newest bar is the forming one.
    only = bars(BarBook.scratch("AAPL", "1m", base[:3], []).texts())
    assert [b["final"] for b in only] == [True, True, False]


def test_daily_bars_are_dated_by_the_session() -> None:
    # 2025-11-25 02:00 UTC is still Monday 24 Nov in New York.
    at = 1_764_036_000
    assert session_day("AAPL", at)[0] == 1_763_942_400  # 2025-11-24 00:00 UTC
    assert session_day("BTC-USD", at)[0] == 1_764_028_800  # the UTC date: 25 Nov
    # FX's day rolls at 17:00 New York: 22:30 UTC on Monday 24 Nov is Tuesday's session.
    assert session_day("EURUSD=X", 1_764_023_400)[0] == 1_764_028_800
    book = BarBook("AAPL", "1d")
    first = bars(book.apply(1, upd(1, 190.0, at, 12_000, open=188.0, high=191.0, low=187.0)))
    # The day's fields carry the session so far (ticks before this process saw any).
    assert first[0] == {"time": 1_763_942_400, "open": 188.0, "high": 191.0, "low": 187.0,
                        "close": 190.0, "volume": 12_000, "final": False}  # fmt: skip


def test_a_daily_bar_with_sessions_is_the_regular_sessions() -> None:
    # Tuesday 2025-11-25 in New York (EST: 04:00 = 09:00Z, 09:30 = 14:30Z, 16:00 = 21:00Z).
    day = 1_764_028_800  # 2025-11-25 00:00 UTC, the session's date
    pre, open_, late, after = (
        day + 9 * 3600 + 60,
        day + 14 * 3600 + 1800,
        day + 20 * 3600 + 3540,
        day + 22 * 3600,
    )
    book = BarBook("AAPL", "1d")
    assert book.apply(1, upd(1, 251.0, pre, 1_000, session="pre")) == []
    assert book.apply(2, upd(2, 252.5, pre + 60, 1_500, session="pre")) == []
    first = bars(book.apply(3, upd(3, 253.0, open_, 2_500, session="regular")))
    # Pre-market trades are not in it (their 1,500 shares neither).
    assert first == [{"time": day, "open": 253.0, "high": 253.0, "low": 253.0, "close": 253.0,
                      "volume": 1_000, "final": False}]  # fmt: skip
    book.apply(4, upd(4, 254.5, late, 9_000, session="regular"))  # 15:59: the close
    assert book.apply(5, upd(5, 256.0, after, 9_400, session="post")) == []
    assert book.apply(6, upd(6, 249.0, after + 600, 9_900, session="post")) == []
    (bar,) = bars(book.texts())
    assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]) == (
        253.0, 254.5, 253.0, 254.5, 7_500,
    ), "the regular close, and neither the after-hours high, low nor volume"  # fmt: skip
    # Without `session` (a publisher of its own feed), every update counts, as in v1.1.
    plain = BarBook("AAPL", "1d")
    plain.apply(1, upd(1, 253.0, open_, 2_500))
    plain.apply(2, upd(2, 256.0, after, 9_400))
    assert bars(plain.texts())[0]["close"] == 256.0


def test_rest_text_is_the_bar_without_final() -> None:
    book = BarBook("AAPL", "1m")
    book.apply(1, upd(1, 10.0, T0 + 1, 100))
    ((time, text),) = book.rest_bars()
    assert time == T0
    assert json.loads(text) == {
        "time": T0, "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0, "volume": 0
    }  # fmt: skip
    assert rest_text('{"time":1,"final":true}') == '{"time":1}'


def test_parse_bars() -> None:
    assert parse_bars(None) == ()
    assert parse_bars(["1m", "5m", "1m"]) == ("1m", "5m")
    for bad in ("1m", ["2m"], [1], ["1M"]):
        with pytest.raises(BadBars):
            parse_bars(bad)
