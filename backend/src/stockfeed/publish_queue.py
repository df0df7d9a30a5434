"""The updater's updates on their way to a remote store and broker, sent in batches.

With Redis each update takes three round trips (its `seq`, the cached quote and history,
the publish). Awaited one update at a time, a source delivering a whole market waits on
those round trips and publishes a few hundred updates a second. Queued instead, and sent
by one task in batches of whatever queued meanwhile (a pipeline per step: three round
trips per batch), the rate follows the source, and order is kept: one sender, first in
first out, so each ticker's updates keep their order and consecutive `seq`.

A batch holds a ticker at most once. Each step stores a batch's quotes before it
publishes them, as one update at a time did: a hub that subscribes meanwhile and reads
the stored quote then sees that update again (a duplicate, dropped), never one older than
what it already has. Two updates of a ticker in one batch would store the second while
the first is still to be published, and the hub would take the first for a restart of
the ticker's `seq`.

The queue is bounded: past MAX_QUEUED the source waits (`put` awaits) until the sender
catches up, so a store that is slow or away holds at most that many updates here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

from stockfeed.models import Tick

MAX_QUEUED = 10_000
MAX_BATCH = 500  # updates per pipeline


class PublishQueue:
    def __init__(self, send: Callable[[list[Tick]], Awaitable[None]]) -> None:
        self._send = send  # sends one batch; handles (counts, logs) its own failures
        self._queue: deque[Tick] = deque()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    async def put(self, tick: Tick) -> None:
        """Queue one update (waits while MAX_QUEUED are queued)."""
        while len(self._queue) >= MAX_QUEUED:
            self._room.clear()
            await self._room.wait()
        self._queue.append(tick)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="updater-publish")

    async def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: list[Tick] = []
            tickers: set[str] = set()
            while queue and len(batch) < MAX_BATCH and queue[0].ticker not in tickers:
                tick = queue.popleft()
                tickers.add(tick.ticker)
                batch.append(tick)
            if len(queue) < MAX_QUEUED:
                self._room.set()
            await self._send(batch)
        self._room.set()

    def drop(self) -> None:
        """Forget what is queued (the updater lost its lock: another publishes now)."""
        self._queue.clear()
        self._room.set()

    async def close(self) -> None:
        self.drop()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task], timeout=3)
