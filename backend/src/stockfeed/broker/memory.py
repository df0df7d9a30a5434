"""The embedded broker: one process, no setup. Delivery is a direct call."""

from __future__ import annotations

from stockfeed.broker.base import Broker


class MemoryBroker(Broker):
    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._subscribed: set[str] = set()
        self._set_state("connected")

    async def publish(self, ticker: str, message: str) -> None:
        if ticker in self._subscribed and self._handler is not None:
            self._handler(ticker, message)

    async def subscribe(self, ticker: str) -> None:
        self._subscribed.add(ticker)

    async def unsubscribe(self, ticker: str) -> None:
        self._subscribed.discard(ticker)
