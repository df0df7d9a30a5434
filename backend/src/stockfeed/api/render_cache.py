"""Rendered status bodies (`/api/ws/health`, `/metrics`), each kept a short while.

A render walks every connection; a flood of scrapes must not. Each body is kept `ttl`
seconds (RENDER_TTL) under its key (a view and a format: a handful of keys, so nothing
here needs a byte bound), and concurrent requests for a key share one render.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable

RENDER_TTL = 1.0


class RenderCache:
    """Rendered bodies, each kept `ttl` seconds; one render at a time per key. Keys are
    a view and a format: a handful, so nothing here needs a bound of its own."""

    def __init__(self, ttl: float = RENDER_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._bodies: dict[Hashable, tuple[float, bytes]] = {}
        self._flights: dict[Hashable, asyncio.Future[bytes]] = {}
        self.renders = 0
        self.hits = 0

    async def get(self, key: Hashable, render: Callable[[], Awaitable[bytes]]) -> bytes:
        kept = self._bodies.get(key)
        if kept is not None and kept[0] > self._clock():
            self.hits += 1
            return kept[1]
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = asyncio.ensure_future(self._render(key, render))
            flight.add_done_callback(_retrieve)
        else:
            self.hits += 1
        # Shielded: a caller that hangs up does not cancel the render the others wait for.
        return await asyncio.shield(flight)

    async def _render(self, key: Hashable, render: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            body = await render()
        finally:
            self._flights.pop(key, None)
        self.renders += 1
        self._bodies[key] = (self._clock() + self.ttl, body)
        return body


def _retrieve(future: asyncio.Future[bytes]) -> None:
    # Every waiter may have gone: mark a failure as seen, so asyncio does not log it.
    if not future.cancelled():
        future.exception()
