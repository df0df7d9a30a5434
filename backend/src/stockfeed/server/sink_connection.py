"""The fast path's connection: the hub's frames go straight into the socket's sink.

When the transport's buffer is full the client's updates are conflated per ticker
(newest kept, a `conflated` notice first) until it drains; a client that stays full for
`stuck_timeout` seconds is closed with 4408 (fanout.connections has the rules both kinds
of connection share).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

from stockfeed.fanout.connections import Connection, conflated_notice
from stockfeed.fanout.frames import text_frame

if TYPE_CHECKING:
    from stockfeed.server.fast_websocket import Sink


class _Newest:
    """The newest update of a ticker held back while the client's transport is full."""

    __slots__ = ("dropped", "frame")

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.dropped = 0


class SinkConnection(Connection):
    __slots__ = ("_conflating", "_since", "sink")

    def __init__(self, websocket: WebSocket, sink: Sink, *, stuck_timeout: float) -> None:
        super().__init__(websocket, stuck_timeout=stuck_timeout)
        self.sink = sink
        # While the transport is paused: ticker -> its newest update and how many it replaced.
        self._conflating: dict[str, _Newest] | None = None
        self._since = 0.0
        sink.on_drain = self._drained

    def offer_update(self, ticker: str, seq: int, raw: str, frame: bytes) -> None:
        # The broadcast calls this for every subscriber of every update: the common case
        # (nothing held, nothing pending, socket writable) is inlined here; everything
        # else takes the general path.
        if (
            self._held_for_subscribe is not None
            or self.gap_pending is not None
            or self._conflating is not None
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
        if self._conflating is None and not sink.paused:
            sink.write(frame)
            return
        if self._conflating is None:
            self._conflating = {}
            self._since = time.monotonic()
        elif time.monotonic() - self._since > self.stuck_timeout:
            self._close_stuck()
            return
        held = self._conflating.get(ticker)
        if held is None:
            self._conflating[ticker] = _Newest(frame)
        else:
            held.frame = frame
            held.dropped += 1
            self.conflated += 1

    def backlog(self) -> tuple[int, int]:
        held = len(self._conflating) if self._conflating is not None else 0
        pending, buffered = self.sink.backlog()
        return pending + held, buffered

    def _drained(self) -> None:
        held, self._conflating = self._conflating, None
        if not held or self.closed:
            return
        for ticker, item in held.items():
            if item.dropped:
                self.sink.write(text_frame(conflated_notice(ticker, item.dropped).encode()))
            self.sink.write(item.frame)

    def send(self, text: str) -> None:
        if not self.closed:
            self.sink.write(text_frame(text.encode()))

    def send_frame(self, text: str, frame: bytes) -> None:
        if not self.closed:
            self.sink.write(frame)

    def abort(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._conflating = None
        self.sink.close(code, reason)

    async def _flush(self, limit: float) -> None:
        self.sink.flush()

    async def stop(self) -> None:
        self.closed = True
        self._conflating = None
        self.sink.on_drain = None
