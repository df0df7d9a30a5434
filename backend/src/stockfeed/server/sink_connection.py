"""The fast path's connection: the hub's frames go straight into the socket's sink.

What is held for the client is the sink's pending frames plus the transport's buffer
(`Sink.held_bytes`), plus what waits here while the transport is paused: the newest
update of each ticker and the newest keyed message of each key. The transport pauses
past its high-water mark (fast_websocket.py WRITE_HIGH); from then until it drains the
connection counts as backed up, the stuck watch times it, and the protocol stops
reading the client (fanout.connections has the rules both kinds of connection share).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

from stockfeed import protocol
from stockfeed.fanout.connections import (
    DEFAULT_BUDGET,
    Connection,
    Limiter,
    conflated_notice,
)
from stockfeed.fanout.frames import text_frame
from stockfeed.fanout.stuck_watch import stuck_watch
from stockfeed.protocol.codes import CloseCode, ErrorCode

if TYPE_CHECKING:
    from stockfeed.server.fast_websocket import Sink

# Bytes pending for one client past which they go to the transport at once rather than at
# the end of the loop turn: a read of the broker can bring many updates for one client,
# and past the transport's high-water mark (fast_websocket.py WRITE_HIGH) it pauses and
# the rest are conflated.
FLUSH_AT = 64 * 1024


class _Newest:
    """What waits for a paused transport under one key: a ticker's newest update (and
    how many it replaced), or a keyed message's newest version."""

    __slots__ = ("dropped", "frame", "update")

    def __init__(self, frame: bytes, update: bool) -> None:
        self.frame = frame
        self.update = update
        self.dropped = 0


class SinkConnection(Connection):
    fast_path = True

    __slots__ = ("_conflating", "_since", "sink")

    def __init__(
        self,
        websocket: WebSocket,
        sink: Sink,
        *,
        stuck_timeout: float,
        budget: int = DEFAULT_BUDGET,
        limiter: Limiter | None = None,
    ) -> None:
        super().__init__(websocket, stuck_timeout=stuck_timeout, budget=budget, limiter=limiter)
        self.sink = sink
        # While the transport is paused: key (a ticker, or a message's key) -> its newest.
        self._conflating: dict[str, _Newest] | None = None
        self._since = 0.0  # time.monotonic() the transport paused; 0: not paused
        sink.on_drain = self._drained
        sink.on_pause = self._paused
        sink.on_ping = self._ping

    def offer_update(self, ticker: str, seq: int, frame: bytes) -> None:
        # The broadcast calls this for every subscriber of every update: the common case
        # (nothing held, nothing pending, socket writable) is inlined here; everything
        # else takes the general path.
        if (
            self._held_for_subscribe is not None
            or self.gap_pending is not None
            or self._conflating is not None
            or self.closed
        ):
            super().offer_update(ticker, seq, frame)
            return
        last = self.last_seq
        if seq <= last.get(ticker, 0):
            return
        last[ticker] = seq
        sink = self.sink
        if sink.paused:
            self._deliver(ticker, frame)
            return
        pending = sink.pending
        if not pending:
            sink.flusher.mark(sink)
        pending.append(frame)
        size = sink.pending_bytes + len(frame)
        sink.pending_bytes = size
        if size > FLUSH_AT:
            sink.flush()  # the transport pauses past its mark: then updates conflate

    def held_bytes(self) -> int:
        held = self.sink.held_bytes()
        if self._conflating is not None:
            held += sum(len(item.frame) for item in self._conflating.values())
        return held

    def backed_up(self) -> bool:
        return self.sink.paused or self._conflating is not None

    def stalled_since(self) -> float | None:
        return self._since if self._since and self.backed_up() else None

    def _deliver(self, ticker: str, frame: bytes) -> None:
        if self._conflating is None and not self.sink.paused:
            self.sink.write(frame)
            return
        self._hold(ticker, frame, update=True)

    def _write(self, text: str, frame: bytes | None) -> None:
        # A burst of replies (a subscribe's snapshots and bars) goes to the transport once
        # past FLUSH_AT (Sink.write), not only at the end of the loop turn: past its
        # high-water mark it pauses, and the updates that follow are conflated instead of
        # piling up behind the burst.
        self.sink.write(frame if frame is not None else text_frame(text.encode()))

    def _keep_newest(self, key: str, text: str, frame: bytes | None) -> None:
        self._hold(key, frame if frame is not None else text_frame(text.encode()), update=False)

    def _hold(self, key: str, frame: bytes, *, update: bool) -> None:
        conflating = self._conflating
        if conflating is None:
            conflating = self._conflating = {}
            if not self._since:  # not timed yet (a pause the sink did not report)
                self._paused()
        elif time.monotonic() - self._since > self.stuck_timeout:
            self.close_stuck()
            return
        held = conflating.pop(key, None)
        item = conflating[key] = _Newest(frame, update)  # newest last: drained in order
        if held is None:
            # One more key held: its newest is all that can be kept of it, and past the
            # budget even that is too much.
            total = self.held_bytes()
            if total > self.budget:
                self._over_budget(total)
        elif update:
            item.dropped = held.dropped + 1
            self.conflated += 1

    def _paused(self) -> None:
        """The transport's buffer passed its high-water mark."""
        if not self.closed:
            self._since = time.monotonic()
            stuck_watch().backed_up(self)

    def backlog(self) -> tuple[int, int]:
        held = len(self._conflating) if self._conflating is not None else 0
        pending, buffered = self.sink.backlog()
        return pending + held, buffered

    def _drained(self) -> None:
        held, self._conflating = self._conflating, None
        self._since = 0.0
        if held and not self.closed:
            for key, item in held.items():
                if item.dropped:
                    self.sink.write(text_frame(conflated_notice(key, item.dropped).encode()))
                self.sink.write(item.frame)
        self._wake_writers()

    def _ping(self) -> bool:
        """A WebSocket ping arrived (answered by the protocol): it counts like a message."""
        if self.limiter is None or self.limiter():
            return True
        self.send(protocol.error(ErrorCode.RATE_LIMITED, "too many messages: slow down"))
        self.abort(CloseCode.POLICY_VIOLATION, "too many messages")
        return False

    def abort(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._conflating = None
        self.sink.close(code, reason)
        self._wake_writers()

    async def _flush(self, limit: float) -> None:
        self.sink.flush()

    async def stop(self) -> None:
        self.closed = True
        self._conflating = None
        self.sink.on_drain = None
        self.sink.on_pause = None
        self.sink.on_ping = None
        self._wake_writers()
