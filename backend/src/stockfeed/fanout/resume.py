"""Gap-free resume: recent history per ticker and the rule for replaying it.

A client that reconnects says where it stopped (`resume: {"AAPL": 1041}` or
`{"AAPL": {"seq": 1041, "epoch": "k3f9"}}`). If the history still holds every update
after that seq, in the same epoch, they are replayed in order and no snapshot is sent;
otherwise one snapshot flagged `gap` stands in for what is lost. Never silence.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from stockfeed.fanout.frames import frame_payload
from stockfeed.tickers import InvalidTicker, normalize_ticker


class Entry(NamedTuple):
    """One update as kept for resume: its seq and its pre-built frame, nothing else (the
    text is the frame's payload, decoded only when a replay needs it)."""

    seq: int
    frame: bytes

    @property
    def text(self) -> str:
        return frame_payload(self.frame).decode()


# Entry(seq, frame) without the Python-level __new__ NamedTuple adds (what its `_make`
# does): History.append makes one per relayed update.
_new_entry = tuple.__new__


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


# What one kept entry costs beyond its frame's length: the tuple, the int, the bytes
# object's header and the deque slot (sys.getsizeof on CPython 3.11, rounded up).
ENTRY_OVERHEAD = 120


class Ring:
    """The recent updates of one ticker as this process relayed them, oldest first."""

    __slots__ = ("entries", "nbytes")

    def __init__(self) -> None:
        self.entries: deque[Entry] = deque()
        self.nbytes = 0


class History:
    """Every ticker's recent updates under one byte budget for the whole process.

    Each update is kept once (its frame; the text is derived on replay). A ticker keeps
    at most `per_ticker` updates. Past `max_bytes`, the budget is shed down to 90 % of
    it: first the rings of tickers nobody watches now, least recently watched first;
    then the watched rings above an equal share, least recently watched first; a resume
    that reaches past what is left gets the flagged gap snapshot, as any too-old resume.
    """

    __slots__ = ("_active", "max_bytes", "nbytes", "per_ticker", "rings", "shed")

    def __init__(self, max_bytes: int, per_ticker: int) -> None:
        self.max_bytes = max_bytes
        self.per_ticker = per_ticker
        self.nbytes = 0
        self.shed = 0  # entries given up to the byte budget (for /metrics)
        # Least recently watched first: a ticker moves to the end when a client joins
        # it and when its last client leaves.
        self.rings: OrderedDict[str, Ring] = OrderedDict()
        self._active: set[str] = set()  # tickers with clients now

    def open(self, ticker: str) -> Ring:
        """A fresh ring for a ticker the process starts listening to (whatever an
        earlier ring held may have a hole)."""
        self.drop(ticker)
        ring = self.rings[ticker] = Ring()
        return ring

    def get(self, ticker: str) -> Ring | None:
        return self.rings.get(ticker)

    def watched(self, ticker: str, active: bool) -> None:
        """A client joined (`active`) or the last one left the ticker."""
        if ticker in self.rings:
            self.rings.move_to_end(ticker)
        if active:
            self._active.add(ticker)
        else:
            self._active.discard(ticker)

    def drop(self, ticker: str) -> None:
        ring = self.rings.pop(ticker, None)
        self._active.discard(ticker)
        if ring is not None:
            self.nbytes -= ring.nbytes

    def clear(self, ticker: str | None = None) -> None:
        """Forget the updates of one ticker (its seq restarted) or of all (new epoch)."""
        rings = self.rings.values() if ticker is None else [self.rings.get(ticker)]
        for ring in rings:
            if ring is not None:
                self.nbytes -= ring.nbytes
                ring.nbytes = 0
                ring.entries.clear()

    def keep(self, ticker: str, seq: int, frame: bytes) -> None:
        """An update the hub relayed, kept when the ticker has a ring (one call per
        message: the hub's path pays for each)."""
        ring = self.rings.get(ticker)
        if ring is not None:
            self.append(ring, seq, frame)

    def append(self, ring: Ring, seq: int, frame: bytes) -> None:
        size = len(frame) + ENTRY_OVERHEAD
        entries = ring.entries
        entries.append(_new_entry(Entry, (seq, frame)))
        ring.nbytes += size
        self.nbytes += size
        if len(entries) > self.per_ticker:
            old = entries.popleft()
            freed = len(old.frame) + ENTRY_OVERHEAD
            ring.nbytes -= freed
            self.nbytes -= freed
        if self.nbytes > self.max_bytes:
            self._shed()

    def _shed(self) -> None:
        target = self.max_bytes * 9 // 10
        active = self._active
        for ticker, ring in self.rings.items():
            if ticker not in active:
                self._trim(ring, 0, target)
                if self.nbytes <= target:
                    return
        share = target // max(1, len(active))
        for ring in self.rings.values():
            self._trim(ring, share, target)
            if self.nbytes <= target:
                return
        for ring in self.rings.values():
            self._trim(ring, 0, target)
            if self.nbytes <= target:
                return

    def _trim(self, ring: Ring, keep: int, target: int) -> None:
        entries = ring.entries
        while entries and ring.nbytes > keep and self.nbytes > target:
            old = entries.popleft()
            freed = len(old.frame) + ENTRY_OVERHEAD
            ring.nbytes -= freed
            self.nbytes -= freed
            self.shed += 1


def replay_after(entries: Iterable[Entry], last_seq: int) -> list[Entry] | None:
    """The updates after `last_seq` when `entries` (oldest first) hold all of them.

    [] means the client is up to date; None means something after `last_seq` is missing
    (too old, or a hole in the history) and a gap snapshot must be sent instead.
    """
    newest = None
    expected = last_seq + 1
    out: list[Entry] = []
    for entry in entries:
        seq = entry.seq
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
