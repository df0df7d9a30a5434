"""In-process store for the memory broker: nothing outlives the process.

It keeps no history of its own: in one process the hub's resume history (resume.History,
under its byte budget) is the only one, so each update is held once. The per-ticker
state (latest quote, seq counter, bar books' checkpoints) is kept for at most
`max_tickers` tickers, least recently used forgotten first, so tickers once asked for
cost nothing forever.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict

from stockfeed.shared.base import SharedStore, StoredQuote


class MemoryStore(SharedStore):
    def __init__(self, max_tickers: int = 10_000) -> None:
        self.max_tickers = max_tickers
        # ticker -> (raw, expires_at); most recently published last.
        self._quotes: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._seq: dict[str, int] = {}
        # A forgotten ticker's seq starts above every seq ever forgotten, so a ticker that
        # comes back never repeats a seq in this epoch: clients see a jump (a gap), not a
        # restart they could mistake for updates they have.
        self._seq_floor = 0
        self._interest: dict[str, float] = {}
        self._status: tuple[str, float] | None = None
        self._epoch = secrets.token_hex(4)  # nothing outlives the process: new seq space
        # Bar books' checkpoints (ticker -> interval -> (epoch, seq, checkpoint, expires
        # at)), for as many tickers as quotes, least recently written forgotten first.
        self._bars: OrderedDict[str, dict[str, tuple[str, int, str, float]]] = OrderedDict()

    async def put_quote(self, ticker: str, raw: str, ttl: float) -> None:
        self._quotes[ticker] = (raw, time.monotonic() + ttl)
        self._quotes.move_to_end(ticker)
        if len(self._quotes) > self.max_tickers:
            self._forget(next(iter(self._quotes)))

    def _forget(self, ticker: str) -> None:
        self._quotes.pop(ticker, None)
        self._seq_floor = max(self._seq_floor, self._seq.pop(ticker, 0))
        self._bars.pop(ticker, None)

    async def recent(self, ticker: str) -> list[str]:
        return []

    async def epoch(self) -> str:
        return self._epoch

    async def get_quote(self, ticker: str) -> StoredQuote | None:
        item = self._quotes.get(ticker)
        if item is None:
            return None
        return StoredQuote(item[0], fresh=time.monotonic() < item[1])

    async def next_seq(self, ticker: str) -> int:
        value = self._seq.get(ticker, self._seq_floor) + 1
        self._seq[ticker] = value  # bounded with the quotes: put_quote follows each one
        return value

    async def raise_seq(self, ticker: str, at_least: int) -> int:
        self._seq[ticker] = max(self._seq.get(ticker, 0), at_least)
        return await self.next_seq(ticker)

    async def try_lead(self, owner: str, ttl: float) -> bool:
        return True  # one process: it is always the updater

    async def release_lead(self, owner: str) -> None:
        return None

    async def leader(self) -> str | None:
        return None

    async def add_interest(self, tickers: set[str], ttl: float) -> None:
        until = time.monotonic() + ttl
        for ticker in tickers:
            self._interest[ticker] = until

    async def drop_interest(self, tickers: set[str]) -> None:
        for ticker in tickers:
            self._interest.pop(ticker, None)

    async def interest(self) -> set[str]:
        now = time.monotonic()
        for ticker in [t for t, until in self._interest.items() if until < now]:
            del self._interest[ticker]
        return set(self._interest)

    async def get_bars(self, ticker: str, interval: str) -> tuple[str, str] | None:
        kept = self._bars.get(ticker, {}).get(interval)
        if kept is None or kept[3] < time.monotonic():
            return None
        return kept[0], kept[2]

    async def put_bars(
        self,
        ticker: str,
        interval: str,
        epoch: str,
        seq: int,
        checkpoint: str,
        ttl: float,
        *,
        create: int | None,
    ) -> bool:
        books = self._bars.get(ticker)
        if books is None:
            books = self._bars[ticker] = {}
            if len(self._bars) > self.max_tickers:
                self._bars.popitem(last=False)
        self._bars.move_to_end(ticker)
        kept = books.get(interval)
        if kept is not None and kept[0] == epoch and kept[3] >= time.monotonic():
            if create is not None and kept[1] + 1 >= create:
                return False
            if create is None and kept[1] >= seq:
                return False
        books[interval] = (epoch, seq, checkpoint, time.monotonic() + ttl)
        return True

    async def put_status(self, status: str, ttl: float) -> None:
        self._status = (status, time.monotonic() + ttl)

    async def get_status(self) -> str | None:
        if self._status is None or self._status[1] < time.monotonic():
            return None
        return self._status[0]
