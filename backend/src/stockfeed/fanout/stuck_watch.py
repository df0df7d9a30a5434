"""The stuck check on a clock: a client whose writes stay backed up is closed in time.

A connection tells the watch when its writes back up (the fast path's transport paused,
the portable queue non-empty); the watch asks each such connection once a `TICK` how
long it has been stalled and closes with 4408 the ones past their `stuck_timeout`.
Before, the check ran only when a price update arrived for the client: at night (no
updates) a client that never read kept whatever it had been sent for good.

One timer per event loop, armed only while some connection is backed up, instead of a
timer per connection: an idle or a reading connection costs nothing here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Stallable(Protocol):
    closed: bool
    stuck_timeout: float

    def stalled_since(self) -> float | None:
        """`loop.time()` since which the connection has made no progress, or None."""

    def close_stuck(self) -> None: ...


class StuckWatch:
    """The connections of one event loop whose writes are backed up."""

    __slots__ = ("handle", "loop", "watched")

    TICK = 1.0  # a stuck client is closed at most this late

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watched: set[Stallable] = set()
        self.handle: asyncio.TimerHandle | None = None

    def backed_up(self, conn: Stallable) -> None:
        """`conn` may be stalled from now on: check it until it says it is not."""
        self.watched.add(conn)
        if self.handle is None:
            self.handle = self.loop.call_later(self.TICK, self.sweep)

    def sweep(self) -> None:
        self.handle = None
        now = self.loop.time()
        for conn in list(self.watched):
            since = None if conn.closed else conn.stalled_since()
            if since is None:
                self.watched.discard(conn)
            elif now - since > conn.stuck_timeout:
                self.watched.discard(conn)
                try:
                    conn.close_stuck()
                except Exception:  # one connection must not stop the clock for the rest
                    log.exception("closing a stuck client failed")
        if self.watched:
            self.handle = self.loop.call_later(self.TICK, self.sweep)


_watches: dict[asyncio.AbstractEventLoop, StuckWatch] = {}


def stuck_watch() -> StuckWatch:
    """The running loop's watch."""
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        _watches.clear()  # a new loop (tests): the old one is gone
        watch = _watches[loop] = StuckWatch(loop)
    return watch
