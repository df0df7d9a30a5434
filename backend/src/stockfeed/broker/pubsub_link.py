"""One Redis pub/sub connection that costs per read, not per message.

redis-py's pub/sub reads one message per `get_message()`: an await, a timeout wrapper, a
retry wrapper and a parse per message, then a turn of the event loop before the next. A
process that takes in a whole market pays that for every message of every ticker it
holds, whatever its clients. This link is a plain `asyncio.Protocol`: each
`data_received` feeds hiredis' RESP reader and hands every data message of that read to
the handler at once, synchronously (no await, no timeout, no retry per message), so the
writes they cause are coalesced into one flush per loop turn.

Everything else a pub/sub connection says (subscribe confirmations, unsubscribes, pongs,
errors such as MOVED) goes to `events()`, for the broker's listener coroutine, which keeps
its own rules (backoff, resubscribe, slot maps). The link never reconnects by itself: when
the connection is lost, `events()` raises, and the listener makes a new one.

Used for the plain Redis and Sentinel brokers (`SUBSCRIBE`, `message`) and for each
shard of a Cluster (`SSUBSCRIBE`, `smessage`); redis-py stays for everything else.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

import hiredis

from stockfeed.broker.base import INGEST_REST

log = logging.getLogger(__name__)

# (channel, payload) of a data message, called synchronously from data_received.
DataHandler = Callable[[bytes, bytes], None]


class BatchHooks(Protocol):
    """Around the data messages of one read (the broker implements it)."""

    def begin_batch(self) -> None: ...

    def end_batch(self) -> None: ...


_MESSAGE = b"message"
_SMESSAGE = b"smessage"


def _pack(args: tuple[str | bytes, ...]) -> bytes:
    # hiredis' stubs type the argument as a one-element tuple.
    packed: bytes = hiredis.pack_command(cast(Any, args))
    return packed


class LinkLost(ConnectionError):
    """The connection is gone (closed by Redis, reset, or a protocol error)."""


# While busy the link rests after each read (broker.base.INGEST_REST says why and how
# long). Busy: taking in at least this many data messages a second. Below it the per-read cost
# is small beside the sends each message causes, and a rest would only add latency.
BUSY_RATE = 5_000
BUSY_WINDOW = 0.1


class _Protocol(asyncio.Protocol):
    __slots__ = ("link",)

    def __init__(self, link: PubSubLink) -> None:
        self.link = link

    def data_received(self, data: bytes) -> None:
        self.link._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link._lost(exc)


class PubSubLink:
    """A connected pub/sub connection: `send` commands, data messages to `on_data`,
    the rest through `events()`."""

    def __init__(
        self, on_data: DataHandler, batch: BatchHooks | None = None, rest: float = INGEST_REST
    ) -> None:
        self.on_data = on_data
        self.rest = rest  # INGEST_REST; 0: read as soon as anything comes
        # Told before the first and after the last data message of a read: the writes
        # they cause go out at its end, at once (Broker.set_batch_hooks).
        self.batch = batch
        self._reader = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        self._events: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._lost_with: BaseException | None = None
        self.messages = 0  # data messages handed over (for health and tests)
        self._heard = time.monotonic()  # the last bytes from Redis
        # Rest only while the link takes in at least `busy_rate` messages a second,
        # measured over windows of BUSY_WINDOW seconds (0: after every read of data).
        self.busy_rate = BUSY_RATE
        self._busy = False
        self._window_start = time.monotonic()
        self._window_count = 0
        self.rests = 0  # times reading paused (tests read it)
        self._resting: asyncio.TimerHandle | None = None  # reading paused until it fires

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        on_data: DataHandler,
        *,
        batch: BatchHooks | None = None,
        rest: float = INGEST_REST,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        connect_within: float = 2.0,
    ) -> PubSubLink:
        """Connect (and AUTH when a password is given); raises OSError/TimeoutError or
        LinkLost when Redis refuses."""
        link = cls(on_data, batch, rest)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(connect_within):
            transport, _ = await loop.create_connection(
                lambda: _Protocol(link), host, port, ssl=tls
            )
            link._transport = transport
            if password is not None:
                args = ("AUTH", username, password) if username else ("AUTH", password)
                link.send(*args)
                reply = await link.event()
                if isinstance(reply, hiredis.ReplyError):
                    link.close()
                    raise LinkLost(f"Redis refused AUTH: {reply}")
        return link

    # -- commands --------------------------------------------------------------------------

    def send(self, *args: str | bytes | None) -> None:
        """Write one command (not waiting for its answer: it comes as an event)."""
        transport = self._transport
        if transport is None or self._lost_with is not None:
            raise LinkLost("the pub/sub connection is closed")
        transport.write(_pack(tuple(a for a in args if a is not None)))

    def send_each(self, command: str, names: Iterable[str]) -> None:
        """One command per channel, in one write (a Cluster node refuses one SSUBSCRIBE
        of channels in different slots)."""
        transport = self._transport
        if transport is None or self._lost_with is not None:
            raise LinkLost("the pub/sub connection is closed")
        transport.write(b"".join(_pack((command, name)) for name in names))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- what Redis says -------------------------------------------------------------------

    async def event(self, within: float | None = None) -> Any:
        """The next reply that is not a data message: a list such as
        [b"subscribe", channel, count], or a hiredis.ReplyError (MOVED...). None when
        `within` seconds passed without one; LinkLost when the connection is gone."""
        while not self._events:
            if self._lost_with is not None:
                raise LinkLost(str(self._lost_with) or "connection closed") from self._lost_with
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                if within is None:
                    await waiter
                else:
                    try:
                        async with asyncio.timeout(within):
                            await waiter
                    except TimeoutError:
                        return None
            finally:
                self._waiter = None
        return self._events.popleft()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def resting(self) -> bool:
        """Whether reading is paused after a read while busy (INGEST_REST)."""
        return self._resting is not None

    def silent_for(self) -> float:
        """Seconds since Redis last sent anything (a PING's answer counts)."""
        return time.monotonic() - self._heard

    def _received(self, data: bytes) -> None:
        now = self._heard = time.monotonic()
        reader = self._reader
        reader.feed(data)
        on_data = self.on_data
        woke = False
        handed = 0
        try:
            while True:
                try:
                    reply = reader.gets()
                except hiredis.ProtocolError as exc:
                    self._lost_with = exc
                    if self._transport is not None:
                        self._transport.abort()
                    woke = True
                    break
                if reply is False:
                    break
                if type(reply) is list and len(reply) == 3:
                    kind = reply[0]
                    if kind == _MESSAGE or kind == _SMESSAGE:
                        if not handed and self.batch is not None:
                            self.batch.begin_batch()
                        handed += 1
                        try:
                            on_data(reply[1], reply[2])
                        except Exception:  # one bad message must not kill the link
                            log.exception("pub/sub handler failed")
                        continue
                self._events.append(reply)
                woke = True
        finally:
            if handed:
                self.messages += handed
                if self.batch is not None:
                    try:
                        self.batch.end_batch()
                    except Exception:
                        log.exception("pub/sub batch-end hook failed")
        if woke:
            self._wake()
        if handed and self.rest > 0:
            self._window_count += handed
            elapsed = now - self._window_start
            if elapsed >= BUSY_WINDOW:
                self._busy = self._window_count >= self.busy_rate * elapsed
                self._window_start = now
                self._window_count = 0
            if self._busy or self.busy_rate <= 0:
                self._rest()

    def _rest(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing() or self._resting is not None:
            return
        transport.pause_reading()
        self.rests += 1
        self._resting = asyncio.get_running_loop().call_later(self.rest, self._resume)

    def _resume(self) -> None:
        self._resting = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _lost(self, exc: Exception | None) -> None:
        if self._resting is not None:
            self._resting.cancel()
            self._resting = None
        self._lost_with = exc or LinkLost("connection closed by Redis")
        self._transport = None
        self._wake()
