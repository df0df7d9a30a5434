"""One connected WebSocket client: a bounded send queue drained by its own writer.

The hub only ever calls the non-blocking `offer_update` / `send`, so a slow client
never delays the broadcast to the others. When the queue is full, the queued updates
of that ticker are conflated into its newest one (preceded by a `conflated` notice);
a client that makes no progress for `stuck_timeout` seconds is closed with 4408.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque

from starlette.websockets import WebSocket

from stockfeed import protocol

log = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 4408
_ids = itertools.count(1)


class ClientConnection:
    def __init__(
        self, websocket: WebSocket, *, queue_size: int, stuck_timeout: float = 30.0
    ) -> None:
        self.id = next(_ids)
        self.websocket = websocket
        client = websocket.client
        self.remote = f"{client.host}:{client.port}" if client else "?"
        self.queue_size = queue_size
        self.stuck_timeout = stuck_timeout
        self.tickers: set[str] = set()
        self.last_seq: dict[str, int] = {}
        self.conflated = 0
        self._queue: deque[tuple[str | None, str]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._last_progress = time.monotonic()
        self._writer: asyncio.Task[None] | None = None
        self.closed = False
        self.close_code: int | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")

    def offer_update(self, ticker: str, seq: int, raw: str) -> None:
        """Queue a relayed update unless this client already has it (by seq)."""
        if self.closed or seq <= self.last_seq.get(ticker, 0):
            return
        self.last_seq[ticker] = seq
        if not self._queue:
            self._last_progress = time.monotonic()  # stuck time counts from non-empty
        elif len(self._queue) >= self.queue_size:
            self._conflate(ticker)
            if self.closed:
                return
        self._queue.append((ticker, raw))
        self._wake.set()

    def send(self, text: str) -> None:
        """Queue a control message (snapshot, error, pong...): never dropped by conflation."""
        if self.closed:
            return
        if not self._queue:
            self._last_progress = time.monotonic()
        self._queue.append((None, text))
        self._wake.set()

    def _conflate(self, ticker: str) -> None:
        if time.monotonic() - self._last_progress > self.stuck_timeout:
            log.warning("client %s stuck for %.0fs: closing 4408", self.remote, self.stuck_timeout)
            self.abort(CLOSE_SLOW_CONSUMER, "slow consumer")
            return
        kept: deque[tuple[str | None, str]] = deque()
        dropped = 0
        for item in self._queue:
            if item[0] == ticker:
                dropped += 1
            elif not (item[0] is None and item[1].startswith('{"type":"conflated"')):
                kept.append(item)
        if dropped == 0:
            # Full of other tickers' updates and control messages: nothing to fold.
            log.warning("client %s queue full: closing 4408", self.remote)
            self.abort(CLOSE_SLOW_CONSUMER, "slow consumer")
            return
        self.conflated += dropped
        kept.append(
            (None, protocol.dumps({"type": "conflated", "ticker": ticker, "dropped": dropped}))
        )
        self._queue = kept

    def abort(self, code: int, reason: str) -> None:
        """Stop sending and close with `code` (best effort: the peer may be gone)."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._queue.clear()
        self._wake.set()
        asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason), 2.0)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Flush what is queued, then close."""
        if self.closed:
            return
        await self.flush(limit=2.0)
        self.closed = True
        self.close_code = code
        if self._writer is not None:
            self._writer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason), 2.0)

    async def flush(self, limit: float) -> None:
        """Wait (at most `limit` seconds) until the writer has sent everything queued."""
        if self._queue and not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), limit)

    async def stop(self) -> None:
        """The connection ended: stop the writer."""
        self.closed = True
        self._queue.clear()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer

    async def _write_loop(self) -> None:
        try:
            while not self.closed:
                if not self._queue:
                    self._drained.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._drained.clear()
                _, text = self._queue.popleft()
                await self.websocket.send_text(text)
                self._last_progress = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # peer gone: the receive loop will notice and clean up
            log.debug("writer for %s stopped: %s", self.remote, exc)
            self.closed = True
            self._drained.set()
