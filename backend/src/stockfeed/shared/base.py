"""What the updater, the hub and the REST API share, whatever the broker."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass


class StoreUnavailable(Exception):
    """The shared store (Redis) cannot be reached right now."""


@dataclass(slots=True, frozen=True)
class StoredQuote:
    raw: str  # the price_update text exactly as published
    fresh: bool  # False once the TTL'd `quote:{T}` expired and only the last known is left


HISTORY_LENGTH = 2000  # recent updates kept per ticker for resume


class SharedStore(abc.ABC):
    """Latest quotes (fresh with TTL + last known without expiry), per-ticker `seq`,
    the updater's leader lock, the tickers clients want, and the source's status."""

    @abc.abstractmethod
    async def put_quote(self, ticker: str, raw: str, ttl: float) -> None:
        """Cache the latest update and append it to the ticker's recent history."""

    @abc.abstractmethod
    async def recent(self, ticker: str) -> list[str]:
        """The ticker's recent updates as published, oldest first (bounded)."""

    @abc.abstractmethod
    async def epoch(self) -> str:
        """Names the current `seq` space: it changes whenever seq could restart or the
        recent history was lost (a memory-store process restart, a Redis flush)."""

    @abc.abstractmethod
    async def get_quote(self, ticker: str) -> StoredQuote | None: ...

    @abc.abstractmethod
    async def next_seq(self, ticker: str) -> int:
        """The next `seq` for a ticker: 1, 2, 3... across restarts where the store lasts."""

    # Whether next_seqs/put_quotes take one round trip for many (the updater then sends
    # its updates in batches, stockfeed/publish_queue.py); the memory store is immediate.
    pipelined: bool = False

    def shard_of(self, ticker: str) -> str | None:
        """Which of several servers holds the ticker's keys (a cluster's node, as the
        slot map known now says), None where there is one. The updater sends each
        server's part of a batch on its own, so that one unreachable fails only the
        updates of its own tickers."""
        return None

    async def next_seqs(self, tickers: Sequence[str]) -> list[int]:
        """`next_seq` of each ticker, in order (a ticker named twice counts twice)."""
        return [await self.next_seq(ticker) for ticker in tickers]

    async def put_quotes(self, quotes: Sequence[tuple[str, str]], ttl: float) -> None:
        """`put_quote` of each (ticker, raw), in order."""
        for ticker, raw in quotes:
            await self.put_quote(ticker, raw, ttl)

    @abc.abstractmethod
    async def raise_seq(self, ticker: str, at_least: int) -> int:
        """Make the counter at least `at_least` and return the next value after it."""

    @abc.abstractmethod
    async def try_lead(self, owner: str, ttl: float) -> bool:
        """Take or keep the updater lock for `ttl` seconds; True when `owner` holds it."""

    @abc.abstractmethod
    async def release_lead(self, owner: str) -> None: ...

    @abc.abstractmethod
    async def leader(self) -> str | None: ...

    @abc.abstractmethod
    async def add_interest(self, tickers: set[str], ttl: float) -> None:
        """Say that clients of this process want these tickers (for `ttl` seconds)."""

    async def drop_interest(self, tickers: set[str]) -> None:  # noqa: B027 - optional hook
        """This process stopped wanting these tickers. Only a store that serves a single
        process acts on it at once (the updater stops producing them); a shared one
        lets the interest expire, since other processes may still want them."""

    @abc.abstractmethod
    async def interest(self) -> set[str]: ...

    @abc.abstractmethod
    async def get_bars(self, ticker: str, interval: str) -> tuple[str, str] | None:
        """(epoch, checkpoint) of a bar book (fanout/bar_feed.py), None when none is kept."""

    @abc.abstractmethod
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
        """Keep a bar book's checkpoint as of `seq` for `ttl` seconds. `create=None`: only
        over an older one (or another epoch's); `create=N`: only when none kept can be
        continued by a process whose updates start at seq N (none, another epoch's, or
        older than N - 1). True when written."""

    @abc.abstractmethod
    async def put_status(self, status: str, ttl: float) -> None:
        """The leader's source status (JSON text) for every process's health."""

    @abc.abstractmethod
    async def get_status(self) -> str | None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass
