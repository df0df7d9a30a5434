"""Gap-free resume: recent history per ticker and the rule for replaying it.

A client that reconnects says where it stopped (`resume: {"AAPL": 1041}` or
`{"AAPL": {"seq": 1041, "epoch": "k3f9"}}`). If the history still holds every update
after that seq, in the same epoch, they are replayed in order and no snapshot is sent;
otherwise one snapshot flagged `gap` stands in for what is lost. Never silence.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from stockfeed.tickers import InvalidTicker, normalize_ticker

# (seq, text as published, its pre-built frame)
Entry = tuple[int, str, bytes]


@dataclass(slots=True, frozen=True)
class ResumePoint:
    seq: int
    epoch: str | None


class BadResume(ValueError):
    """The `resume` object of a subscribe is malformed: the message says how."""


def parse_resume(value: object) -> dict[str, ResumePoint]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadResume('resume must be an object like {"AAPL": 1041}')
    out: dict[str, ResumePoint] = {}
    for raw_ticker, point in value.items():
        try:
            ticker = normalize_ticker(raw_ticker)
        except InvalidTicker as exc:
            raise BadResume(f"resume: {exc}") from None
        epoch: object = None
        seq: object = point
        if isinstance(point, dict):
            seq, epoch = point.get("seq"), point.get("epoch")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise BadResume(f"resume.{ticker}: seq must be a non-negative integer")
        if epoch is not None and (not isinstance(epoch, str) or len(epoch) > 64):
            raise BadResume(f"resume.{ticker}: epoch must be a short string")
        out[ticker] = ResumePoint(seq, epoch)
    return out


class Ring:
    """The last `size` updates of one ticker as this process relayed them."""

    __slots__ = ("entries",)

    def __init__(self, size: int) -> None:
        self.entries: deque[Entry] = deque(maxlen=size)

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)

    def clear(self) -> None:
        self.entries.clear()


def replay_after(entries: Iterable[Entry], last_seq: int) -> list[Entry] | None:
    """The updates after `last_seq` when `entries` (oldest first) hold all of them.

    [] means the client is up to date; None means something after `last_seq` is missing
    (too old, or a hole in the history) and a gap snapshot must be sent instead.
    """
    newest = None
    expected = last_seq + 1
    out: list[Entry] = []
    for entry in entries:
        seq = entry[0]
        newest = seq
        if seq <= last_seq:
            continue
        if seq != expected:
            return None
        out.append(entry)
        expected += 1
    if newest is None or newest < last_seq:
        return None  # nothing known, or the client is ahead of us: a different seq space
    return out
