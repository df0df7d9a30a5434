"""Per-process fan-out: one broker subscription per ticker, shared by all local clients.

Every message from the broker is framed once and the same bytes go to each subscriber.
The hub tracks the connections and the tickers each holds, and broadcasts; its parts do
the rest (the package's docstring names them): linger.py holds tickers and lets them go,
recovery.py resumes and backfills, latest.py makes snapshots. The resume history of all
tickers shares one byte budget (resume.History), so a relay-only process (source
`none`) serves snapshots and resumes too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from stockfeed import protocol
from stockfeed.broker import Broker
from stockfeed.fanout.bar_feed import BarFeed
from stockfeed.fanout.connections import HEARTBEAT_KEY, Connection, status_key
from stockfeed.fanout.epochs import Epochs
from stockfeed.fanout.frames import text_frame
from stockfeed.fanout.latest import Latest, LatestUpdates
from stockfeed.fanout.linger import Room
from stockfeed.fanout.listening import Listening
from stockfeed.fanout.liveness import Liveness
from stockfeed.fanout.recovery import Recovery
from stockfeed.fanout.resume import History, ResumePoint
from stockfeed.fanout.stats import HubStats
from stockfeed.market_hours import MarketClock
from stockfeed.shared import SharedStore

log = logging.getLogger(__name__)


class Hub:
    """One per process: between the broker and this process's client connections.

    Broker side: `on_message` frames each update on `market:{T}` once, keeps it in the
    ticker's resume history and offers the same bytes to every subscriber without
    awaiting any (a slow client is conflated or dropped by its own connection); seq
    jumps (the broker was away) and restarts go to `recovery`. Client side: `async with
    hub.session(conn)`, then `subscribe` (a replay for a resume, else a snapshot, live
    updates held back meanwhile so nothing is lost or repeated) and `unsubscribe`."""

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
        stats: HubStats | None = None,
    ) -> None:
        self.broker = broker
        self.store = store
        self.heartbeat_interval = heartbeat_interval
        self.stats = stats if stats is not None else HubStats()
        self.clients: set[Connection] = set()
        self.subscribers: dict[str, set[Connection]] = {}
        self.history = History(resume_history_bytes, resume_history)
        self.epochs = Epochs(store)
        self.liveness = Liveness(clock, quote_ttl=quote_ttl)  # per-ticker stale marks
        self.updates = LatestUpdates(
            store=store,
            clock=clock,
            quote_ttl=quote_ttl,
            liveness=self.liveness,
            epochs=self.epochs,
            stats=self.stats,
            subscribers=self.subscribers,
            stale_since=stale_since,
        )
        self.latest: dict[str, Latest] = self.updates.by_ticker  # written for every update
        # Each held ticker's price_update head (protocol.update_head), for reading seqs.
        self._heads: dict[str, bytes] = {}
        self._heads_cap = 2 * max_tickers
        self.listening = Listening(broker, store)
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()  # spawned tasks (kept referenced)
        self.bars = BarFeed(self)
        self.bar_books = self.bars.books  # ticker -> its books; read for every update
        self.recovery = Recovery(
            store=store,
            history=self.history,
            epochs=self.epochs,
            stats=self.stats,
            bars=self.bars,
            subscribers=self.subscribers,
            spawn=self.spawn,
        )
        self.room = Room(
            subscribers=self.subscribers,
            history=self.history,
            listening=self.listening,
            stats=self.stats,
            spawn=self.spawn,
            forget=self._forget,
            max_tickers=max_tickers,
            linger_min=linger_min,
            resume_window=resume_window,
        )
        broker.set_handler(self.on_message)

    async def refresh_epoch(self) -> None:
        if await self.epochs.refresh():
            self.history.clear()
            self.bars.reset_all()

    def start(self) -> None:
        stale_since = self.updates.stale_since  # the source's, for liveness's statuses
        self._tasks = [
            asyncio.create_task(self._epoch_watch(), name="hub-epoch"),
            asyncio.create_task(self._heartbeats(), name="hub-heartbeats"),
            asyncio.create_task(self.listening.interest(self.subscribers), name="hub-interest"),
            asyncio.create_task(self.updates.market_watch(), name="hub-market-watch"),
            asyncio.create_task(self.liveness.run(self, stale_since), name="hub-liveness"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(
        self, coro: Coroutine[Any, Any, None], name: str | None = None
    ) -> asyncio.Future[None]:
        task = asyncio.create_task(coro, name=name)
        self._in_flight.add(task)  # kept referenced until done
        task.add_done_callback(self._in_flight.discard)
        return task

    # -- broker side -------------------------------------------------------------------

    def on_message(self, channel_ticker: str, message: str | bytes) -> None:
        """A message the broker relayed from `market:{channel_ticker}` (never awaits).

        Paid for every message of every ticker the process holds, whatever its clients
        (docs/scaling.md): nothing here is done twice or done for nobody. The bytes are
        framed once and only checked as UTF-8 (the text is the frame's payload, decoded
        where a path needs it); the seq is read off the head our updater writes."""
        stats = self.stats
        if isinstance(message, bytes):
            payload = message
            if not payload.isascii():  # ASCII is UTF-8: only the rest needs the check
                try:
                    payload.decode()
                except UnicodeDecodeError:
                    stats.rejected += 1
                    log.warning("dropped a message on market:%s: not UTF-8", channel_ticker)
                    return
        else:
            payload = message.encode()
        ticker = channel_ticker
        head = self._heads.get(ticker)
        if head is None:
            if len(self._heads) >= self._heads_cap:
                self._heads.clear()  # tickers let go without `_forget` (bounded anyway)
            head = self._heads[ticker] = protocol.update_head(ticker)
        seq_or_none = protocol.seq_after_head(payload, head)
        if seq_or_none is not None:
            seq = seq_or_none  # as our updater writes it: parsed when someone asks
            current = Latest(seq, None, time.time(), payload)
        else:
            try:
                named, seq, update = protocol.read_update(payload)
            except protocol.BadUpdate as exc:
                stats.rejected += 1
                log.warning("dropped a message on market:%s: %s", channel_ticker, exc)
                return
            if named != channel_ticker:
                stats.rejected += 1
                log.warning("dropped a %s update published on market:%s", named, channel_ticker)
                return
            current = Latest(seq, update, time.time())
        latest_by_ticker = self.latest
        latest = latest_by_ticker.get(ticker)
        if latest is not None and seq <= latest.seq:
            if seq == latest.seq:
                stats.duplicates += 1  # the same update twice (e.g. two publishers)
                return
            latest_by_ticker[ticker] = current
            self.recovery.seq_restarted(ticker, seq, current.update)
            return
        latest_by_ticker[ticker] = current
        frame = text_frame(payload)  # built once, the same bytes for every client
        stats.relayed += 1
        self.liveness.seen(ticker)
        self.history.keep(ticker, seq, frame)
        subscribers = self.subscribers.get(ticker)
        if subscribers:
            if latest is None or seq > latest.seq + 1:
                # None: the first update since the hub started listening, which may come
                # later than the stored snapshot or replay its clients got (broker away).
                self.recovery.backfill(ticker, seq, subscribers)
            stats.fanned_out += len(subscribers)
            for client in subscribers:
                client.offer_update(ticker, seq, frame)
        if ticker in self.bar_books:
            parsed = current.update
            if parsed is not None:
                self.bars.on_update(ticker, seq, parsed)

    # -- client side -------------------------------------------------------------------

    def session(self, client: Connection) -> HubSession:
        """`async with hub.session(client):` the client is known to the hub inside,
        and everything it held is let go when the block ends, however it ends."""
        return HubSession(self, client)

    def connect(self, client: Connection) -> None:
        self.clients.add(client)
        self.stats.connected()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("client connected", extra={"conn": client.id, "remote": client.remote})
        client.start()

    async def disconnect(self, client: Connection) -> None:
        self.clients.discard(client)
        self.stats.disconnected(client)
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
        subs = self.room.take(ticker)
        if subs is None:
            return False
        self.history.watched(ticker, active=True)
        client.tickers.add(ticker)
        client.hold(ticker)
        subs.add(client)  # held: what arrives before the snapshot waits in its hold list
        try:
            await self.listening.listen(ticker)
            if resume is not None and await self.recovery.replay(client, ticker, resume):
                return True
            snap = await self.updates.snapshot(ticker, gap=resume is not None)
            if snap is not None:
                seq, text = snap
                if seq > client.last_seq.get(ticker, 0):
                    client.last_seq[ticker] = seq
                    client.send(text)
                    self.stats.snapshots_sent += 1
            elif resume is not None:
                # Nothing cached to stand in for the gap: the next update will (never silence).
                client.gap_next(ticker, self.epochs.epoch_for(ticker))
            if resume is not None:
                self.stats.gaps += 1
        finally:
            self.recovery.release(ticker, (client,))
            client.send_frame(self.updates.market_status(ticker), None, status_key(ticker))
            self.stats.statuses_sent += 1
            if bars:
                self.bars.attach_soon(client, ticker, bars)
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
            self.room.left(ticker)

    def _forget(self, ticker: str) -> None:
        """The room let the ticker go: what the parts keep of it goes too."""
        self.history.drop(ticker)
        self.bars.drop(ticker)
        self.updates.forget(ticker)
        self.liveness.forget(ticker)
        self._heads.pop(ticker, None)

    async def shutdown(self, retry_after_ms: int) -> None:
        """Tell every client to come back later, then close them with 1001."""
        notice = protocol.server_shutdown(retry_after_ms)
        clients = list(self.clients)
        for client in clients:
            client.send(notice)
        await asyncio.gather(
            *(c.close(1001, "server shutting down") for c in clients), return_exceptions=True
        )

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
            self.stats.heartbeats_sent += len(self.clients)


class HubSession:
    """What `Hub.session` returns. A class rather than a generator-based context
    manager: a generator's frame would stay alive for the whole connection, and what a
    connection keeps is counted per client (bench conn)."""

    __slots__ = ("client", "hub")

    def __init__(self, hub: Hub, client: Connection) -> None:
        self.hub = hub
        self.client = client

    async def __aenter__(self) -> Connection:
        self.hub.connect(self.client)
        return self.client

    async def __aexit__(self, *exc_info: object) -> None:
        await self.hub.disconnect(self.client)
