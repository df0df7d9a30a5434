"""Per-ticker liveness: a ticker whose market is open, silent for longer than usual, is stale.

The source as a whole can be fine (health says so) while one ticker stops: Yahoo stops
streaming a symbol, a publisher of one's own feed dies. So each process watches every
ticker it holds, from the updates it relays (a relay-only process too):

- Its usual gap between updates is learned: an exponentially weighted average of the gaps
  seen while its market was open (gaps longer than MAX_LEARNED_GAP are outages, not
  habits, and are not learned).
- It is stale once silent for longer than max(FLOOR, FACTOR x its usual gap), counted from
  its last update or from when its market opened (as this process saw it), whichever is
  later; until MIN_SAMPLES gaps are learned, the quote TTL is the limit.
- Only while its market is open (`is_open`: the regular session): a closed market is
  quiet by nature. "Closed" (market_status `is_open: false`), "stale" (this) and
  "disconnected" (the client's own connection, seen by the client) are three things.

What it changes on the wire (docs/protocol.md#liveness): snapshots of a stale ticker carry
`"stale": true` with `age_ms`; REST quotes too; the ticker's subscribers get a
`market_status` naming the ticker with `"stale": true` and `last_good` (its last update,
epoch ms) when it goes stale, and one without when it comes back (its next update shows
that too). `/metrics` counts stale tickers and names them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from stockfeed import protocol
from stockfeed.fanout.connections import status_key
from stockfeed.fanout.frames import text_frame
from stockfeed.fanout.stats import HubStats
from stockfeed.market_hours import MarketClock, MarketSession
from stockfeed.tickers import asset_class

# Silence never counts as stale below this (seconds): Yahoo's stream sends only when a
# quote changes, so even a busy symbol may be quiet for a few seconds.
FLOOR = 15.0
# Silent this many usual gaps: stale.
FACTOR = 4.0
# Gaps learned before the learned limit applies (before: the quote TTL).
MIN_SAMPLES = 3
# Weight of a new gap in the average.
ALPHA = 0.1
# A longer gap is an outage (or a night), not the ticker's habit.
MAX_LEARNED_GAP = 900.0
# How often tickers are checked (seconds).
CHECK_INTERVAL = 1.0


@dataclass(slots=True)
class _Ticker:
    last: float | None = None  # time of the last update (epoch s)
    gap: float = 0.0  # the usual gap (s)
    samples: int = 0
    open_since: float | None = None  # when its market was seen open (None: closed)
    stale_since: float | None = None  # when it went stale (None: fresh)


class Client(Protocol):
    def send_frame(self, text: str, frame: bytes | None, key: str | None = None) -> None: ...


class Watched(Protocol):
    """What the loop needs of the hub: who holds which ticker, and its counters."""

    @property
    def subscribers(self) -> Mapping[str, Iterable[Client]]: ...

    @property
    def stats(self) -> HubStats: ...


class Liveness:
    def __init__(
        self,
        clock: MarketClock,
        *,
        quote_ttl: float,
        floor: float = FLOOR,
        factor: float = FACTOR,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.quote_ttl = quote_ttl
        self.floor = floor
        self.factor = factor
        self._now = now
        self._tickers: dict[str, _Ticker] = {}
        self.went_stale = 0  # times a ticker went stale (/metrics)

    def seen(self, ticker: str) -> None:
        """An update of `ticker` arrived (the hub calls this for each one it relays)."""
        now = self._now()
        state = self._tickers.get(ticker)
        if state is None:
            state = self._tickers[ticker] = _Ticker()
        elif state.last is not None and state.open_since is not None:
            gap = now - state.last
            if gap < MAX_LEARNED_GAP and state.open_since <= state.last:
                state.gap = gap if not state.samples else state.gap + ALPHA * (gap - state.gap)
                state.samples += 1
        state.last = now

    def limit(self, ticker: str) -> float:
        """Seconds of silence after which the ticker is stale (while its market is open)."""
        state = self._tickers.get(ticker)
        if state is None or state.samples < MIN_SAMPLES:
            return max(self.floor, self.quote_ttl)
        return max(self.floor, self.factor * state.gap)

    def is_stale(self, ticker: str) -> bool:
        state = self._tickers.get(ticker)
        return state is not None and state.stale_since is not None

    def last_good(self, ticker: str) -> float | None:
        """Epoch ms of the ticker's last update (None: none seen by this process)."""
        state = self._tickers.get(ticker)
        return None if state is None or state.last is None else state.last * 1000.0

    def stale_tickers(self) -> list[str]:
        return sorted(t for t, s in self._tickers.items() if s.stale_since is not None)

    def forget(self, ticker: str) -> None:
        self._tickers.pop(ticker, None)

    def check(self, tickers: Iterable[str]) -> list[str]:
        """Re-judge `tickers` now; the ones whose stale mark changed."""
        now = self._now()
        sessions: dict[str, MarketSession] = {}
        changed: list[str] = []
        for ticker in tickers:
            kind = asset_class(ticker)
            session = sessions.get(kind)
            if session is None:
                session = sessions[kind] = self.clock.status(ticker)
            state = self._tickers.get(ticker)
            if state is None:
                state = self._tickers[ticker] = _Ticker()
            if not session.is_open:
                state.open_since = None
                stale = False
            else:
                if state.open_since is None:
                    state.open_since = now
                opened = state.open_since
                since = opened if state.last is None else max(state.last, opened)
                stale = now - since > self.limit(ticker)
            if stale != (state.stale_since is not None):
                state.stale_since = now if stale else None
                self.went_stale += stale
                changed.append(ticker)
        return changed

    def status(self, ticker: str, source_stale_since: float | None = None) -> dict[str, Any]:
        """The ticker's `market_status` object: the market's session, and the stale mark
        with `last_good` when the ticker (or else the whole source) is stale."""
        session = self.clock.status(ticker)
        stale_since = source_stale_since
        if self.is_stale(ticker):
            stale_since = self.last_good(ticker) or 0.0
        return session.message(stale_since, ticker=ticker)

    async def run(self, hub: Watched, source_stale_since: Callable[[], float | None]) -> None:
        """Every CHECK_INTERVAL: tell each ticker's subscribers when its mark changes."""
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            # Lingering tickers too: a client coming back gets a snapshot marked right.
            for ticker in self.check(list(hub.subscribers)):
                text = protocol.dumps(self.status(ticker, source_stale_since()))
                frame, key = text_frame(text.encode()), status_key(ticker)
                subscribers = list(hub.subscribers.get(ticker, ()))
                for client in subscribers:
                    client.send_frame(text, frame, key)
                hub.stats.statuses_sent += len(subscribers)
