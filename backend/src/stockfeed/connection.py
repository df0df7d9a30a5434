"""One connected WebSocket client, as the hub sees it.

The hub only ever calls the non-blocking `offer_update` / `send`, so a slow client never
delays the broadcast to the others. Two ways to reach the socket:

- `SinkClient` (the fast path, see fastpath.py): the shared pre-built frame goes straight
  into the connection's sink; when the transport's buffer is full the client's updates
  are conflated per ticker (newest kept, a `conflated` notice first) until it drains.
- `QueuedClient` (any other ASGI server): a bounded queue drained by a writer task with
  `send_text`; when the queue is full that ticker's queued updates are conflated.

Either way a client that makes no progress for `stuck_timeout` seconds is closed with 4408,
so a stuck client costs a bounded amount of memory for a bounded time.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque

from starlette.websockets import WebSocket

from stockfeed import protocol
from stockfeed.fastpath import Sink, text_frame
from stockfeed.resume import Entry

log = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 4408
_ids = itertools.count(1)


def _conflated_notice(ticker: str, dropped: int) -> str:
    return protocol.dumps({"type": "conflated", "ticker": ticker, "dropped": dropped})


class ClientConnection(abc.ABC):
    __slots__ = (
        "__weakref__",
        "_holding",
        "close_code",
        "closed",
        "conflated",
        "gap_pending",
        "id",
        "last_seq",
        "stuck_timeout",
        "tickers",
        "websocket",
    )

    def __init__(self, websocket: WebSocket, *, stuck_timeout: float) -> None:
        self.id = next(_ids)
        self.websocket = websocket
        self.stuck_timeout = stuck_timeout
        self.tickers: set[str] = set()
        self.last_seq: dict[str, int] = {}
        self.conflated = 0  # updates skipped by conflation, for health and tests
        self.closed = False
        self.close_code: int | None = None
        # Tickers being (re)subscribed: live updates wait here until the snapshot or the
        # replay has gone out, so they can never overtake it.
        self._holding: dict[str, list[tuple[int, str, bytes]]] | None = None
        # Tickers whose resume failed with no snapshot to stand in for the gap (nothing
        # cached yet): their next update goes out as that gap snapshot. ticker -> epoch.
        self.gap_pending: dict[str, str] | None = None

    def is_holding(self, ticker: str) -> bool:
        return self._holding is not None and ticker in self._holding

    def gap_next(self, ticker: str, epoch: str) -> None:
        """Nothing can stand in for a gap now: send the next update as the gap snapshot."""
        if self.gap_pending is None:
            self.gap_pending = {}
        self.gap_pending[ticker] = epoch

    def hold(self, ticker: str) -> None:
        if self._holding is None:
            self._holding = {}
        self._holding[ticker] = []

    def release(self, ticker: str) -> None:
        """Deliver what arrived while held, minus what the snapshot/replay covered."""
        if self._holding is None:
            return
        held = self._holding.pop(ticker, [])
        if not self._holding:
            self._holding = None
        for seq, raw, frame in held:
            self.offer_update(ticker, seq, raw, frame)

    def replay(self, ticker: str, entry: Entry) -> None:
        """An update from history: goes out now, in order, ahead of anything held."""
        if self.closed or entry.seq <= self.last_seq.get(ticker, 0):
            return
        self.last_seq[ticker] = entry.seq
        self._deliver(ticker, entry.text, entry.frame)

    @property
    def remote(self) -> str:
        client = self.websocket.client
        return f"{client.host}:{client.port}" if client else "?"

    def offer_update(self, ticker: str, seq: int, raw: str, frame: bytes) -> None:
        """A relayed update: skipped when this client already has it (by seq)."""
        holding = self._holding
        if holding is not None and ticker in holding:
            holding[ticker].append((seq, raw, frame))
            return
        if self.closed or seq <= self.last_seq.get(ticker, 0):
            return
        self.last_seq[ticker] = seq
        if self.gap_pending is not None and ticker in self.gap_pending:
            epoch = self.gap_pending.pop(ticker)
            if not self.gap_pending:
                self.gap_pending = None
            _, _, update = protocol.read_update(raw)
            self.send(protocol.snapshot(update, gap=True, epoch=epoch))
            return
        self._deliver(ticker, raw, frame)

    @abc.abstractmethod
    def _deliver(self, ticker: str, raw: str, frame: bytes) -> None: ...

    @abc.abstractmethod
    def send(self, text: str) -> None:
        """A control message (snapshot, error, pong...): never conflated."""

    def start(self) -> None:  # noqa: B027 - optional hook
        pass

    def backlog(self) -> tuple[int, int]:
        """(messages waiting to be written, bytes in the transport's buffer), read by
        /metrics at scrape time."""
        return 0, 0

    @abc.abstractmethod
    def abort(self, code: int, reason: str) -> None:
        """Stop sending and close with `code` (best effort: the peer may be stuck)."""

    def _close_stuck(self) -> None:
        log.warning(
            "client %s stuck for %.0fs: closing 4408",
            self.remote,
            self.stuck_timeout,
            extra={"conn": self.id},
        )
        self.abort(CLOSE_SLOW_CONSUMER, "slow consumer")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Flush what is queued, then close."""
        if self.closed:
            return
        await self._flush(limit=2.0)
        self.closed = True
        self.close_code = code
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason), 2.0)

    async def _flush(self, limit: float) -> None:  # noqa: B027 - optional hook
        """Wait (at most `limit` seconds) until what is queued went out."""

    async def stop(self) -> None:
        """The connection ended."""
        self.closed = True


class _Held:
    """The newest update of a ticker held back while the client's transport is full."""

    __slots__ = ("dropped", "frame")

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.dropped = 0


class SinkClient(ClientConnection):
    __slots__ = ("_held", "_since", "sink")

    def __init__(self, websocket: WebSocket, sink: Sink, *, stuck_timeout: float) -> None:
        super().__init__(websocket, stuck_timeout=stuck_timeout)
        self.sink = sink
        # While the transport is paused: ticker -> its newest update and how many it replaced.
        self._held: dict[str, _Held] | None = None
        self._since = 0.0
        sink.on_drain = self._drained

    def offer_update(self, ticker: str, seq: int, raw: str, frame: bytes) -> None:
        # The broadcast calls this for every subscriber of every update: the common case
        # (nothing held, nothing pending, socket writable) is inlined here; everything
        # else takes the general path.
        if (
            self._holding is not None
            or self.gap_pending is not None
            or self._held is not None
            or self.closed
        ):
            super().offer_update(ticker, seq, raw, frame)
            return
        last = self.last_seq
        if seq <= last.get(ticker, 0):
            return
        last[ticker] = seq
        sink = self.sink
        if sink.paused:
            self._deliver(ticker, raw, frame)
            return
        pending = sink._pending
        if not pending:
            sink._flusher.mark(sink)
        pending.append(frame)

    def _deliver(self, ticker: str, raw: str, frame: bytes) -> None:
        sink = self.sink
        if self._held is None and not sink.paused:
            sink.write(frame)
            return
        if self._held is None:
            self._held = {}
            self._since = time.monotonic()
        elif time.monotonic() - self._since > self.stuck_timeout:
            self._close_stuck()
            return
        held = self._held.get(ticker)
        if held is None:
            self._held[ticker] = _Held(frame)
        else:
            held.frame = frame
            held.dropped += 1
            self.conflated += 1

    def backlog(self) -> tuple[int, int]:
        held = len(self._held) if self._held is not None else 0
        pending, buffered = self.sink.backlog()
        return pending + held, buffered

    def _drained(self) -> None:
        held, self._held = self._held, None
        if not held or self.closed:
            return
        for ticker, item in held.items():
            if item.dropped:
                self.sink.write(text_frame(_conflated_notice(ticker, item.dropped).encode()))
            self.sink.write(item.frame)

    def send(self, text: str) -> None:
        if not self.closed:
            self.sink.write(text_frame(text.encode()))

    def abort(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._held = None
        self.sink.close(code, reason)

    async def _flush(self, limit: float) -> None:
        self.sink.flush()

    async def stop(self) -> None:
        self.closed = True
        self._held = None
        self.sink.on_drain = None


class QueuedClient(ClientConnection):
    __slots__ = ("_drained", "_last_progress", "_queue", "_wake", "_writer", "queue_size")

    def __init__(self, websocket: WebSocket, *, queue_size: int, stuck_timeout: float) -> None:
        super().__init__(websocket, stuck_timeout=stuck_timeout)
        self.queue_size = queue_size
        self._queue: deque[tuple[str | None, str]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._last_progress = time.monotonic()
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")

    def backlog(self) -> tuple[int, int]:
        return len(self._queue), 0

    def _deliver(self, ticker: str, raw: str, frame: bytes) -> None:
        if not self._queue:
            self._last_progress = time.monotonic()  # stuck time counts from non-empty
        elif len(self._queue) >= self.queue_size:
            self._conflate(ticker)
            if self.closed:
                return
        self._queue.append((ticker, raw))
        self._wake.set()

    def send(self, text: str) -> None:
        if self.closed:
            return
        if not self._queue:
            self._last_progress = time.monotonic()
        self._queue.append((None, text))
        self._wake.set()

    def _conflate(self, ticker: str) -> None:
        if time.monotonic() - self._last_progress > self.stuck_timeout:
            self._close_stuck()
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
            log.warning("client %s queue full: closing 4408", self.remote, extra={"conn": self.id})
            self.abort(CLOSE_SLOW_CONSUMER, "slow consumer")
            return
        self.conflated += dropped
        kept.append((None, _conflated_notice(ticker, dropped)))
        self._queue = kept

    def abort(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._queue.clear()
        self._wake.set()
        asyncio.get_running_loop().create_task(self._close_now(code, reason))

    async def _close_now(self, code: int, reason: str) -> None:
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason), 2.0)

    async def _flush(self, limit: float) -> None:
        if self._queue and not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), limit)
        if self._writer is not None:
            self._writer.cancel()

    async def stop(self) -> None:
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
            log.debug("writer for %s stopped: %s", self.remote, exc, extra={"conn": self.id})
            self.closed = True
            self._drained.set()


def make_client(websocket: WebSocket, *, queue_size: int, stuck_timeout: float) -> ClientConnection:
    """The fast client when the server offers a sink, else the portable one."""
    sink = websocket.scope.get("extensions", {}).get("stockfeed.sink")
    if isinstance(sink, Sink):
        return SinkClient(websocket, sink, stuck_timeout=stuck_timeout)
    return QueuedClient(websocket, queue_size=queue_size, stuck_timeout=stuck_timeout)
