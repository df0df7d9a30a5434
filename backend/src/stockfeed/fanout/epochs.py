"""The deployment's epoch and each ticker's restarts of its `seq` count.

A resume point names the epoch its `seq` belongs to: the shared store's epoch (it changes
when the store lost its history, e.g. Redis restarted empty), with a suffix per ticker
whose publisher started its `seq` count again (`EPOCH.N`), so a seq from before either
is never replayed against the new count.
"""

from __future__ import annotations

import logging

from stockfeed.shared import SharedStore, StoreUnavailable

log = logging.getLogger(__name__)


class Epochs:
    def __init__(self, store: SharedStore) -> None:
        self.store = store
        self.epoch = ""
        self._restarts: dict[str, int] = {}  # tickers whose seq went back: epoch suffix

    async def refresh(self) -> bool:
        """Read the store's epoch; True when it changed (what the hub kept is of the old)."""
        try:
            epoch = await self.store.epoch()
        except StoreUnavailable:
            return False
        if epoch == self.epoch:
            return False
        if self.epoch:
            log.warning("epoch %s -> %s: recent history is gone", self.epoch, epoch)
        self.epoch = epoch
        self._restarts.clear()
        return True

    def epoch_for(self, ticker: str) -> str:
        restarts = self._restarts.get(ticker)
        return self.epoch if not restarts else f"{self.epoch}.{restarts}"

    def restarted(self, ticker: str) -> bool:
        """The ticker's seq went back in this epoch: the shared history may be of the
        old count."""
        return bool(self._restarts.get(ticker))

    def restart(self, ticker: str) -> int:
        """The ticker's publisher started its seq again: a new epoch for it. Returns how
        often that happened in this epoch."""
        count = self._restarts[ticker] = self._restarts.get(ticker, 0) + 1
        return count
