"""One timer per event loop for the deadlines of many connections.

Every phase of a connection has a deadline (fast_http.py), and an idle server can hold
tens of thousands of connections. A timer per connection (uvloop's timer, its handle and
context) costs ~0.6 KiB per socket, measured; a dict entry costs a slot and a float. So a
`DeadlineClock` keeps `{key: loop.time() deadline}` and one timer that sweeps it every `tick`
(0.25 s) while anything is pending: a deadline is acted on at most that late,
which no phase of a connection needs to be more precise than.

A key is whatever the owner needs to act on (a protocol object); the clock calls
`on_expired(key)` once its deadline has passed and forgets it (the owner arms it again if
it wants another). `settled(key)`, when given, lets a sweep drop an entry early whose
reason to exist is gone (so the dict does not keep a finished connection alive until its
deadline).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class DeadlineClock(Generic[K]):
    __slots__ = ("handle", "loop", "name", "on_expired", "pending", "settled", "tick")

    TICK = 0.25  # by default a deadline is acted on at most this late

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_expired: Callable[[K], None],
        *,
        settled: Callable[[K], bool] | None = None,
        name: str = "deadline",
        tick: float = TICK,
    ) -> None:
        self.loop = loop
        self.tick = tick
        self.on_expired = on_expired
        self.settled = settled
        self.name = name
        self.pending: dict[K, float] = {}  # -> loop.time() deadline
        self.handle: asyncio.TimerHandle | None = None

    def arm(self, key: K, seconds: float) -> None:
        """`key`'s deadline is `seconds` from now (replacing any it had)."""
        self.pending[key] = self.loop.time() + seconds
        if self.handle is None:
            self.handle = self.loop.call_later(self.tick, self.sweep)

    def arm_once(self, key: K, seconds: float) -> None:
        """Start `key`'s deadline unless one is already running."""
        if key not in self.pending:
            self.arm(key, seconds)

    def disarm(self, key: K) -> None:
        self.pending.pop(key, None)

    def remaining(self, key: K) -> float | None:
        at = self.pending.get(key)
        return None if at is None else at - self.loop.time()

    def sweep(self) -> None:
        self.handle = None
        now = self.loop.time()
        settled = self.settled
        expired: list[K] = []
        done: list[K] = []
        for key, at in self.pending.items():
            if at <= now:
                expired.append(key)
            elif settled is not None and settled(key):
                done.append(key)
        for key in done:
            del self.pending[key]
        for key in expired:
            if self.pending.pop(key, None) is None:
                continue  # disarmed by an earlier one's action
            try:
                self.on_expired(key)
            except Exception:  # one connection must not stop the clock for the rest
                log.exception("acting on a passed %s deadline failed", self.name)
        if self.pending and self.handle is None:  # (an action may have armed it)
            self.handle = self.loop.call_later(self.tick, self.sweep)


C = TypeVar("C", bound=DeadlineClock)  # type: ignore[type-arg]


class PerLoop(Generic[C]):
    """One clock per event loop, made on first use. A process runs one loop; tests start
    new ones, and then the old loop's clock is dropped with it."""

    __slots__ = ("_by_loop", "_make")

    def __init__(self, make: Callable[[asyncio.AbstractEventLoop], C]) -> None:
        self._make = make
        self._by_loop: dict[asyncio.AbstractEventLoop, C] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop) -> C:
        clock = self._by_loop.get(loop)
        if clock is None:
            self._by_loop.clear()
            clock = self._by_loop[loop] = self._make(loop)
        return clock
