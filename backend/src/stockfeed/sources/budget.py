"""The process's budget of upstream calls made on clients' behalf.

A REST history request or a lookup of a ticker nobody watches makes the source call its
provider (Yahoo). Without a cap, clients decide how hard the server hits Yahoo, and a few
of them can get its address rate-limited or banned, which stops the live feed for all.
So those calls take a token from one process-wide bucket first (`calls_per_minute`,
`burst`), and at most `max_in_flight` run at once; when either is spent the call is
refused at once with `UpstreamBusy` (HTTP 503 `upstream_busy` with `Retry-After`),
never queued. The updater's own streaming and polling do not draw on it: the budget only
caps what clients add on top. Client calls also run on threads of their own
(`max_in_flight` of them), so however many clients wait on slow answers, the updater's
polls still find a free thread in the loop's default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from stockfeed.admission.token_bucket import TokenBucket
from stockfeed.sources.base import SourceError

DEFAULT_CALLS_PER_MINUTE = 60.0
DEFAULT_BURST = 30
# Client calls running at once: each may hold a worker thread for its whole timeout.
DEFAULT_MAX_IN_FLIGHT = 4

R = TypeVar("R")


class UpstreamBusy(SourceError):
    """The client budget for upstream calls is spent: try again after `retry_after` s."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamBudget:
    """The calls this process may make to a source's upstream (its REST API): a rate,
    a burst and calls in flight. Not a client's budget with us (that is
    admission/subscription_limits.py's `ClientBudget`)."""

    def __init__(
        self,
        calls_per_minute: float = DEFAULT_CALLS_PER_MINUTE,
        burst: int = DEFAULT_BURST,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.calls = 0  # calls let through
        self.refused = 0  # calls refused (budget or concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self.configure(calls_per_minute, burst)

    def configure(self, calls_per_minute: float, burst: int) -> None:
        self.calls_per_minute = calls_per_minute
        self._bucket = TokenBucket(calls_per_minute / 60.0, burst)

    @property
    def retry_after(self) -> int:
        """Whole seconds until the bucket holds a token again (at most)."""
        return max(1, math.ceil(60.0 / self.calls_per_minute))

    def acquire(self, what: str) -> None:
        """Take one call from the budget or raise UpstreamBusy; pair with `release()`."""
        if self.in_flight >= self.max_in_flight or not self._bucket.take():
            raise self.refuse(
                f"too many requests to the market-data provider right now ({what}); "
                f"try again in {self.retry_after} s",
                self.retry_after,
            )
        self.in_flight += 1
        self.calls += 1

    def release(self) -> None:
        self.in_flight -= 1

    def start(self, what: str, call: Callable[..., R], *args: object) -> asyncio.Future[R]:
        """Run `call(*args)` (blocking) on one of the budget's threads once the budget
        allows it (else UpstreamBusy, raised here, at once). The call counts as in flight
        until its thread is done with it, even when the caller stopped waiting (a timeout):
        that thread is still busy."""
        self.acquire(what)
        loop = asyncio.get_running_loop()
        try:
            job: Future[R] = self._threads().submit(call, *args)
        except BaseException:
            self.release()
            raise
        job.add_done_callback(lambda _: _call_soon(loop, self.release))
        return asyncio.wrap_future(job)

    def refuse(self, message: str, retry_after: float) -> UpstreamBusy:
        """The refusal for a call the budget would allow but the provider would not (it
        rate-limited us): counted with the others."""
        self.refused += 1
        return UpstreamBusy(message, max(1, math.ceil(retry_after)))

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="upstream")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody counts
        loop.call_soon_threadsafe(callback)
