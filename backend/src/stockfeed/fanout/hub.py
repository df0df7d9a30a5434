"""Per-process fan-out: one broker subscription per ticker, shared by all local clients.

Every message from the broker is framed once and the same bytes go to each subscriber.
The hub also remembers the latest update and the recent history of each ticker it
relays, so a relay-only process (source `none`) serves snapshots and resumes too. A
ticker's subscription lingers for `resume_window` seconds after its last client left,
so a client that comes back within it can resume without a gap.

What clients can make the hub hold is bounded for the whole process: at most
`max_tickers` tickers at once (subscribed plus lingering; a new one evicts the ticker
that has lingered longest, or is refused when none lingers), a ticker lingers only as
long as it was watched (at least `linger_min`, at most `resume_window`), and the
resume history of all tickers shares one byte budget (resume.History). Bars (candles)
are built per ticker and interval once per process, for the clients that ask
(fanout/bar_feed.py); a ticker nobody asked bars of costs nothing more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from stockfeed import protocol
from stockfeed.broker import Broker
from stockfeed.fanout.bar_feed import BarFeed
from stockfeed.fanout.connections import (
    CLOSE_SLOW_CONSUMER,
    HEARTBEAT_KEY,
    Connection,
    status_key,
)
from stockfeed.fanout.frames import text_frame
from stockfeed.fanout.liveness import Liveness
from stockfeed.fanout.resume import Entry, History, ResumePoint, replay_after
from stockfeed.market_hours import MarketClock
from stockfeed.shared import SharedStore, StoredQuote, StoreUnavailable

log = logging.getLogger(__name__)

INTEREST_TTL = 30.0


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


class Hub:
    """One per process: between the broker and this process's client connections.

    Broker side: `on_message(ticker, message)` is the broker's handler for every message
    on `market:{T}`. It reads only `ticker` and `seq`, frames the text once, keeps it in
    the ticker's resume history and offers the same bytes to every subscriber without
    awaiting any (a slow client is conflated or dropped by its own connection). A seq
    jump (the broker was away) holds the clients that missed updates and backfills them
    from the store's history, or sends a gap snapshot; a seq that goes back (a publisher
    restarted its count) starts a new epoch for the ticker.

    Client side: `async with hub.session(conn)`, then `subscribe` (a replay for a resume,
    else a snapshot, live updates held back meanwhile so nothing is lost or repeated)
    and `unsubscribe`. A ticker nobody holds any more lingers (still subscribed on the
    broker, its history kept) as long as it was watched, within `linger_min` and
    `resume_window`; at most `max_tickers` are held at once. Background tasks send
    heartbeats, market-session changes and the tickers this process wants to the updater.
    """

    def __init__(
        self,
        *,
        broker: Broker,
        store: SharedStore,
        clock: MarketClock,
        quote_ttl: float,
        heartbeat_interval: float,
        stale_since: Callable[[], float | None] = lambda: None,
        resume_history: int = 2000,
        resume_window: float = 300.0,
        resume_history_bytes: int = 48 * 1024 * 1024,
        max_tickers: int = 1000,
        linger_min: float = 10.0,
    ) -> None:
        self.broker = broker
        self.store = store
        self.clock = clock
        self.quote_ttl = quote_ttl
        self.heartbeat_interval = heartbeat_interval
        self.stale_since = stale_since
        self.clients: set[Connection] = set()
        self.subscribers: dict[str, set[Connection]] = {}
        self.latest: dict[str, Latest] = {}
        self.history = History(resume_history_bytes, resume_history)
        self.resume_window = resume_window
        self.max_tickers = max_tickers
        self.linger_min = min(linger_min, resume_window)
        # Refusals by error code (ticker_limit, new_ticker_rate, subscription_limit...),
        # counted by whoever refuses, for /metrics and health.
        self.refused: Counter[str] = Counter()
        self.evicted = 0  # lingering tickers dropped early to make room for a new one
        self.epoch = ""
        self._restarts: dict[str, int] = {}  # tickers whose seq went back: epoch suffix
        self.replayed = 0
        self.gaps = 0
        self.duplicates = 0
        self.relayed = 0
        self.rejected = 0
        self.slow_closed = 0
        # For /metrics (metrics.py reads them at scrape time): counted per broadcast,
        # connect or round, never per client per message.
        self.connections_opened = 0
        self.fanned_out = 0  # price updates handed to client connections
        self.snapshots_sent = 0
        self.statuses_sent = 0
        self.heartbeats_sent = 0
        self._conflated_gone = 0  # skipped updates of clients already disconnected
        # Per ticker, while it is held: serialises the broker (un)subscribe of one ticker.
        self._locks: dict[str, asyncio.Lock] = {}
        self._listening: set[str] = set()  # tickers the broker subscription is up for
        self._sessions: dict[str, str] = {}
        self._status_cache: dict[str, tuple[float, bool, str]] = {}
        # Tickers whose stored quote was read since the hub subscribed to them: from then
        # on the relayed updates are newer than anything in the store.
        self._store_checked: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()  # running _fill tasks (kept referenced)
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
        self.liveness = Liveness(clock, quote_ttl=quote_ttl)  # per-ticker stale marks
        self.bars = BarFeed(self)
        self.bar_books = self.bars.books  # ticker -> its books; read for every update
        # A ticker's last update when the shared store has none (it expired, was evicted,
        # or the process restarted): the market-data store's (stockfeed/kept/), set by
        # the services. A closed market still shows its last price.
        self.last_known: Callable[[str], Awaitable[str | None]] | None = None
        broker.set_handler(self.on_message)

    async def refresh_epoch(self) -> None:
        try:
            epoch = await self.store.epoch()
        except StoreUnavailable:
            return
        if epoch != self.epoch:
            if self.epoch:
                log.warning("epoch %s -> %s: recent history is gone", self.epoch, epoch)
            self.epoch = epoch
            self._restarts.clear()
            self.history.clear()
            self.bars.reset_all()

    def epoch_for(self, ticker: str) -> str:
        restarts = self._restarts.get(ticker)
        return self.epoch if not restarts else f"{self.epoch}.{restarts}"

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._epoch_watch(), name="hub-epoch"),
            asyncio.create_task(self._heartbeats(), name="hub-heartbeats"),
            asyncio.create_task(self._interest(), name="hub-interest"),
            asyncio.create_task(self._market_watch(), name="hub-market-watch"),
            asyncio.create_task(self.liveness.run(self, self.stale_since), name="hub-liveness"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- broker side -------------------------------------------------------------------

    def on_message(self, channel_ticker: str, message: str | bytes) -> None:
        """A message the broker relayed from `market:{channel_ticker}` (never awaits)."""
        if isinstance(message, str):
            raw, payload = message, message.encode()
        else:
            payload = message
            try:
                raw = message.decode()
            except UnicodeDecodeError:
                self.rejected += 1
                log.warning("dropped a message on market:%s: not UTF-8", channel_ticker)
                return
        ticker = channel_ticker
        seq_or_none = protocol.update_seq(payload, ticker)
        if seq_or_none is not None:
            seq = seq_or_none  # as our updater writes it: parsed when someone asks
            current = Latest(seq, None, time.time(), payload)
        else:
            try:
                named, seq, update = protocol.read_update(payload)
            except protocol.BadUpdate as exc:
                self.rejected += 1
                log.warning("dropped a message on market:%s: %s", channel_ticker, exc)
                return
            if named != channel_ticker:
                self.rejected += 1
                log.warning("dropped a %s update published on market:%s", named, channel_ticker)
                return
            current = Latest(seq, update, time.time())
        latest = self.latest.get(ticker)
        self.latest[ticker] = current
        frame = text_frame(payload)  # built once, the same bytes for every client
        if latest is not None and seq <= latest.seq:
            if seq == latest.seq:
                self.duplicates += 1  # the same update twice (e.g. two publishers)
                self.latest[ticker] = latest
                return
            self._seq_restarted(ticker, seq, current.update)
            return
        self.relayed += 1
        self.liveness.seen(ticker)
        ring = self.history.get(ticker)
        if ring is not None:
            self.history.append(ring, seq, frame)
        subscribers = self.subscribers.get(ticker)
        if subscribers:
            if latest is None or seq > latest.seq + 1:
                # None: the first update since the hub started listening, which may come
                # later than the stored snapshot or replay its clients got (broker away).
                self._backfill(ticker, seq, subscribers)
            self.fanned_out += len(subscribers)
            for client in subscribers:
                client.offer_update(ticker, seq, raw, frame)
        if ticker in self.bar_books:
            parsed = current.update
            if parsed is not None:
                self.bars.on_update(ticker, seq, parsed)

    def _backfill(self, ticker: str, seq: int, subscribers: set[Connection]) -> None:
        """Updates went by unseen: the broker's subscription was down (e.g. Redis was
        restarting) while the updater already published again. Hold the clients that
        missed them, replay them from the shared history, or send a gap snapshot when the
        history lacks them (never a silent jump in `seq`)."""
        behind = [
            c
            for c in subscribers
            # A held client (its subscribe or a fill under way) is checked for jumps
            # when it is released (_release).
            if c.last_seq.get(ticker, seq) < seq - 1 and not c.is_held_for_subscribe(ticker)
        ]
        if not behind:
            return
        for client in behind:
            client.hold(ticker)
        task = asyncio.create_task(self._fill(ticker, seq, behind), name=f"hub-fill-{ticker}")
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _fill(self, ticker: str, seq: int, clients: list[Connection]) -> None:
        oldest_seen = min(c.last_seq.get(ticker, 0) for c in clients)
        entries = await self._stored_entries(ticker, frames_after=oldest_seen, below=seq) or []
        try:
            for client in clients:
                if ticker not in client.tickers:
                    continue  # unsubscribed meanwhile
                last = client.last_seq.get(ticker, 0)
                missed = replay_after(entries, last)
                reached = missed[-1].seq if missed else last
                # `last < oldest_seen`: the seq went back meanwhile (_seq_restarted); the
                # history may be of the old count (and has no frames that far back).
                if missed is None or reached < seq - 1 or last < oldest_seen:
                    # Not all of what went by is in the history (it may also end before
                    # the jump): a gap snapshot, never a silent jump in seq.
                    client.gap_next(ticker, self.epoch_for(ticker))
                    self.bars.after_gap(client, ticker)
                    self.gaps += 1
                    continue
                for entry in missed:
                    client.replay(ticker, entry)
                self.replayed += len(missed)
        finally:
            self._release(ticker, clients)

    def _release(self, ticker: str, clients: Sequence[Connection]) -> None:
        """Send what the clients held since their subscribe or fill began. What arrived
        meanwhile may itself jump in seq (the broker skipped updates again; _backfill
        leaves held clients alone): from that jump on they stay held, and it is filled
        in turn, so a jump never goes out silently."""
        again: dict[int, list[Connection]] = {}
        for client in clients:
            jump = client.release_to_jump(ticker)
            if jump is not None:
                again.setdefault(jump, []).append(client)
        for jump, behind in again.items():
            self._spawn(self._fill(ticker, jump, behind))

    def _seq_restarted(self, ticker: str, seq: int, update: dict[str, Any] | None) -> None:
        """A publisher started `seq` again: new epoch for the ticker, gap for its clients."""
        self._restarts[ticker] = self._restarts.get(ticker, 0) + 1
        if self._restarts[ticker] <= 3 or self._restarts[ticker] % 100 == 0:
            # Repeated restarts mean two publishers with their own seq on one channel.
            log.warning(
                "seq of %s went back to %d (%d times): new epoch %s",
                ticker,
                seq,
                self._restarts[ticker],
                self.epoch_for(ticker),
            )
        self.history.clear(ticker)
        self.bars.reset(ticker)  # fresh `bars` follow the gap snapshot
        epoch = self.epoch_for(ticker)
        if update is None:  # unreadable: the next update is the gap snapshot
            for client in self.subscribers.get(ticker, ()):
                client.last_seq[ticker] = seq
                client.gap_next(ticker, epoch)
            return
        text = protocol.snapshot(update, gap=True, epoch=epoch)
        for client in self.subscribers.get(ticker, ()):
            client.last_seq[ticker] = seq
            client.send(text)
            self.snapshots_sent += 1

    # -- client side -------------------------------------------------------------------

    def session(self, client: Connection) -> HubSession:
        """`async with hub.session(client):` the client is known to the hub inside,
        and everything it held is let go when the block ends, however it ends."""
        return HubSession(self, client)

    def _connect(self, client: Connection) -> None:
        self.clients.add(client)
        self.connections_opened += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("client connected", extra={"conn": client.id, "remote": client.remote})
        client.start()

    async def _disconnect(self, client: Connection) -> None:
        self.clients.discard(client)
        self._conflated_gone += client.conflated
        if client.close_code == CLOSE_SLOW_CONSUMER:
            self.slow_closed += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "client disconnected",
                extra={
                    "conn": client.id,
                    "remote": client.remote,
                    "close_code": client.close_code,
                    "tickers": len(client.tickers),
                    "conflated": client.conflated,
                },
            )
        for ticker in list(client.tickers):
            await self.unsubscribe(client, ticker)
        await client.stop()

    def has_room(self, ticker: str, pending: int = 0) -> bool:
        """Whether the process could hold `ticker` now (after `pending` new ones already
        accepted by the same request and not reserved): already held or reserved, under
        `max_tickers` with every reservation counted, or enough tickers linger (and are
        not about to be taken back) to make room. Evicts nothing: the subscribe that
        follows does (`_make_room`), so a request refused later (an unknown ticker) costs
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
            self.evicted += 1
            self._spawn(self._linger_over(ticker))
            return True
        return False

    def is_new(self, ticker: str) -> bool:
        """The process does not hold this ticker yet (subscribing would bring it in)."""
        return ticker not in self.subscribers or ticker in self._evicting

    async def subscribe(
        self,
        client: Connection,
        ticker: str,
        resume: ResumePoint | None = None,
        bars: Sequence[str] = (),
    ) -> bool:
        """Attach a client to a ticker, then send it a replay (resume), a snapshot, or
        nothing when it is up to date. Live updates are held back meanwhile, so nothing
        is lost or repeated in between (the client also drops duplicates by seq).
        With `bars` (intervals), a `bars` message each follows, then every `bar`; on a
        ticker the client holds already, that is all that happens.
        False, with nothing sent, when the process holds `max_tickers` and none can
        make room (the caller refuses with `ticker_limit`)."""
        if ticker in client.tickers:
            if bars:
                self.bars.attach_soon(client, ticker, bars)
            return True
        if not self._make_room(ticker):
            return False
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
        self.history.watched(ticker, active=True)
        client.tickers.add(ticker)
        client.hold(ticker)
        subs.add(client)  # held: what arrives before the snapshot waits in its hold list
        try:
            await self._listen(ticker)
            if resume is not None and await self._replay(client, ticker, resume):
                return True
            snap = await self.snapshot(ticker, gap=resume is not None)
            if snap is not None:
                seq, text = snap
                if seq > client.last_seq.get(ticker, 0):
                    client.last_seq[ticker] = seq
                    client.send(text)
                    self.snapshots_sent += 1
            elif resume is not None:
                # Nothing cached to stand in for the gap: the next update will (never silence).
                client.gap_next(ticker, self.epoch_for(ticker))
            if resume is not None:
                self.gaps += 1
        finally:
            self._release(ticker, (client,))
            client.send_frame(self.market_status(ticker), None, status_key(ticker))
            self.statuses_sent += 1
            if bars:
                self.bars.attach_soon(client, ticker, bars)
        return True

    async def _replay(self, client: Connection, ticker: str, point: ResumePoint) -> bool:
        """Replay what the client missed; False when that is not possible (gap)."""
        if point.epoch is not None and point.epoch != self.epoch_for(ticker):
            return False
        ring = self.history.get(ticker)
        entries = replay_after(ring.entries, point.seq) if ring is not None else None
        if entries is None:
            entries = await self._replay_from_store(ticker, point.seq)
        if entries is None:
            return False
        for entry in entries:
            # In chunks that wait for the client to drain: a resume from far back is
            # thousands of frames, and the client may not be reading at all.
            if client.backed_up() and not await client.writable():
                break
            client.replay(ticker, entry)
        if not entries:
            client.last_seq[ticker] = max(client.last_seq.get(ticker, 0), point.seq)
        self.replayed += len(entries)
        return True

    async def _replay_from_store(self, ticker: str, last_seq: int) -> list[Entry] | None:
        """The deployment's shared history (the updater keeps it): for a process that was
        not listening to this ticker while the client was away."""
        if self._restarts.get(ticker):
            return None  # the shared history may be in the old seq space
        entries = await self._stored_entries(ticker, frames_after=last_seq)
        return None if entries is None else replay_after(entries, last_seq)

    async def _stored_entries(
        self, ticker: str, frames_after: int, below: int | None = None
    ) -> list[Entry] | None:
        """The shared history as ring entries, oldest first (None: the store is down).
        Only updates after `frames_after` can be sent, so only theirs get a frame; the
        older ones are kept for their seq (replay_after needs to see where history
        starts). With `below`, updates from that seq on are left out."""
        try:
            recent = await self.store.recent(ticker)
        except StoreUnavailable:
            return None
        entries: list[Entry] = []
        for raw in recent:
            try:
                _, seq, _ = protocol.read_update(raw)
            except protocol.BadUpdate:
                continue
            if below is not None and seq >= below:
                continue
            frame = text_frame(raw.encode()) if seq > frames_after else b""
            entries.append(Entry(seq, frame))
        return entries

    async def _listen(self, ticker: str) -> None:
        """Subscribe the broker to a ticker the hub holds now (once), and ask the
        updater to produce it."""
        lock = self._locks.get(ticker)
        if lock is None:
            lock = self._locks[ticker] = asyncio.Lock()
        async with lock:
            if ticker not in self._listening:
                await self.broker.subscribe(ticker)
                self._listening.add(ticker)
                try:
                    await self.store.add_interest({ticker}, INTEREST_TTL)
                except StoreUnavailable:
                    pass  # the interest loop retries

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
        await self._listen(ticker)
        return True

    async def unsubscribe(self, client: Connection, ticker: str) -> None:
        if ticker not in client.tickers:
            return  # not this client's: must not touch another's linger or its order
        client.tickers.discard(ticker)
        client.last_seq.pop(ticker, None)
        if ticker in self.bar_books:
            self.bars.detach(client, ticker)
        subs = self.subscribers.get(ticker)
        if subs is None:
            return
        subs.discard(client)
        if not subs:
            # Keep listening a while: a client that comes back can still resume. As long
            # as the ticker was watched, between `linger_min` and `resume_window`: a
            # ticker a flood touched for a moment goes soon.
            now = asyncio.get_running_loop().time()
            watched = now - self._watched_since.pop(ticker, now)
            self.history.watched(ticker, active=False)
            self._start_linger(ticker, min(self.resume_window, max(self.linger_min, watched)))

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
        self._spawn(self._linger_over(ticker))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(coro)
        self._in_flight.add(task)  # kept referenced until done, like the backfills
        task.add_done_callback(self._in_flight.discard)
        return task

    async def _linger_over(self, ticker: str) -> None:
        """Stop holding a ticker nobody came back to: its subscription, history and
        every per-ticker entry, so what a client once asked for costs nothing later."""
        lock = self._locks.get(ticker)
        if lock is None:
            lock = self._locks[ticker] = asyncio.Lock()
        async with lock:
            subs = self.subscribers.get(ticker)
            if subs is None or subs or ticker in self._linger_until:
                # Back in use, or lingering anew (hold_unwatched) since this was spawned.
                self._evicting.discard(ticker)
                return
            del self.subscribers[ticker]
            self._evicting.discard(ticker)
            self.history.drop(ticker)
            self.bars.drop(ticker)
            self.latest.pop(ticker, None)
            self._sessions.pop(ticker, None)
            self._status_cache.pop(ticker, None)
            self.liveness.forget(ticker)
            self._store_checked.discard(ticker)
            if ticker in self._listening:
                self._listening.discard(ticker)
                await self.broker.unsubscribe(ticker)
            try:
                await self.store.drop_interest({ticker})
            except StoreUnavailable:
                pass
        if ticker not in self.subscribers:
            # No subscribe can be waiting on this lock: one would have put its client
            # into `subscribers` before waiting.
            self._locks.pop(ticker, None)

    def lingering(self) -> int:
        return len(self._linger_until)

    async def latest_update(self, ticker: str) -> tuple[dict[str, Any], bool] | None:
        """The newest known update of a ticker and whether it is still fresh."""
        local = self.latest.get(ticker)
        stored = None
        if ticker not in self._store_checked:
            try:
                stored = await self.store.get_quote(ticker)
            except StoreUnavailable:
                pass
            else:
                if stored is None and local is None and self.last_known is not None:
                    raw = await self.last_known(ticker)
                    stored = None if raw is None else StoredQuote(raw, fresh=False)
                if ticker in self.subscribers:
                    self._store_checked.add(ticker)
        best: dict[str, Any] | None = local.update if local else None
        if stored is not None:
            try:
                _, seq, update = protocol.read_update(stored.raw)
            except protocol.BadUpdate:
                update = None
            if update is not None and (best is None or _newer(update, best)):
                best = update
                if ticker in self.subscribers:
                    # Kept as the latest: the store is not asked again (_store_checked),
                    # and a closed market relays nothing, so without it every later
                    # subscriber would get no snapshot at all.
                    self.latest[ticker] = Latest(seq, update, time.time())
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
        text = protocol.snapshot(update, stale=stale, gap=gap, epoch=self.epoch_for(ticker))
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

    async def shutdown(self, retry_after_ms: int) -> None:
        """Tell every client to come back later, then close them with 1001."""
        notice = protocol.server_shutdown(retry_after_ms)
        clients = list(self.clients)
        for client in clients:
            client.send(notice)
        await asyncio.gather(
            *(c.close(1001, "server shutting down") for c in clients), return_exceptions=True
        )

    def conflated_total(self) -> int:
        return self._conflated_gone + sum(c.conflated for c in self.clients)

    def subscriber_counts(self) -> dict[str, int]:
        return {t: len(s) for t, s in sorted(self.subscribers.items()) if s}

    # -- background --------------------------------------------------------------------

    async def _epoch_watch(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            await self.refresh_epoch()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            text = protocol.heartbeat()
            frame = text_frame(text.encode())  # one frame for every client
            for client in list(self.clients):
                client.send_frame(text, frame, HEARTBEAT_KEY)
            self.heartbeats_sent += len(self.clients)

    async def _interest(self) -> None:
        """Keep telling the updater (maybe in another process) what our clients want."""
        while True:
            await asyncio.sleep(INTEREST_TTL / 3)
            try:
                await self.store.add_interest(set(self.subscribers), INTEREST_TTL)
            except StoreUnavailable:
                pass

    async def _market_watch(self) -> None:
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
                    self.statuses_sent += len(subs)


class HubSession:
    """What `Hub.session` returns. A class rather than a generator-based context
    manager: a generator's frame would stay alive for the whole connection, and what a
    connection keeps is counted per client (bench conn)."""

    __slots__ = ("client", "hub")

    def __init__(self, hub: Hub, client: Connection) -> None:
        self.hub = hub
        self.client = client

    async def __aenter__(self) -> Connection:
        self.hub._connect(self.client)
        return self.client

    async def __aexit__(self, *exc_info: object) -> None:
        await self.hub._disconnect(self.client)


def _newer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ta, tb = a.get("timestamp"), b.get("timestamp")
    if isinstance(ta, int | float) and isinstance(tb, int | float):
        return ta > tb
    return bool(a.get("seq", 0) > b.get("seq", 0))


def parse_status(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
