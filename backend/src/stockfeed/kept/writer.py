"""The store's writer thread: batches from the event loop, one transaction each.

The loop hands over a `Batch` with `put` (a queue append: it never waits for the disk or
the database) and goes on. The thread takes everything queued at once, merges it (a bar,
quote or span written several times keeps its newest) and writes it in one transaction.
When the store cannot be written (PostgreSQL away, disk full) the thread keeps what it
has and tries again with backoff; past MAX_PENDING_TICKS ticks waiting, new ticks are
dropped (and counted) rather than growing memory, and the source's history is not kept
(it is asked for again later): bars and quotes are bounded by the tickers and intervals
anyway, since they merge.

Other work that needs the writing connection (retention, kept/retention.py) runs on the
same thread through `call`, between batches.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from stockfeed.kept.base import Batch, BatchWriter, KeptStore, KeptUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_PENDING_TICKS = 2_000_000
RETRY_MIN_S = 0.5
RETRY_MAX_S = 5.0
STOP_WAIT_S = 10.0


class _Stop:
    pass


class _Job:
    def __init__(self, work: Callable[[BatchWriter], Any]) -> None:
        self.work = work
        self.future: Future[Any] = Future()


class Writer:
    def __init__(self, store: KeptStore) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[Batch | _Job | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending_ticks = 0  # ticks queued and not written (approximate across threads)
        # For health and metrics.
        self.batches = 0
        self.rows = 0
        self.failures = 0
        self.dropped_ticks = 0
        self.last_error: str | None = None
        self.last_write_ms: float | None = None
        self.last_write_s = 0.0  # how long the last transaction took

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kept-writer", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def put(self, batch: Batch) -> None:
        """Queue a batch (from the loop: never blocks)."""
        if not len(batch):
            return
        if batch.ticks and self._pending_ticks > MAX_PENDING_TICKS:
            self.dropped_ticks += len(batch.ticks)
            batch.ticks = []
        if batch.source_bars and self._pending_ticks > MAX_PENDING_TICKS // 4:
            batch.source_bars, batch.spans = [], []  # asked again later: nothing lost
        self._pending_ticks += len(batch.ticks) + len(batch.source_bars)
        self._queue.put(batch)

    def call(self, work: Callable[[BatchWriter], T]) -> asyncio.Future[T]:
        """Run `work(writer)` on the writer thread, between batches."""
        job = _Job(work)
        self._queue.put(job)
        return asyncio.wrap_future(job.future)

    async def stop(self) -> None:
        """Write what is queued, then stop (waiting STOP_WAIT_S at most)."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_Stop())
        await asyncio.to_thread(thread.join, STOP_WAIT_S)
        self._thread = None

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        writer: BatchWriter | None = None
        pending: Batch | None = None
        stopping = False
        delay = RETRY_MIN_S
        try:
            while True:
                if pending is None:
                    item = self._queue.get()
                else:
                    # Waiting to try again: take what arrives meanwhile, then retry.
                    try:
                        item = self._queue.get(timeout=delay)
                    except queue.Empty:
                        item = None
                jobs: list[_Job] = []
                while item is not None:
                    if isinstance(item, _Stop):
                        stopping = True
                    elif isinstance(item, _Job):
                        jobs.append(item)
                    elif pending is None:
                        pending = item
                    else:
                        pending.merge(item)
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        item = None
                try:
                    if writer is None:
                        writer = self.store.open_writer()
                    if pending is not None:
                        self._write(writer, pending)
                        pending = None
                    delay = RETRY_MIN_S
                except KeptUnavailable as exc:
                    self._failed(exc)
                    if writer is not None:
                        self._close(writer)
                        writer = None
                    delay = min(RETRY_MAX_S, delay * 2)
                for job in jobs:
                    self._do(job, writer)
                if stopping and (pending is None or self.failures_in_a_row > 3):
                    if pending is not None:
                        log.error("store: %d rows not written at shutdown", len(pending))
                    return
        finally:
            if writer is not None:
                self._close(writer)

    failures_in_a_row = 0

    def _write(self, writer: BatchWriter, batch: Batch) -> None:
        started = time.monotonic()
        writer.write(batch)
        self.last_write_s = time.monotonic() - started
        self.last_write_ms = time.time() * 1000
        self.batches += 1
        self.rows += len(batch)
        self._pending_ticks = max(
            0, self._pending_ticks - len(batch.ticks) - len(batch.source_bars)
        )
        self.failures_in_a_row = 0
        if self.last_error is not None:
            log.warning("store: writing again (%s)", self.store.where)
            self.last_error = None

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.failures_in_a_row += 1
        if self.last_error is None:
            log.error("store: cannot write (%s): %s; retrying", self.store.where, exc)
        self.last_error = str(exc)

    def _do(self, job: _Job, writer: BatchWriter | None) -> None:
        if writer is None:
            job.future.set_exception(KeptUnavailable(self.last_error or "no connection"))
            return
        try:
            job.future.set_result(job.work(writer))
        except Exception as exc:
            job.future.set_exception(exc)

    @staticmethod
    def _close(writer: BatchWriter) -> None:
        try:
            writer.close()
        except Exception:
            log.debug("store: closing the writer failed", exc_info=True)

    def stats(self) -> dict[str, object]:
        return {
            "batches": self.batches,
            "rows": self.rows,
            "failures": self.failures,
            "dropped_ticks": self.dropped_ticks,
            "last_error": self.last_error,
            "last_write_ms": self.last_write_ms,
            "queued": self._queue.qsize(),
        }
