"""In-process store for the memory broker: nothing outlives the process."""

from __future__ import annotations

import secrets
import time
from collections import deque

from stockfeed.store.base import HISTORY_LENGTH, SharedStore, StoredQuote


class MemoryStore(SharedStore):
    def __init__(self) -> None:
        self._quotes: dict[str, tuple[str, float]] = {}  # ticker -> (raw, expires_at)
        self._seq: dict[str, int] = {}
        self._interest: dict[str, float] = {}
        self._status: tuple[str, float] | None = None
        self._history: dict[str, deque[str]] = {}
        self._epoch = secrets.token_hex(4)  # nothing outlives the process: new seq space

    async def put_quote(self, ticker: str, raw: str, ttl: float) -> None:
        self._quotes[ticker] = (raw, time.monotonic() + ttl)
        history = self._history.get(ticker)
        if history is None:
            history = self._history[ticker] = deque(maxlen=HISTORY_LENGTH)
        history.append(raw)

    async def recent(self, ticker: str) -> list[str]:
        return list(self._history.get(ticker, ()))

    async def epoch(self) -> str:
        return self._epoch

    async def get_quote(self, ticker: str) -> StoredQuote | None:
        item = self._quotes.get(ticker)
        if item is None:
            return None
        return StoredQuote(item[0], fresh=time.monotonic() < item[1])

    async def next_seq(self, ticker: str) -> int:
        value = self._seq.get(ticker, 0) + 1
        self._seq[ticker] = value
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

    async def interest(self) -> set[str]:
        now = time.monotonic()
        for ticker in [t for t, until in self._interest.items() if until < now]:
            del self._interest[ticker]
        return set(self._interest)

    async def put_status(self, status: str, ttl: float) -> None:
        self._status = (status, time.monotonic() + ttl)

    async def get_status(self) -> str | None:
        if self._status is None or self._status[1] < time.monotonic():
            return None
        return self._status[0]
