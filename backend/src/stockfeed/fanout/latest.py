"""Each held ticker's latest update, the snapshots made of it, and its `market_status`.

The hub keeps the newest update it relayed per ticker (`by_ticker`, written by
`Hub.on_message`); a subscriber's snapshot is made from it, or from the shared store's
quote when the store has a newer one (asked once per ticker while it is held), or from
the market-data store's last update (`last_known`) when neither has any, so a closed
market still shows its last price. `market_status` texts are cached per ticker for a
second, and pushed to subscribers when a ticker's session changes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from stockfeed import protocol
from stockfeed.fanout.connections import Connection, status_key
from stockfeed.fanout.epochs import Epochs
from stockfeed.fanout.frames import text_frame
from stockfeed.fanout.liveness import Liveness
from stockfeed.fanout.stats import HubStats
from stockfeed.market_hours import MarketClock
from stockfeed.shared import SharedStore, StoredQuote, StoreUnavailable

log = logging.getLogger(__name__)


class Latest:
    """A ticker's newest update: its seq, when it came (time.time()) and the update
    itself, which for one relayed as our updater writes it is parsed from its bytes the
    first time someone asks (a snapshot, a bar book, REST): most never are."""

    __slots__ = ("_payload", "_update", "received", "seq")

    def __init__(
        self, seq: int, update: dict[str, Any] | None, received: float, payload: bytes = b""
    ) -> None:
        self.seq = seq
        self.received = received
        self._update = update
        self._payload = payload

    @property
    def update(self) -> dict[str, Any] | None:
        """The update as an object; None when its bytes turn out not to be one (logged
        once; the ticker then has no latest to show until the next update)."""
        if self._update is None and self._payload:
            payload, self._payload = self._payload, b""
            try:
                _, _, self._update = protocol.read_update(payload)
            except protocol.BadUpdate as exc:
                log.warning("a relayed update could not be read back: %s", exc)
        return self._update


class LatestUpdates:
    def __init__(
        self,
        *,
        store: SharedStore,
        clock: MarketClock,
        quote_ttl: float,
        liveness: Liveness,
        epochs: Epochs,
        stats: HubStats,
        subscribers: Mapping[str, set[Connection]],
        stale_since: Callable[[], float | None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.quote_ttl = quote_ttl
        self.liveness = liveness
        self.epochs = epochs
        self.stats = stats
        self.subscribers = subscribers  # the hub's: which tickers it holds
        self.stale_since = stale_since
        self.by_ticker: dict[str, Latest] = {}
        # A ticker's last update when the shared store has none (it expired, was evicted,
        # or the process restarted): the market-data store's (stockfeed/kept/), set by
        # the services.
        self.last_known: Callable[[str], Awaitable[str | None]] | None = None
        # Tickers whose stored quote was read since the hub subscribed to them: from then
        # on the relayed updates are newer than anything in the store.
        self.store_checked: set[str] = set()
        self._sessions: dict[str, str] = {}
        self._status_cache: dict[str, tuple[float, bool, str]] = {}

    def forget(self, ticker: str) -> None:
        """The hub stopped holding the ticker."""
        self.by_ticker.pop(ticker, None)
        self._sessions.pop(ticker, None)
        self._status_cache.pop(ticker, None)
        self.store_checked.discard(ticker)

    async def latest_update(self, ticker: str) -> tuple[dict[str, Any], bool] | None:
        """The newest known update of a ticker and whether it is still fresh."""
        local = self.by_ticker.get(ticker)
        stored = None
        if ticker not in self.store_checked:
            try:
                stored = await self.store.get_quote(ticker)
            except StoreUnavailable:
                pass
            else:
                if stored is None and local is None and self.last_known is not None:
                    raw = await self.last_known(ticker)
                    stored = None if raw is None else StoredQuote(raw, fresh=False)
                if ticker in self.subscribers:
                    self.store_checked.add(ticker)
        best: dict[str, Any] | None = local.update if local else None
        if stored is not None:
            try:
                _, seq, update = protocol.read_update(stored.raw)
            except protocol.BadUpdate:
                update = None
            if update is not None and (best is None or _newer(update, best)):
                best = update
                if ticker in self.subscribers:
                    # Kept as the latest: the store is not asked again (store_checked),
                    # and a closed market relays nothing, so without it every later
                    # subscriber would get no snapshot at all.
                    self.by_ticker[ticker] = Latest(seq, update, time.time())
        if best is None:
            return None
        ts = best.get("timestamp")
        fresh = isinstance(ts, int | float) and (time.time() * 1000 - ts) < self.quote_ttl * 1000
        return best, fresh

    async def snapshot(self, ticker: str, gap: bool = False) -> tuple[int, str] | None:
        found = await self.latest_update(ticker)
        if found is None:
            return None
        update, fresh = found
        stale = not fresh or self.liveness.is_stale(ticker)
        text = protocol.snapshot(update, stale=stale, gap=gap, epoch=self.epochs.epoch_for(ticker))
        return int(update["seq"]), text

    def market_status(self, ticker: str) -> str:
        # Every new subscriber gets one: the text (naming the ticker, with its stale
        # mark: fanout/liveness.py) is cached per ticker for a second rather than
        # recomputed (calendar lookups, JSON) for each of a connect burst.
        now = time.monotonic()
        stale = self.liveness.is_stale(ticker)
        cached = self._status_cache.get(ticker)
        if cached is not None and cached[0] > now and cached[1] == stale:
            return cached[2]
        text = protocol.dumps(self.liveness.status(ticker, self.stale_since()))
        self._status_cache[ticker] = (now + 1.0, stale, text)
        return text

    async def market_watch(self) -> None:
        """Push `market_status` to a ticker's subscribers when its session changes."""
        while True:
            await asyncio.sleep(10)
            for ticker, subs in list(self.subscribers.items()):
                status = self.clock.status(ticker)
                key = f"{status.market}:{status.session}"
                previous = self._sessions.get(ticker)
                self._sessions[ticker] = key
                if previous is not None and previous != key:
                    text = protocol.dumps(self.liveness.status(ticker, self.stale_since()))
                    frame = text_frame(text.encode())
                    for client in subs:
                        client.send_frame(text, frame, status_key(ticker))
                    self.stats.statuses_sent += len(subs)


def _newer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ta, tb = a.get("timestamp"), b.get("timestamp")
    if isinstance(ta, int | float) and isinstance(tb, int | float):
        return ta > tb
    return bool(a.get("seq", 0) > b.get("seq", 0))


def parse_status(raw: str | None) -> dict[str, Any] | None:
    """The deployment's source status as the store holds it (None: none, or unreadable)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
