"""The ticks' budget, enforced in the background by the store's writer.

Two limits, both the operator's: `--keep-ticks` keeps updates for `keep_ticks_days`, and
the whole store stays under `store_max_bytes` (0: no cap), the oldest day of ticks going
first. Bars and last quotes are never deleted by either: they are small (docs/store.md
works out the sizes) and they are what history is made of.

Each check runs on the writer thread (`Writer.call`), between two batches, so the event
loop never waits for it and no second connection writes. A pass deletes at most a day of
ticks at a time (one transaction each), so a batch never waits behind a huge delete.
"""

from __future__ import annotations

import asyncio
import logging
import time

from stockfeed.kept.base import BatchWriter, KeptUnavailable
from stockfeed.kept.keeper import Keeper

log = logging.getLogger(__name__)

CHECK_EVERY_S = 60.0
DAY_US = 86400 * 1_000_000
# Days deleted in one pass at most, when over the byte budget.
MAX_DAYS_PER_PASS = 30


class Retention:
    def __init__(
        self,
        keeper: Keeper,
        *,
        keep_ticks_days: float | None,
        max_bytes: int,
        check_every: float = CHECK_EVERY_S,
    ) -> None:
        self.keeper = keeper
        self.keep_ticks_days = keep_ticks_days
        self.max_bytes = max_bytes
        self.check_every = check_every
        self.deleted_ticks = 0
        self.size_bytes: int | None = None
        self.over_budget = False  # bars and quotes alone are over the byte budget
        self.last_error: str | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            await self.check()

    async def check(self) -> None:
        """One pass (where this process writes the store)."""
        if not self.keeper.active or not self.keeper.writer.running:
            return
        try:
            deleted, size, over = await self.keeper.writer.call(self._pass)
        except KeptUnavailable as exc:
            self.last_error = str(exc)
            return
        self.last_error = None
        self.deleted_ticks += deleted
        self.size_bytes = size
        if over and not self.over_budget:
            log.warning(
                "store: %d bytes, over its budget of %d with no ticks left to delete: "
                "raise STOCKFEED_STORE_MAX_BYTES (bars and quotes are never deleted)",
                size,
                self.max_bytes,
            )
        self.over_budget = over

    def _pass(self, writer: BatchWriter) -> tuple[int, int, bool]:
        """On the writer thread: (ticks deleted, the store's size, still over budget)."""
        deleted = 0
        if self.keep_ticks_days is not None:
            cutoff = int((time.time() - self.keep_ticks_days * 86400) * 1_000_000)
            deleted += max(0, writer.drop_ticks_before(cutoff))
        size = writer.size_bytes()
        passes = 0
        while self.max_bytes and size > self.max_bytes and passes < MAX_DAYS_PER_PASS:
            oldest = writer.oldest_tick_us()
            if oldest is None:
                break
            deleted += max(0, writer.drop_ticks_before(oldest - oldest % DAY_US + DAY_US))
            writer.compact()
            size = writer.size_bytes()
            passes += 1
        if deleted:
            writer.compact()
            size = writer.size_bytes()
            log.info("store: %d ticks past the retention budget deleted", deleted)
        over = bool(self.max_bytes) and size > self.max_bytes
        return deleted, size, over

    def stats(self) -> dict[str, object]:
        return {
            "keep_ticks_days": self.keep_ticks_days,
            "max_bytes": self.max_bytes,
            "size_bytes": self.size_bytes,
            "deleted_ticks": self.deleted_ticks,
            "over_budget": self.over_budget,
        }
