"""The broker interface: one channel per ticker, messages are the contract's text.

The channel is `market:TICKER` (`market:AAPL`); on a Redis Cluster the ticker is a
hash tag written with its braces, `market:{AAPL}` (broker/cluster.py), so that the
channel lives in the slot of the ticker's keys.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from typing import Literal

from stockfeed.logs import redact

# (ticker, raw message as published). Called on the event loop, must not block.
MessageHandler = Callable[[str, str | bytes], None]
BrokerState = Literal["connecting", "connected", "degraded"]

CHANNEL_PREFIX = "market:"


def channel(ticker: str) -> str:
    return CHANNEL_PREFIX + ticker


# While a Redis pub/sub link (pubsub_link.py) is busy (it takes in more than
# pubsub_link.BUSY_RATE messages a second), it stops reading for this long after each
# read: what Redis sends meanwhile waits in the socket and comes in one read. Each read
# costs a wake-up, an epoll round and a flush of every client it touched, so under such
# load this takes about a third off the CPU of taking a message in; no message waits
# longer than this, and a link below the rate never waits (STOCKFEED_INGEST_REST_MS).
INGEST_REST = 0.002


class BrokerUnavailable(Exception):
    """Publishing failed because the broker is unreachable right now."""


class Broker(abc.ABC):
    """Subscriptions are per ticker and per process; the hub shares them among clients."""

    kind: str
    mode: str | None = None  # Redis: single, cluster or sentinel

    def __init__(self) -> None:
        self._handler: MessageHandler | None = None
        self._batch_hooks: tuple[Callable[[], None], Callable[[], None]] | None = None
        # Seconds a Redis pub/sub link rests after a busy read (INGEST_REST).
        self.ingest_rest = INGEST_REST
        self.state: BrokerState = "connecting"
        self.state_since = time.time()
        self.last_error: str | None = None
        self.reconnects = 0

    def set_handler(self, handler: MessageHandler) -> None:
        self._handler = handler

    def set_batch_hooks(self, begin: Callable[[], None], end: Callable[[], None]) -> None:
        """Called before the handler gets the first and after it got the last message of
        one read from the broker's connection (Redis brokers): the place to hold the
        writes they cause and make them in one go at the end, rather than a loop turn
        later. The embedded broker delivers one message per publish and has no reads:
        it never calls them."""
        self._batch_hooks = (begin, end)

    # For the broker's connections (pubsub_link.BatchHooks): the hooks as they are now
    # (they may be set after the connection was made).
    def begin_batch(self) -> None:
        if self._batch_hooks is not None:
            self._batch_hooks[0]()

    def end_batch(self) -> None:
        if self._batch_hooks is not None:
            self._batch_hooks[1]()

    def _set_state(self, state: BrokerState, error: str | None = None) -> None:
        if state != self.state:
            self.state = state
            self.state_since = time.time()
        if error is not None:
            self.last_error = redact(error)  # shown in /api/ws/health: no password

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect (never raises for an unreachable broker: it retries and reports)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop listening and release connections."""

    @abc.abstractmethod
    async def publish(self, ticker: str, message: str) -> None:
        """Publish on `market:{ticker}`; raises BrokerUnavailable when it cannot."""

    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        """`publish` each (ticker, message), each ticker's in order (a broker may send
        them at once; one whose tickers live on several servers, a cluster, may deliver
        different tickers' messages in another order than given)."""
        for ticker, message in messages:
            await self.publish(ticker, message)

    @abc.abstractmethod
    async def subscribe(self, ticker: str) -> None:
        """Deliver messages of `market:{ticker}` to the handler from now on.

        Returns once the subscription is active, so a snapshot read after it cannot
        miss an update published in between.
        """

    @abc.abstractmethod
    async def unsubscribe(self, ticker: str) -> None: ...

    def describe(self) -> dict[str, object]:
        head: dict[str, object] = {"kind": self.kind}
        if self.mode is not None:
            head["mode"] = self.mode
        return {
            **head,
            "state": self.state,
            "since": round(self.state_since, 3),
            "last_error": self.last_error,
            "reconnects": self.reconnects,
        }
