"""One connected WebSocket client, as the hub sees it.

The hub only ever calls the non-blocking `offer_update` / `send`, so a slow client never
delays the broadcast to the others. Two ways to reach the socket:

- `SinkConnection` (the fast path, in stockfeed.server, offered through the ASGI scope's
  extensions): the shared pre-built frame goes straight into the connection's sink; when
  the transport's buffer is full the client's updates are conflated per ticker (newest
  kept, a `conflated` notice first) until it drains.
- `QueuedConnection` (any other ASGI server): a bounded queue drained by a writer task with
  `send_text`; when the queue is full that ticker's queued updates are conflated.

Either way a client that makes no progress for `stuck_timeout` seconds is closed with 4408,
so a stuck client costs a bounded amount of memory for a bounded time.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque

from starlette.websockets import WebSocket

from stockfeed import protocol
from stockfeed.fanout.resume import Entry
from stockfeed.protocol.codes import CloseCode

log = logging.getLogger(__name__)

# The ASGI extension through which a server offers its own way to write frames (the
# fast path's sink: stockfeed.server.fast_websocket).
SINK_EXTENSION = "stockfeed.sink"
CLOSE_SLOW_CONSUMER = CloseCode.SLOW_CONSUMER
_ids = itertools.count(1)


def conflated_notice(ticker: str, dropped: int) -> str:
    return protocol.dumps({"type": "conflated", "ticker": ticker, "dropped": dropped})


class Connection(abc.ABC):
    """One connected client as the hub sees it: what it holds (tickers, the last seq of
    each), and the non-blocking ways to reach it. Subclasses decide how bytes get to
    the socket (`_deliver`, `send`) and how a stuck client is dropped (`abort`)."""

    __slots__ = (
        "__weakref__",
        "_held_for_subscribe",
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
        self._held_for_subscribe: dict[str, list[tuple[int, str, bytes]]] | None = None
        # Tickers whose resume failed with no snapshot to stand in for the gap (nothing
        # cached yet): their next update goes out as that gap snapshot. ticker -> epoch.
        self.gap_pending: dict[str, str] | None = None

    def is_held_for_subscribe(self, ticker: str) -> bool:
        return self._held_for_subscribe is not None and ticker in self._held_for_subscribe

    def gap_next(self, ticker: str, epoch: str) -> None:
        """Nothing can stand in for a gap now: send the next update as the gap snapshot."""
        if self.gap_pending is None:
            self.gap_pending = {}
        self.gap_pending[ticker] = epoch

    def hold(self, ticker: str) -> None:
        if self._held_for_subscribe is None:
            self._held_for_subscribe = {}
        self._held_for_subscribe[ticker] = []

    def release(self, ticker: str) -> None:
        """Deliver what arrived while held, minus what the snapshot/replay covered."""
        if self._held_for_subscribe is None:
            return
        held = self._held_for_subscribe.pop(ticker, [])
        if not self._held_for_subscribe:
            self._held_for_subscribe = None
        for seq, raw, frame in held:
            self.offer_update(ticker, seq, raw, frame)

    def release_to_jump(self, ticker: str) -> int | None:
        """`release`, but only up to a hole: an update that does not follow the last one
        sent (the broker skipped some while this client was held) stays held with all
        after it, and its seq is returned. None: everything held went out."""
        if self._held_for_subscribe is None:
            return None
        held = self._held_for_subscribe.pop(ticker, [])
        if not self._held_for_subscribe:
            self._held_for_subscribe = None
        for i, (seq, raw, frame) in enumerate(held):
            last = self.last_seq.get(ticker)
            if (
                last is not None
                and seq > last + 1
                and not self.closed
                and (self.gap_pending is None or ticker not in self.gap_pending)
            ):
                if self._held_for_subscribe is None:
                    self._held_for_subscribe = {}
                self._held_for_subscribe[ticker] = held[i:]
                return seq
            self.offer_update(ticker, seq, raw, frame)
        return None

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
        holding = self._held_for_subscribe
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

    def send_frame(self, text: str, frame: bytes) -> None:
        """A message built once for many clients (`bars`, `bar`), as its text and its
        frame: the fast path writes the shared frame, the others send the text. Never
        conflated, like a control message (a stuck client is still closed in time)."""
        self.send(text)

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


class QueuedConnection(Connection):
    """The portable connection: a bounded queue drained by a writer task with
    `send_text`, for any ASGI server."""

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
        earlier = 0  # skips this ticker's queued notices already told of
        notice_prefix = f'{{"type":"conflated","ticker":"{ticker}",'
        for item in self._queue:
            if item[0] == ticker:
                dropped += 1
            elif item[0] is None and item[1].startswith(notice_prefix):
                earlier += int(json.loads(item[1])["dropped"])
            else:
                kept.append(item)
        if dropped == 0:
            # Full of other tickers' updates and control messages: nothing to fold.
            log.warning("client %s queue full: closing 4408", self.remote, extra={"conn": self.id})
            self.abort(CLOSE_SLOW_CONSUMER, "slow consumer")
            return
        self.conflated += dropped
        kept.append((None, conflated_notice(ticker, earlier + dropped)))
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


def make_connection(websocket: WebSocket, *, queue_size: int, stuck_timeout: float) -> Connection:
    """The server's own connection when it offers one (the fast path's sink, an ASGI
    extension), else the portable one. The fan-out core never imports the server: the
    extension brings its own connection class."""
    sink = websocket.scope.get("extensions", {}).get(SINK_EXTENSION)
    if sink is not None and hasattr(sink, "connection"):
        made: Connection = sink.connection(websocket, stuck_timeout=stuck_timeout)
        return made
    return QueuedConnection(websocket, queue_size=queue_size, stuck_timeout=stuck_timeout)
