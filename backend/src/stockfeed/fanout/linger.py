"""How many tickers the process holds, and for how long after their last client left.

A ticker nobody holds any more lingers (still subscribed on the broker, its resume history
kept) as long as it was watched, within `linger_min` and `resume_window`, so a client that
comes back can resume without a gap while a ticker a flood touched for a moment goes soon.
At most `max_tickers` are held at once (subscribed plus lingering): a new one evicts the
ticker that has lingered longest, or is refused when none lingers. A request checks the
room first (`has_room`, evicting nothing) and reserves what it accepted until it
subscribes (`reserve`/`unreserve`), so two requests cannot both take the last room and a
lingering ticker someone is about to take back makes no room.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from stockfeed.fanout.connections import Connection
from stockfeed.fanout.listening import Listening
from stockfeed.fanout.resume import History
from stockfeed.fanout.stats import HubStats


class Room:
    def __init__(
        self,
        *,
        subscribers: dict[str, set[Connection]],
        history: History,
        listening: Listening,
        stats: HubStats,
        spawn: Callable[[Coroutine[Any, Any, None], str | None], asyncio.Future[None]],
        forget: Callable[[str], None],
        max_tickers: int,
        linger_min: float,
        resume_window: float,
    ) -> None:
        self.subscribers = subscribers  # the hub's: ticker -> its clients, while held
        self.history = history
        self.listening = listening
        self.stats = stats
        self.spawn = spawn
        self.forget = forget  # drops what the hub's other parts keep of a ticker let go
        self.max_tickers = max_tickers
        self.resume_window = resume_window
        self.linger_min = min(linger_min, resume_window)
        self._lingering: dict[str, asyncio.TimerHandle] = {}  # one timer per lingering ticker
        # Lingering tickers -> loop time their linger ends, longest-lingering first.
        self._linger_until: OrderedDict[str, float] = OrderedDict()
        self._watched_since: dict[str, float] = {}  # loop time a ticker's first client came
        self._evicting: set[str] = set()  # dropped early, their broker unsubscribe pending
        # Tickers a request accepted and will subscribe next (ticker -> requests), so that
        # requests checked meanwhile see them: new ones count against max_tickers (two
        # requests cannot both take the last room), held ones cannot be evicted (a
        # lingering ticker someone is about to take back makes no room).
        self._reserved: Counter[str] = Counter()
        self._kept: Counter[str] = Counter()

    def lingering(self) -> int:
        return len(self._linger_until)

    def is_new(self, ticker: str) -> bool:
        """The process does not hold this ticker yet (subscribing would bring it in)."""
        return ticker not in self.subscribers or ticker in self._evicting

    # -- room --------------------------------------------------------------------------

    def has_room(self, ticker: str, pending: int = 0) -> bool:
        """Whether the process could hold `ticker` now (after `pending` new ones already
        accepted by the same request and not reserved): already held or reserved, under
        `max_tickers` with every reservation counted, or enough tickers linger (and are
        not about to be taken back) to make room. Evicts nothing: the subscribe that
        follows does (`take`), so a request refused later (an unknown ticker) costs
        nobody their lingering ticker."""
        if ticker in self._reserved or (
            ticker in self.subscribers and ticker not in self._evicting
        ):
            return True
        over = self._taken() + pending + 1 - self.max_tickers
        if over <= 0:
            return True
        # Every ticker in _linger_until lingers with no client: each can make room,
        # unless a request is about to subscribe it (counted only when full: rare).
        kept = sum(1 for t in self._kept if t in self._linger_until) if self._kept else 0
        return len(self._linger_until) - kept >= over

    def _taken(self, coming: str | None = None) -> int:
        """Tickers held (not being evicted) plus the new ones reserved by requests under
        way, `coming` (the ticker being subscribed now) not among them."""
        reserved = len(self._reserved) - (coming in self._reserved)
        return len(self.subscribers) - len(self._evicting) + reserved

    def is_reserved(self, ticker: str) -> bool:
        """A request under way accepted `ticker`, new to the process, and is about to
        subscribe it."""
        return ticker in self._reserved

    def reserve(self, ticker: str) -> bool:
        """A request accepted `ticker` and subscribes it next: until `unreserve`, a new
        ticker counts as held and a held one is not evicted. True when it was new."""
        if ticker in self.subscribers and ticker not in self._evicting:
            self._kept[ticker] += 1
            return False
        self._reserved[ticker] += 1
        return True

    def unreserve(self, ticker: str, new: bool) -> None:
        counts = self._reserved if new else self._kept
        left = counts[ticker] - 1
        if left > 0:
            counts[ticker] = left
        else:
            counts.pop(ticker, None)

    def _make_room(self, ticker: str) -> bool:
        """`has_room`, making it: drops the tickers that lingered longest as needed.
        The caller's own reservation of `ticker` is released before this is called."""
        if ticker in self.subscribers and ticker not in self._evicting:
            return True
        while self._taken(ticker) >= self.max_tickers:
            if not self._evict_one():
                return False
        return True

    def _evict_one(self) -> bool:
        for ticker in self._linger_until:
            if ticker in self._evicting or self.subscribers.get(ticker) or ticker in self._kept:
                continue
            del self._linger_until[ticker]
            timer = self._lingering.pop(ticker, None)
            if timer is not None:
                timer.cancel()
            self._evicting.add(ticker)
            self.stats.evicted += 1
            self.spawn(self._linger_over(ticker), None)
            return True
        return False

    # -- holding -----------------------------------------------------------------------

    def take(self, ticker: str) -> set[Connection] | None:
        """A client subscribes `ticker`: make room for it (evicting as needed) and hold
        it; its subscriber set, or None when no room can be made."""
        if not self._make_room(ticker):
            return None
        subs = self.subscribers.get(ticker)
        if subs is None or ticker in self._evicting:
            # Not listening until now: whatever an earlier ring held may have a hole.
            self._evicting.discard(ticker)
            if subs is None:
                subs = self.subscribers[ticker] = set()
            self.history.open(ticker)
        if not subs:
            self._watched_since[ticker] = asyncio.get_running_loop().time()
            self._linger_until.pop(ticker, None)
        return subs

    def left(self, ticker: str) -> None:
        """The ticker's last client left. Keep listening a while: a client that comes
        back can still resume. As long as the ticker was watched, between `linger_min`
        and `resume_window`: a ticker a flood touched for a moment goes soon."""
        now = asyncio.get_running_loop().time()
        watched = now - self._watched_since.pop(ticker, now)
        self.history.watched(ticker, active=False)
        self._start_linger(ticker, min(self.resume_window, max(self.linger_min, watched)))

    async def hold_unwatched(self, ticker: str) -> bool:
        """Produce and relay a ticker no client of this process holds (a REST client's
        first look at it): held like one whose last client just left, so it counts in
        `max_tickers`, lingers `linger_min` and is the first to make room for a
        subscriber. False when the process has no free room (a look evicts nothing)."""
        subs = self.subscribers.get(ticker)
        if subs is not None and ticker not in self._evicting:
            if not subs and ticker not in self._linger_until:
                self._start_linger(ticker, self.linger_min)  # its linger was just over
            return True
        if self._taken() >= self.max_tickers:
            return False  # only free room: a look must not push out a client's ticker
        self._evicting.discard(ticker)
        if subs is None:
            self.subscribers[ticker] = set()
        self.history.open(ticker)
        self.history.watched(ticker, active=False)
        self._start_linger(ticker, self.linger_min)
        await self.listening.listen(ticker)
        return True

    # -- lingering ---------------------------------------------------------------------

    def _start_linger(self, ticker: str, linger: float) -> None:
        """The ticker has no client: keep it `linger` seconds more. One timer per
        ticker, however often it empties (a subscribe/unsubscribe churn must not pile
        up a timer per leave for the whole window)."""
        loop = asyncio.get_running_loop()
        self._linger_until[ticker] = loop.time() + linger
        self._linger_until.move_to_end(ticker)
        if ticker not in self._lingering:
            self._lingering[ticker] = loop.call_later(linger, self._linger_check, ticker)

    def _linger_check(self, ticker: str) -> None:
        """The linger since the ticker's *last* client left is over: stop listening."""
        self._lingering.pop(ticker, None)
        subs = self.subscribers.get(ticker)
        if subs is None or subs:
            return  # back in use; the next leave starts a new timer
        loop = asyncio.get_running_loop()
        remaining = self._linger_until.get(ticker, 0.0) - loop.time()
        if remaining > 0:
            self._lingering[ticker] = loop.call_later(remaining, self._linger_check, ticker)
            return
        self._linger_until.pop(ticker, None)
        self.spawn(self._linger_over(ticker), None)

    async def _linger_over(self, ticker: str) -> None:
        """Stop holding a ticker nobody came back to: its subscription, history and
        every per-ticker entry, so what a client once asked for costs nothing later."""
        async with self.listening.lock(ticker):
            subs = self.subscribers.get(ticker)
            if subs is None or subs or ticker in self._linger_until:
                # Back in use, or lingering anew (hold_unwatched) since this was spawned.
                self._evicting.discard(ticker)
                return
            del self.subscribers[ticker]
            self._evicting.discard(ticker)
            self.forget(ticker)
            await self.listening.unlisten(ticker)
        if ticker not in self.subscribers:
            # No subscribe can be waiting on this lock: one would have put its client
            # into `subscribers` before waiting.
            self.listening.locks.pop(ticker, None)
