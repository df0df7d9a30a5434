"""One connected WebSocket client, as the hub sees it, and the one way bytes reach it.

Everything the server queues for a client goes through its `Connection`, whatever the
message: price updates (`offer_update`, `replay`), control messages (`send`: snapshot,
error, pong, subscribed...), shared frames (`send_frame`: bars, heartbeats, statuses).
That is the one accounted write path: every byte held for the client (the fast path's
pending frames and transport buffer, or the portable queue) counts against one byte
`budget`. The rules:

- While the client's writes are backed up, what can be replaced by something newer is:
  a ticker's price updates (the newest kept, a `conflated` notice first), and messages
  sent with a `key` (a ticker's `market_status`, a bar's latest version, the heartbeat).
- What cannot be replaced and would take the client over its budget closes it with 4408.
- A client whose writes stay backed up for `stuck_timeout` seconds is closed with 4408
  by a clock (fanout/stuck_watch.py), whether or not anything more is sent to it.
- Whoever produces replies for a client (its receive loop, a resume's replay, a bar
  book's first `bars`) awaits `writable()` between them: a client that does not read
  stops being read, and its requests stop producing replies.

Two ways to reach the socket:

- `SinkConnection` (the fast path, in stockfeed.server, offered through the ASGI scope's
  extensions): the shared pre-built frame goes straight into the connection's sink.
- `QueuedConnection` (any other ASGI server): a bounded queue drained by a writer task with
  `send_text`.
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
from collections.abc import Callable
from typing import ClassVar

from starlette.websockets import WebSocket

from stockfeed import protocol
from stockfeed.fanout.frames import frame_payload
from stockfeed.fanout.resume import Entry
from stockfeed.fanout.stuck_watch import stuck_watch
from stockfeed.protocol.codes import CloseCode

log = logging.getLogger(__name__)

# The ASGI extension through which a server offers its own way to write frames (the
# fast path's sink: stockfeed.server.fast_websocket).
SINK_EXTENSION = "stockfeed.sink"
# Bytes the server may hold for one client (config `client_buffer_bytes`): room for the
# biggest burst one request can cause (a subscribe of 50 tickers with 64 bar streams is
# ~0.8 MiB of `bars`), after which a client that does not read is no longer read.
DEFAULT_BUDGET = 1024 * 1024
# Past this many bytes held, a client's writes count as backed up (the fast path uses its
# transport's own marks, server/fast_websocket.py WRITE_HIGH / WRITE_LOW).
BACKED_UP_BYTES = 64 * 1024
_ids = itertools.count(1)

# Message rate check, taken once per client message (pings included): False = over.
Limiter = Callable[[], bool]


# Keys of the messages a newer one of the same key replaces while a client is backed up.
HEARTBEAT_KEY = "heartbeat"


def status_key(ticker: str) -> str:
    return f"market_status:{ticker}"


def bars_key(ticker: str, interval: str) -> str:
    return f"bars:{ticker}:{interval}"


def bar_key(ticker: str, interval: str, bar_text: str) -> str:
    """A `bar` replaces an earlier one of the same bar (every BAR text starts with
    `{"time":N,`, fanout/bars.py)."""
    return f"bar:{ticker}:{interval}:{bar_text[8 : bar_text.index(',')]}"


def conflated_notice(ticker: str, dropped: int) -> str:
    return protocol.dumps({"type": "conflated", "ticker": ticker, "dropped": dropped})


class Connection(abc.ABC):
    """One connected client as the hub sees it: what it holds (tickers, the last seq of
    each), and the non-blocking, accounted ways to reach it. Subclasses decide how bytes
    get to the socket (`_deliver`, `_write`, `_keep_newest`), how many are held
    (`held_bytes`, `backed_up`) and how a client is dropped (`abort`)."""

    # Whether frames go to the transport pre-framed, below the ASGI app (server/'s sink
    # connections): counted by /metrics and health without knowing the subclass.
    fast_path: ClassVar[bool] = False

    __slots__ = (
        "__weakref__",
        "_held_for_subscribe",
        "_writable",
        "budget",
        "close_code",
        "closed",
        "conflated",
        "gap_pending",
        "id",
        "last_seq",
        "limiter",
        "stuck_timeout",
        "tickers",
        "websocket",
    )

    def __init__(
        self,
        websocket: WebSocket,
        *,
        stuck_timeout: float,
        budget: int = DEFAULT_BUDGET,
        limiter: Limiter | None = None,
    ) -> None:
        self.id = next(_ids)
        self.websocket = websocket
        self.stuck_timeout = stuck_timeout
        self.budget = budget
        # The client's message rate (admission's token bucket), also taken for the
        # WebSocket pings the fast path answers below the app.
        self.limiter = limiter
        self.tickers: set[str] = set()
        self.last_seq: dict[str, int] = {}
        self.conflated = 0  # updates skipped by conflation, for health and tests
        self.closed = False
        self.close_code: int | None = None
        # Tickers being (re)subscribed: live updates wait here until the snapshot or the
        # replay has gone out, so they can never overtake it.
        self._held_for_subscribe: dict[str, list[tuple[int, bytes]]] | None = None
        # Tickers whose resume failed with no snapshot to stand in for the gap (nothing
        # cached yet): their next update goes out as that gap snapshot. ticker -> epoch.
        self.gap_pending: dict[str, str] | None = None
        # Resolved when the client's writes stop being backed up (see `writable`).
        self._writable: asyncio.Future[None] | None = None

    # -- held updates (subscribe, resume, backfill) --------------------------------------

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
        for seq, frame in held:
            self.offer_update(ticker, seq, frame)

    def release_to_jump(self, ticker: str) -> int | None:
        """`release`, but only up to a hole: an update that does not follow the last one
        sent (the broker skipped some while this client was held) stays held with all
        after it, and its seq is returned. None: everything held went out."""
        if self._held_for_subscribe is None:
            return None
        held = self._held_for_subscribe.pop(ticker, [])
        if not self._held_for_subscribe:
            self._held_for_subscribe = None
        for i, (seq, frame) in enumerate(held):
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
            self.offer_update(ticker, seq, frame)
        return None

    def replay(self, ticker: str, entry: Entry) -> None:
        """An update from history: goes out now, in order, ahead of anything held. The
        replayer awaits `writable()` between chunks (hub), so a replay never goes out as
        one unbounded write."""
        if self.closed or entry.seq <= self.last_seq.get(ticker, 0):
            return
        self.last_seq[ticker] = entry.seq
        self._deliver(ticker, entry.frame)

    @property
    def remote(self) -> str:
        client = self.websocket.client
        return f"{client.host}:{client.port}" if client else "?"

    # -- the write path ------------------------------------------------------------------

    def offer_update(self, ticker: str, seq: int, frame: bytes) -> None:
        """A relayed update, as its frame (the text is the frame's payload, read only where
        a path needs it): skipped when this client already has it (by seq)."""
        holding = self._held_for_subscribe
        if holding is not None and ticker in holding:
            holding[ticker].append((seq, frame))
            return
        if self.closed or seq <= self.last_seq.get(ticker, 0):
            return
        self.last_seq[ticker] = seq
        if self.gap_pending is not None and ticker in self.gap_pending:
            epoch = self.gap_pending.pop(ticker)
            if not self.gap_pending:
                self.gap_pending = None
            _, _, update = protocol.read_update(frame_payload(frame))
            self.send(protocol.snapshot(update, gap=True, epoch=epoch))
            return
        self._deliver(ticker, frame)

    def send(self, text: str) -> None:
        """A control message for this client alone (snapshot, error, pong...): never
        replaced by a newer one; over the budget it closes the client."""
        self.send_frame(text, None)

    def send_frame(self, text: str, frame: bytes | None, key: str | None = None) -> None:
        """A message as its text and, when it was built once for many clients (`bars`,
        `bar`, heartbeats), its shared frame. With a `key`, a newer message of the same
        key replaces it while the client's writes are backed up (`market_status:T`, a
        bar's `bar:T:I:TIME`); without one, nothing replaces it, and a client it would
        take over its byte budget is closed with 4408 instead."""
        if self.closed:
            return
        if key is not None and self.backed_up():
            self._keep_newest(key, text, frame)
            return
        size = len(frame) if frame is not None else len(text) + 4
        held = self.held_bytes()
        if held + size > self.budget:
            self._over_budget(held + size)
            return
        self._write(text, frame)

    def _over_budget(self, held: int) -> None:
        log.warning(
            "client %s would hold %d bytes, budget %d: closing 4408",
            self.remote,
            held,
            self.budget,
            extra={"conn": self.id},
        )
        self.abort(CloseCode.SLOW_CONSUMER, "slow consumer")

    async def writable(self) -> bool:
        """Wait until the client's writes are no longer backed up. False: it is closed
        (a stuck client is closed by the stuck watch meanwhile)."""
        while not self.closed and self.backed_up():
            waiter = self._writable
            if waiter is None or waiter.done():
                waiter = self._writable = asyncio.get_running_loop().create_future()
            await waiter
        return not self.closed

    def _wake_writers(self) -> None:
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @abc.abstractmethod
    def held_bytes(self) -> int:
        """Bytes held for this client and not yet taken by the kernel."""

    @abc.abstractmethod
    def backed_up(self) -> bool:
        """Whether the client's writes are backed up (it is not keeping up)."""

    @abc.abstractmethod
    def stalled_since(self) -> float | None:
        """`time.monotonic()` since which the client has taken nothing, or None."""

    @abc.abstractmethod
    def _deliver(self, ticker: str, frame: bytes) -> None:
        """A price update (its frame): written, or conflated while backed up."""

    @abc.abstractmethod
    def _write(self, text: str, frame: bytes | None) -> None:
        """A message that fits the budget: written in order."""

    @abc.abstractmethod
    def _keep_newest(self, key: str, text: str, frame: bytes | None) -> None:
        """A keyed message while backed up: replaces an earlier one of the same key (a
        new key past the budget closes the client)."""

    def start(self) -> None:  # noqa: B027 - optional hook
        pass

    def backlog(self) -> tuple[int, int]:
        """(messages waiting to be written, bytes in the transport's buffer), read by
        /metrics at scrape time."""
        return 0, 0

    @abc.abstractmethod
    def abort(self, code: int, reason: str) -> None:
        """Stop sending and close with `code` (best effort: the peer may be stuck)."""

    def close_stuck(self) -> None:
        """Called by the stuck watch (and the conflation path) for a client that has
        taken nothing for `stuck_timeout` seconds."""
        if self.closed:
            return
        log.warning(
            "client %s stuck for %.0fs: closing 4408",
            self.remote,
            self.stuck_timeout,
            extra={"conn": self.id},
        )
        self.abort(CloseCode.SLOW_CONSUMER, "slow consumer")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Flush what is queued, then close."""
        if self.closed:
            return
        await self._flush(limit=2.0)
        self.closed = True
        self.close_code = code
        self._wake_writers()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason), 2.0)

    async def _flush(self, limit: float) -> None:  # noqa: B027 - optional hook
        """Wait (at most `limit` seconds) until what is queued went out."""

    async def stop(self) -> None:
        """The connection ended."""
        self.closed = True
        self._wake_writers()


class QueuedConnection(Connection):
    """The portable connection: a bounded queue drained by a writer task with
    `send_text`, for any ASGI server. Items are (key, text): key is the ticker for a
    price update, the message's key for a keyed message, None otherwise."""

    __slots__ = (
        "_bytes",
        "_drained",
        "_last_progress",
        "_queue",
        "_sending",
        "_wake",
        "_writer",
        "queue_size",
    )

    def __init__(
        self,
        websocket: WebSocket,
        *,
        queue_size: int,
        stuck_timeout: float,
        budget: int = DEFAULT_BUDGET,
        limiter: Limiter | None = None,
    ) -> None:
        super().__init__(websocket, stuck_timeout=stuck_timeout, budget=budget, limiter=limiter)
        self.queue_size = queue_size
        self._queue: deque[tuple[str | None, str]] = deque()
        self._bytes = 0  # characters of text queued (JSON: about its bytes)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._last_progress = time.monotonic()
        self._sending = False  # the writer waits in send_text: the client has not taken it
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")

    def backlog(self) -> tuple[int, int]:
        return len(self._queue), 0

    def held_bytes(self) -> int:
        return self._bytes

    def backed_up(self) -> bool:
        return len(self._queue) >= self.queue_size or self._bytes > BACKED_UP_BYTES

    def stalled_since(self) -> float | None:
        return self._last_progress if self._queue or self._sending else None

    def _append(self, key: str | None, text: str) -> None:
        if not self._queue:
            self._last_progress = time.monotonic()  # stuck time counts from non-empty
            stuck_watch().backed_up(self)
        self._queue.append((key, text))
        self._bytes += len(text)
        self._wake.set()

    def _deliver(self, ticker: str, frame: bytes) -> None:
        if self.backed_up():
            self._conflate(ticker)
            if self.closed:
                return
        self._append(ticker, frame_payload(frame).decode())
        if self._bytes > self.budget:
            self._over_budget(self._bytes)

    def _write(self, text: str, frame: bytes | None) -> None:
        self._append(None, text)

    def _keep_newest(self, key: str, text: str, frame: bytes | None) -> None:
        self._drop(lambda item: item[0] == key)
        self._append(key, text)
        if self._bytes > self.budget:
            self._over_budget(self._bytes)

    def _drop(self, match: Callable[[tuple[str | None, str]], bool]) -> int:
        kept: deque[tuple[str | None, str]] = deque()
        dropped = 0
        for item in self._queue:
            if match(item):
                dropped += 1
                self._bytes -= len(item[1])
            else:
                kept.append(item)
        self._queue = kept
        return dropped

    def _conflate(self, ticker: str) -> None:
        if time.monotonic() - self._last_progress > self.stuck_timeout:
            self.close_stuck()
            return
        earlier = 0  # skips this ticker's queued notices already told of
        notice_prefix = f'{{"type":"conflated","ticker":"{ticker}",'

        def folded(item: tuple[str | None, str]) -> bool:
            nonlocal earlier
            if item[0] is None and item[1].startswith(notice_prefix):
                earlier += int(json.loads(item[1])["dropped"])
                return True
            return False

        dropped = self._drop(lambda item: item[0] == ticker)
        if dropped == 0:
            # Full of other tickers' updates and control messages: nothing to fold.
            log.warning("client %s queue full: closing 4408", self.remote, extra={"conn": self.id})
            self.abort(CloseCode.SLOW_CONSUMER, "slow consumer")
            return
        self._drop(folded)
        self.conflated += dropped
        self._append(None, conflated_notice(ticker, earlier + dropped))

    def abort(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._queue.clear()
        self._bytes = 0
        self._wake.set()
        self._wake_writers()
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
        self._bytes = 0
        self._wake_writers()
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
                self._bytes -= len(text)
                self._sending = True
                await self.websocket.send_text(text)
                self._sending = False
                self._last_progress = time.monotonic()
                if self._writable is not None and not self.backed_up():
                    self._wake_writers()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # peer gone: the receive loop will notice and clean up
            log.debug("writer for %s stopped: %s", self.remote, exc, extra={"conn": self.id})
            self.closed = True
            self._drained.set()
            self._wake_writers()


def make_connection(
    websocket: WebSocket,
    *,
    queue_size: int,
    stuck_timeout: float,
    budget: int = DEFAULT_BUDGET,
    limiter: Limiter | None = None,
) -> Connection:
    """The server's own connection when it offers one (the fast path's sink, an ASGI
    extension), else the portable one. The fan-out core never imports the server: the
    extension brings its own connection class."""
    sink = websocket.scope.get("extensions", {}).get(SINK_EXTENSION)
    if sink is not None and hasattr(sink, "connection"):
        made: Connection = sink.connection(
            websocket, stuck_timeout=stuck_timeout, budget=budget, limiter=limiter
        )
        return made
    return QueuedConnection(
        websocket,
        queue_size=queue_size,
        stuck_timeout=stuck_timeout,
        budget=budget,
        limiter=limiter,
    )
