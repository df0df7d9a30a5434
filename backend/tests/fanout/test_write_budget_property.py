"""A property of the one accounted write path: whatever a client sends, in whatever order,
and however little it reads, the bytes the server holds for it never pass its budget.

Hypothesis drives random sequences of client messages (subscribes with bars and resumes,
unsubscribes, pings, garbage, long lists of bad tickers) against an in-process hub, with
price updates published in between and the client reading a random amount now and then
(often nothing). The messages go through the real request handlers (api/ws_requests.py,
the receive loop's order: a message is read only once the client's writes are not backed
up) into a real SinkConnection over a transport that pauses past 64 KiB not taken by the
client and resumes below 16 KiB, as asyncio's does. After every step: the client is
closed, or what is held for it is within the budget.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from stockfeed.admission.subscription_limits import SubscriptionLimits
from stockfeed.api import ws_requests
from stockfeed.api.ws_requests import Caller
from stockfeed.config import Settings
from stockfeed.fanout.hub import Hub
from stockfeed.server.sink_connection import SinkConnection
from tests.fanout.fakes import ControlledStore, FakeSink, FakeWebSocket, make_hub, update

BUDGET = 128 * 1024
HIGH, LOW = 64 * 1024, 16 * 1024
POOL = [f"T{i}" for i in range(60)]


class Transport(FakeSink):
    """What the client has not taken yet: `pending` (this loop turn's frames) and
    `buffered` (the transport's buffer); pauses and resumes at asyncio's marks."""

    def write(self, frame: bytes) -> None:
        super().write(frame)
        if self.pending_bytes > HIGH:  # as the real sink does (FLUSH_AT)
            self.flush()

    def flush(self) -> None:
        """The pending frames go to the transport (at the end of a loop turn, or at
        once for a burst)."""
        self.buffered += self.pending_bytes
        self.pending = []
        self.pending_bytes = 0
        if not self.paused and self.buffered > HIGH:
            self.pause()

    def read(self, n: int) -> None:
        self.buffered = max(0, self.buffered - n)
        if self.paused and self.buffered < LOW:
            self.drain()


tickers = st.lists(st.sampled_from(POOL), min_size=1, max_size=50)
subscribes = st.builds(
    lambda t, b, r: {"action": "subscribe", "tickers": t, "bars": b, "resume": r},
    tickers,
    st.sampled_from([[], ["1m"], ["1m", "5m"]]),
    st.sampled_from([None, "zero"]),
)
messages = st.one_of(
    subscribes,
    subscribes,
    st.builds(lambda t: {"action": "unsubscribe", "tickers": t}, tickers),
    st.just({"type": "ping", "id": 1}),
    st.just({"action": "subscribe", "tickers": ["bad ticker!"] * 100}),
    st.just({"nonsense": True}),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("message"), messages),
        st.tuples(st.just("publish"), st.lists(st.sampled_from(POOL), max_size=30)),
        st.tuples(st.just("read"), st.sampled_from([0, 0, 512, 8 * 1024, 64 * 1024])),
    ),
    max_size=80,
)


@dataclass
class Client:
    """One connection, driven as the receive loop drives it."""

    hub: Hub
    svc: Any
    conn: SinkConnection
    sink: Transport
    caller: Caller
    # False: messages are handled whether or not the client drains (as a path that forgot
    # to wait would): then the budget alone must hold.
    waits: bool = True
    inbox: list[dict[str, Any]] = field(default_factory=list)
    handling: asyncio.Task[None] | None = None
    peak: int = 0

    async def handle(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "ping":
            self.conn.send(json.dumps({"type": "pong", "id": 1}))
        elif msg.get("action") == "subscribe":
            tickers = msg["tickers"]
            if msg.get("resume") == "zero":
                msg = {**msg, "resume": {t: 0 for t in tickers if isinstance(t, str)}}
            else:
                msg = {k: v for k, v in msg.items() if k != "resume"}
            await ws_requests.subscribe(self.svc, self.conn, self.caller, msg)
        elif msg.get("action") == "unsubscribe":
            await ws_requests.unsubscribe(self.svc, self.conn, self.caller, msg)
        else:
            self.conn.send(json.dumps({"type": "error", "code": "bad_message"}))

    def pump(self) -> None:
        """The receive loop: the next message once the last is handled and the
        client's writes are not backed up."""
        busy = self.handling is not None and not self.handling.done()
        blocked = self.waits and self.conn.backed_up()
        if self.inbox and not busy and not blocked and not self.conn.closed:
            self.handling = asyncio.ensure_future(self.handle(self.inbox.pop(0)))

    async def turn(self) -> None:
        for _ in range(3):
            self.pump()
            await asyncio.sleep(0)
            self.sink.flush()
        self.check()

    def check(self) -> None:
        held = self.conn.held_bytes()
        self.peak = max(self.peak, held)
        assert self.conn.closed or held <= BUDGET, f"{held} bytes held, budget {BUDGET}"


async def run(script: list[tuple[str, Any]], waits: bool) -> int:
    """The most bytes held for the client at any step."""
    store = ControlledStore()
    for ticker in POOL:  # every subscribe gets a snapshot of each ticker
        await store.put_quote(ticker, update(ticker, 1), 3600)
    hub = await make_hub(store, max_tickers=100)
    config = Settings(max_subscriptions=50, max_bar_streams=64)

    async def can_quote(ticker: str) -> bool:
        return True

    svc = SimpleNamespace(hub=hub, settings=config, can_quote=can_quote)
    sink = Transport()
    conn = SinkConnection(FakeWebSocket(), sink, stuck_timeout=3600.0, budget=BUDGET)  # type: ignore[arg-type]
    limits = SubscriptionLimits(config, lambda _: True)
    caller = Caller(None, limits.for_connection("127.0.0.1"))
    client = Client(hub, svc, conn, sink, caller, waits=waits)
    seqs = dict.fromkeys(POOL, 1)
    try:
        for kind, arg in script:
            if kind == "message":
                client.inbox.append(arg)
            elif kind == "publish":
                for ticker in arg:
                    seqs[ticker] += 1
                    await hub.broker.publish(ticker, update(ticker, seqs[ticker]))
            else:
                sink.read(arg)
            await client.turn()
        # The client goes quiet for a while, reading nothing: the handlers run out.
        for _ in range(20):
            await client.turn()
        return client.peak
    finally:
        if client.handling is not None:
            client.handling.cancel()
        for timer in hub.room._lingering.values():
            timer.cancel()
        for task in list(hub._in_flight):
            task.cancel()
        await asyncio.gather(*hub._in_flight, return_exceptions=True)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps, st.booleans())
def test_what_is_held_for_a_client_never_passes_its_budget(
    script: list[tuple[str, Any]], waits: bool
) -> None:
    # Steer the search towards the scripts that make the server hold the most.
    target(asyncio.run(run(script, waits)) / BUDGET)
