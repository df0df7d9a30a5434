"""In-process fakes for the fan-out core's tests (the way centrifuge's hub_test.go drives
its hub through a fake transport): no server, no socket, milliseconds per test.

Imported as `from tests.fanout.fakes import ...`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from stockfeed import protocol
from stockfeed.broker.memory import MemoryBroker
from stockfeed.fanout.connections import Connection
from stockfeed.fanout.frames import frame_payload, text_frame
from stockfeed.fanout.hub import Hub
from stockfeed.market_hours import MarketSession
from stockfeed.models import now_ms
from stockfeed.shared.base import StoredQuote
from stockfeed.shared.memory import MemoryStore


def update(ticker: str, seq: int, price: float | None = None) -> str:
    """A contract `price_update` as a publisher puts it on `market:{T}`."""
    return protocol.dumps(
        {
            "type": "price_update",
            "ticker": ticker,
            "seq": seq,
            "timestamp": round(now_ms(), 3),
            "data": {"price": 100.0 + seq if price is None else price, "volume": seq},
        }
    )


class Address(NamedTuple):
    host: str
    port: int


class FakeWebSocket:
    """What a Connection uses of a starlette WebSocket: `client`, `scope`, `send_text`
    and `close`. `send_text` blocks while `gate` is cleared (a client that stops reading)."""

    def __init__(self, host: str = "198.51.100.7", port: int = 50000) -> None:
        self.client = Address(host, port)
        self.scope: dict[str, Any] = {"type": "websocket", "extensions": {}}
        self.sent: list[str] = []
        self.closed_with: tuple[int, str | None] | None = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = asyncio.Event()  # set while a send_text waits at the gate

    async def send_text(self, text: str) -> None:
        if not self.gate.is_set():
            self.waiting.set()
            await self.gate.wait()
            self.waiting.clear()
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = (code, reason)

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(t) for t in self.sent]


class RecordingConnection(Connection):
    """A Connection that records what reaches the socket, in order: updates
    (`_deliver`, with the shared frame), control messages (`_write`, `_keep_newest`)
    and `abort`. It is never backed up unless a test says so (`backed`), and holds the
    bytes a test sets (`held`)."""

    def __init__(self, *, stuck_timeout: float = 10.0, host: str = "198.51.100.7") -> None:
        super().__init__(FakeWebSocket(host), stuck_timeout=stuck_timeout)  # type: ignore[arg-type]
        self.events: list[tuple[str, Any]] = []
        self.frames: list[bytes] = []  # the frames handed to _deliver, as given
        self.started = False
        self.stopped = False
        self.backed = False
        self.held = 0

    def held_bytes(self) -> int:
        return self.held

    def backed_up(self) -> bool:
        return self.backed

    def stalled_since(self) -> float | None:
        return None

    def _deliver(self, ticker: str, frame: bytes) -> None:
        raw = frame_payload(frame).decode()
        self.frames.append(frame)
        self.events.append(("update", json.loads(raw)))

    def _write(self, text: str, frame: bytes | None) -> None:
        self.events.append(("send", json.loads(text)))

    def _keep_newest(self, key: str, text: str, frame: bytes | None) -> None:
        self.events.append(("send", json.loads(text)))

    def abort(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.events.append(("abort", (code, reason)))

    def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True
        await super().stop()

    def messages(self) -> list[dict[str, Any]]:
        return [m for kind, m in self.events if kind in ("update", "send")]

    def stream(self, ticker: str) -> list[tuple[str, int]]:
        """(type, seq) of every price_update and snapshot of `ticker`, in order."""
        return [
            (m["type"], m["seq"])
            for m in self.messages()
            if m.get("ticker") == ticker and m["type"] in ("price_update", "snapshot")
        ]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages() if m["type"] == kind]


class FakeFlusher:
    def __init__(self) -> None:
        self.marked = 0

    def mark(self, sink: Any) -> None:
        self.marked += 1


class FakeSink:
    """What SinkConnection uses of the fast path's Sink (server/fast_websocket.py):
    `pending`, `flusher.mark`, `paused`, `write`, `flush`, `held_bytes`, `backlog`,
    `close`, `on_pause`, `on_drain`, `on_ping`. `flush` moves the pending frames to
    `sent`; `pause()` and `drain()` play the transport's pause_writing and
    resume_writing; `buffered` plays the transport's buffer."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.flusher = FakeFlusher()
        self.paused = False
        self.closed = False
        self.closed_with: tuple[int, str] | None = None
        self.on_pause: Callable[[], None] | None = None
        self.on_drain: Callable[[], None] | None = None
        self.on_ping: Callable[[], bool] | None = None
        self.sent: list[bytes] = []
        self.buffered = 0

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        if not self.pending:
            self.flusher.mark(self)
        self.pending.append(frame)
        self.pending_bytes += len(frame)

    def flush(self) -> None:
        self.sent.extend(self.pending)
        self.pending = []
        self.pending_bytes = 0

    def held_bytes(self) -> int:
        return self.buffered + self.pending_bytes

    def backlog(self) -> tuple[int, int]:
        return len(self.pending), self.buffered

    def close(self, code: int, reason: str, grace: float = 5.0) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        self.closed_with = (code, reason)

    def pause(self) -> None:
        self.paused = True
        if self.on_pause is not None:
            self.on_pause()

    def drain(self) -> None:
        self.paused = False
        if self.on_drain is not None:
            self.on_drain()

    def messages(self) -> list[dict[str, Any]]:
        """Every frame written so far (sent and pending), decoded."""
        return [json.loads(frame_payload(f)) for f in [*self.sent, *self.pending]]


class ControlledStore(MemoryStore):
    """A MemoryStore whose shared history (`recent`), epoch and failures the test sets,
    and whose awaits can be held at a gate: `gate("recent")` makes the next calls of
    `recent` wait until the returned event is set; `entered[name]` says one is waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[str]] = {}
        self.epoch_value = "e1"
        self.recent_calls = 0
        self._gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        self._gates[name] = asyncio.Event()
        self.entered[name] = asyncio.Event()
        return self._gates[name]

    async def _checkpoint(self, name: str) -> None:
        gate = self._gates.get(name)
        if gate is not None:
            self.entered[name].set()
            await gate.wait()

    async def recent(self, ticker: str) -> list[str]:
        self.recent_calls += 1
        await self._checkpoint("recent")
        return list(self.history.get(ticker, []))

    async def epoch(self) -> str:
        return self.epoch_value

    async def add_interest(self, tickers: set[str], ttl: float) -> None:
        await self._checkpoint("add_interest")
        await super().add_interest(tickers, ttl)

    async def get_quote(self, ticker: str) -> StoredQuote | None:
        await self._checkpoint("get_quote")
        return await super().get_quote(ticker)


class FakeClock:
    """Market hours without calendars: always the regular session."""

    def status(self, ticker: str, at: Any = None) -> MarketSession:
        return MarketSession("XNYS", True, "regular", None, None)


async def make_hub(store: MemoryStore | None = None, **settings: Any) -> Hub:
    hub = Hub(
        broker=MemoryBroker(),
        store=store if store is not None else ControlledStore(),
        clock=FakeClock(),  # type: ignore[arg-type]
        quote_ttl=60.0,
        heartbeat_interval=30.0,
        **settings,
    )
    await hub.refresh_epoch()
    return hub


async def stop_hub(hub: Hub) -> None:
    """A test's end: no linger timer left to fire later, the background work finished."""
    for timer in hub.room._lingering.values():
        timer.cancel()
    await settle(hub)


async def settle(hub: Hub) -> None:
    """Let the hub's background work (backfills, linger ends, evictions) finish."""
    for _ in range(100):
        await asyncio.sleep(0)
        if not hub._in_flight:
            return
        await asyncio.gather(*list(hub._in_flight), return_exceptions=True)


async def until(condition: Callable[[], bool], timeout: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.001)


def frame_of(text: str) -> bytes:
    return text_frame(text.encode())
