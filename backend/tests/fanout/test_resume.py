"""Resume history (one byte budget for the whole process), the replay rule, and the
parsing of a subscribe's `resume` object."""

from __future__ import annotations

import pytest

from stockfeed.fanout.resume import (
    ENTRY_OVERHEAD,
    BadResume,
    Entry,
    History,
    ResumePoint,
    parse_resume,
    replay_after,
)

FRAME = b"\x81\x4e" + b"x" * 78  # 80 bytes: each kept entry costs 200
COST = len(FRAME) + ENTRY_OVERHEAD


def fill(history: History, ticker: str, seqs: range) -> None:
    ring = history.get(ticker) or history.open(ticker)
    for seq in seqs:
        history.append(ring, seq, FRAME)


def seqs(history: History, ticker: str) -> list[int]:
    ring = history.get(ticker)
    return [] if ring is None else [e.seq for e in ring.entries]


def consistent(history: History) -> bool:
    rings = history.rings.values()
    return all(r.nbytes == COST * len(r.entries) for r in rings) and history.nbytes == sum(
        r.nbytes for r in rings
    )


# -- History -------------------------------------------------------------------------------


def test_history_keeps_at_most_per_ticker_updates() -> None:
    history = History(10**9, per_ticker=3)
    fill(history, "AAPL", range(1, 6))
    assert seqs(history, "AAPL") == [3, 4, 5]
    assert history.nbytes == 3 * COST and consistent(history)


def test_history_stores_each_update_once_as_its_frame() -> None:
    history = History(10**9, per_ticker=10)
    ring = history.open("AAPL")
    frame = b"\x81\x05hello"
    history.append(ring, 1, frame)
    (entry,) = ring.entries
    assert entry.frame is frame and entry.text == "hello"
    assert tuple(entry) == (1, frame)  # nothing else kept beside the frame
    assert history.nbytes == len(frame) + ENTRY_OVERHEAD


def test_history_sheds_unwatched_tickers_first_least_recently_watched_first() -> None:
    history = History(max_bytes=10 * COST, per_ticker=100)  # sheds down to 9 entries
    for t in ("AAA", "BBB", "CCC"):
        history.open(t)
        history.watched(t, active=True)
    history.watched("AAA", active=False)  # left first: least recently watched
    history.watched("BBB", active=False)
    fill(history, "AAA", range(1, 4))
    fill(history, "BBB", range(1, 4))
    fill(history, "CCC", range(1, 5))  # 10 entries: at the budget
    assert history.shed == 0
    fill(history, "CCC", range(5, 6))  # 11: over it
    assert history.nbytes <= 9 * COST
    assert seqs(history, "AAA") == [3]  # the oldest entries of the least recently watched
    assert seqs(history, "BBB") == [1, 2, 3]
    assert seqs(history, "CCC") == [1, 2, 3, 4, 5]  # watched: untouched
    assert history.shed == 2 and consistent(history)


def test_history_sheds_watched_tickers_above_their_share_after_unwatched_ones() -> None:
    history = History(max_bytes=10 * COST, per_ticker=100)  # 9 entries after shedding
    for t in ("SMALL", "BIG"):
        history.open(t)
        history.watched(t, active=True)
    history.open("GONE")  # nobody watches it
    fill(history, "SMALL", range(1, 3))
    fill(history, "GONE", range(1, 2))
    fill(history, "BIG", range(1, 8))  # 2 + 1 + 7 = 10: at the budget
    assert history.shed == 0
    fill(history, "BIG", range(8, 9))  # 11: over, and the unwatched ring is not enough
    assert seqs(history, "GONE") == []  # unwatched goes first, all of it
    assert seqs(history, "SMALL") == [1, 2]  # below its share (4.5 entries): kept
    assert seqs(history, "BIG") == list(range(2, 9))  # above its share: gives the rest
    assert history.nbytes == 9 * COST and history.shed == 2 and consistent(history)


def test_history_sheds_least_recently_watched_of_the_big_watched_rings_first() -> None:
    history = History(max_bytes=20 * COST, per_ticker=100)  # 18 entries after shedding
    for t in ("OLDER", "NEWER", "TINY"):  # joined in this order; share: 6 entries each
        history.open(t)
        history.watched(t, active=True)
    fill(history, "OLDER", range(1, 9))
    fill(history, "NEWER", range(1, 9))
    fill(history, "TINY", range(1, 6))  # 21: three entries to shed
    assert seqs(history, "OLDER") == list(range(3, 9))  # down to its share first
    assert seqs(history, "NEWER") == list(range(2, 9))  # then what is still needed
    assert seqs(history, "TINY") == list(range(1, 6))
    assert history.nbytes == 18 * COST and consistent(history)


def test_history_clear_and_drop() -> None:
    history = History(10**9, per_ticker=10)
    fill(history, "AAA", range(1, 4))
    fill(history, "BBB", range(1, 3))
    history.clear("AAA")  # seq restarted: ring kept, empty
    assert history.get("AAA") is not None and seqs(history, "AAA") == []
    assert history.nbytes == 2 * COST
    history.drop("BBB")
    assert history.get("BBB") is None and history.nbytes == 0
    fill(history, "AAA", range(1, 3))
    history.clear()  # new epoch: everything
    assert history.nbytes == 0 and seqs(history, "AAA") == []


def test_history_open_starts_a_fresh_ring() -> None:
    history = History(10**9, per_ticker=10)
    fill(history, "AAA", range(1, 4))
    history.open("AAA")
    assert seqs(history, "AAA") == [] and history.nbytes == 0


# -- replay_after ------------------------------------------------------------------------


def entries(*seq: int) -> list[Entry]:
    return [Entry(s, FRAME) for s in seq]


def test_replay_after_returns_exactly_the_missed_ones() -> None:
    got = replay_after(entries(3, 4, 5, 6, 7), 4)
    assert got is not None and [e.seq for e in got] == [5, 6, 7]


def test_replay_after_up_to_date_is_empty() -> None:
    assert replay_after(entries(3, 4, 5), 5) == []


def test_replay_after_refuses_a_hole() -> None:
    assert replay_after(entries(3, 4, 6, 7), 3) is None


def test_replay_after_refuses_history_starting_after_the_client() -> None:
    assert replay_after(entries(6, 7), 4) is None


def test_replay_after_refuses_empty_history() -> None:
    assert replay_after([], 4) is None


def test_replay_after_refuses_client_ahead_of_history() -> None:
    assert replay_after(entries(1, 2, 3), 9) is None


# -- parse_resume ------------------------------------------------------------------------


def test_parse_resume_reads_both_forms_and_normalises_tickers() -> None:
    assert parse_resume(None) == {}
    assert parse_resume({"aapl": 1041, "MSFT": {"seq": 0, "epoch": "k3f9"}}) == {
        "AAPL": ResumePoint(1041, None),
        "MSFT": ResumePoint(0, "k3f9"),
    }


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([["AAPL", 1]], "must be an object"),
        ("AAPL:1", "must be an object"),
        (5, "must be an object"),
        ({"not a ticker!": 1}, "resume:"),
        ({"A" * 16: 1}, "resume:"),
        ({"AAPL": -1}, "non-negative integer"),
        ({"AAPL": True}, "non-negative integer"),
        ({"AAPL": 1.5}, "non-negative integer"),
        ({"AAPL": "1041"}, "non-negative integer"),
        ({"AAPL": None}, "non-negative integer"),
        ({"AAPL": {"epoch": "k3f9"}}, "non-negative integer"),
        ({"AAPL": {"seq": 1, "epoch": 7}}, "short string"),
        ({"AAPL": {"seq": 1, "epoch": "e" * 65}}, "short string"),
    ],
)
def test_parse_resume_refuses(value: object, says: str) -> None:
    with pytest.raises(BadResume, match=says):
        parse_resume(value)
