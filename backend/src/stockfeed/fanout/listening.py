"""The hub's side of the broker: one subscription per held ticker, and the interest that
tells the updater (maybe in another process) which tickers this process wants.

A ticker's broker (un)subscribe is serialised by a per-ticker lock, which the hub also
takes while it lets a ticker go (fanout/linger.py), so a subscribe never races an
unsubscribe of the same ticker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from stockfeed.broker import Broker
from stockfeed.shared import SharedStore, StoreUnavailable

INTEREST_TTL = 30.0


class Listening:
    def __init__(self, broker: Broker, store: SharedStore) -> None:
        self.broker = broker
        self.store = store
        # Per ticker, while it is held: serialises the broker (un)subscribe of one ticker.
        self.locks: dict[str, asyncio.Lock] = {}
        self.tickers: set[str] = set()  # tickers the broker subscription is up for

    def lock(self, ticker: str) -> asyncio.Lock:
        lock = self.locks.get(ticker)
        if lock is None:
            lock = self.locks[ticker] = asyncio.Lock()
        return lock

    async def listen(self, ticker: str) -> None:
        """Subscribe the broker to a ticker the hub holds now (once), and ask the
        updater to produce it."""
        async with self.lock(ticker):
            if ticker not in self.tickers:
                await self.broker.subscribe(ticker)
                self.tickers.add(ticker)
                try:
                    await self.store.add_interest({ticker}, INTEREST_TTL)
                except StoreUnavailable:
                    pass  # the interest loop retries

    async def unlisten(self, ticker: str) -> None:
        """Stop listening to a ticker the hub let go (the caller holds its lock)."""
        if ticker in self.tickers:
            self.tickers.discard(ticker)
            await self.broker.unsubscribe(ticker)
        try:
            await self.store.drop_interest({ticker})
        except StoreUnavailable:
            pass

    async def interest(self, held: Iterable[str]) -> None:
        """Keep telling the updater what our clients want (`held`: read each round)."""
        while True:
            await asyncio.sleep(INTEREST_TTL / 3)
            try:
                await self.store.add_interest(set(held), INTEREST_TTL)
            except StoreUnavailable:
                pass
