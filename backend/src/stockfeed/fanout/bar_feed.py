"""Bars on the wire: the process's bar books and the clients that asked for them.

One `Book` per (ticker, interval) per process, whoever asks, however many: a thousand
clients of AAPL 1m share one book, and every `bar` it sends is encoded and framed once.
The hub folds each relayed update into the ticker's books (`on_update`, only for tickers
that have books: a ticker nobody asked bars of costs one dict lookup per update). A book
lives as long as the hub holds its ticker (lingering included), at most `KEPT` bars each
(fanout/bars.py); a connection may hold `max_bar_streams` (ticker, interval) pairs.

**The same bars on every process.** A book is a pure fold of the seq-ordered update
stream (bars.py), so two processes that start from the same state at the same seq stay
identical. The state they start from is shared: each book's checkpoint is kept in the
shared store (`bars:{T}:{interval}`: the book as of a seq), written when a bar becomes
final and every CHECKPOINT_EVERY updates. A process that builds a book takes the
checkpoint and folds the updates after it (the store's recent history and its own
resume ring); only when no usable checkpoint exists (the first book of the deployment,
or one not kept up for longer than the shared history reaches) does it start one from
the source's history bars (the REST answer, through the answer cache) plus the updates,
and publishes it for the others (create-if-absent: two processes starting at once
agree on one). The memory store keeps checkpoints for its one process.

**Reconnects.** A subscribe with `bars` gets, per interval, one `bars` message (the kept
bars as of the book's seq), then a `bar` for every change. After a resume's replay that
`bars` is what leaves the client identical (a bar with a known `time` replaces it); after
a gap snapshot the client gets a fresh `bars` (held until that snapshot went out). When a
book misses updates (a seq jump the hub could not see, a publisher's seq restart, a new
epoch) it is rebuilt the same way and every subscriber gets a fresh `bars`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, NamedTuple, Protocol

from stockfeed import protocol
from stockfeed.fanout.bars import BarBook
from stockfeed.fanout.connections import Connection, bar_key, bars_key
from stockfeed.fanout.epochs import Epochs
from stockfeed.fanout.frames import frame_payload, text_frame
from stockfeed.fanout.latest import LatestUpdates
from stockfeed.fanout.resume import History
from stockfeed.protocol.messages import bar as bar_message
from stockfeed.protocol.messages import bars as bars_message
from stockfeed.shared import SharedStore, StoreUnavailable


class BarHost(Protocol):
    """What the books need of the process around them (the hub): its shared store, its
    resume history and latest updates to fold from, its epochs, and a way to run a task
    that stays referenced until done."""

    @property
    def store(self) -> SharedStore: ...

    @property
    def history(self) -> History: ...

    @property
    def updates(self) -> LatestUpdates: ...

    @property
    def epochs(self) -> Epochs: ...

    def spawn(
        self, coro: Coroutine[Any, Any, None], name: str | None = None
    ) -> asyncio.Future[None]: ...


log = logging.getLogger(__name__)

# Updates between two checkpoints of a book (besides one per bar made final): well inside
# the shared history (2,000 updates), so a process can always fold on from the last one.
CHECKPOINT_EVERY = 500
# How long a checkpoint outlives the last process that kept it up.
CHECKPOINT_TTL = 86400
BUILD_ATTEMPTS = 3

BaseBars = Callable[[str, str], Awaitable[list[dict[str, Any]]]]
# (epoch, checkpoint) of a book as the market-data store's writer folds it (kept/keeper.py).
KeptCheckpoint = Callable[[str, str], Awaitable[tuple[str, str] | None]]


class Known(NamedTuple):
    """What a build can fold: updates by seq (the shared history and the newest quote),
    and the lowest and highest seq of the shared history ((0, 0): none)."""

    updates: dict[int, dict[str, Any]]
    shared: tuple[int, int]


class Book:
    """One (ticker, interval): its bars (None while being built) and its subscribers."""

    __slots__ = (
        "_frame",
        "building",
        "generation",
        "interval",
        "ready",
        "state",
        "subscribers",
        "ticker",
        "waiters",
        "writing",
        "written",
    )

    def __init__(self, ticker: str, interval: str) -> None:
        self.ticker = ticker
        self.interval = interval
        self.state: BarBook | None = None
        self.ready: asyncio.Future[None] | None = None
        self.subscribers: set[Connection] = set()
        # Clients that asked for the book while it is built: when the last of them is
        # gone and nobody is subscribed, the build is cancelled (it may cost upstream
        # calls and a history slot that someone else is waiting for).
        self.waiters: set[Connection] = set()
        self.building: asyncio.Future[None] | None = None  # the build task
        self.written = 0  # seq of the last checkpoint this process wrote
        self.generation = 0  # +1 for every rebuild asked: a build finds out it is outdated
        self.writing = False
        self._frame: tuple[int, str, bytes] | None = None  # the `bars` message, per seq

    def bars_message(self) -> tuple[str, bytes]:
        """The `bars` message as of the book's seq: built once per seq, shared."""
        state = self.state
        assert state is not None
        cached = self._frame
        if cached is None or cached[0] != state.seq:
            text = bars_message(self.ticker, self.interval, state.seq, state.texts())
            cached = self._frame = (state.seq, text, text_frame(text.encode()))
        return cached[1], cached[2]


class BarFeed:
    def __init__(self, host: BarHost) -> None:
        self.host = host
        self.books: dict[str, dict[str, Book]] = {}  # ticker -> interval -> book
        # Where a first book's history comes from (set by the app: the REST answer).
        self.base: BaseBars | None = None
        # Where a book starts from first, when a market-data store is on (set by the app):
        # the store's writer's own fold, so the wire's bars are the kept ones exactly.
        self.kept: KeptCheckpoint | None = None
        # Clients owed a fresh `bars` once their pending gap snapshot went out.
        self._after_gap: dict[str, set[Connection]] = {}
        # The (ticker, interval) streams each client asked for, attached or still waiting
        # for their book (only clients that asked for bars are here).
        self._streams: dict[Connection, set[tuple[str, str]]] = {}
        self.built = 0  # books built (first or again), for health and tests
        self.from_checkpoint = 0  # ... of which from a shared checkpoint
        self.from_kept = 0  # ... of which from the market-data store's fold
        self.bar_messages = 0  # `bar` messages encoded (once each, whatever the audience)
        self.cancelled = 0  # builds stopped because nobody waited for them any more

    # -- clients ---------------------------------------------------------------------

    def attach_soon(self, client: Connection, ticker: str, intervals: Sequence[str]) -> None:
        """Give the client its `bars` and then every `bar` of these intervals: at once when
        the books are built, else when they are (without holding the subscribe up)."""
        if ticker not in client.tickers:
            return
        self._streams.setdefault(client, set()).update((ticker, i) for i in intervals)
        books = [self._book(ticker, i) for i in intervals]
        if all(book.state is not None for book in books):
            for book in books:
                self._attach(client, book)
            return
        for book in books:
            if book.state is None:
                book.waiters.add(client)
        self.host.spawn(self.attach(client, ticker, intervals))

    async def attach(self, client: Connection, ticker: str, intervals: Sequence[str]) -> None:
        for interval in intervals:
            while True:
                if client.closed or ticker not in client.tickers:
                    return  # gone, or unsubscribed meanwhile: no book for it
                # The current book: one whose build was cancelled (nobody waited for
                # it) is gone from `books`, and this makes a new one.
                book = self._book(ticker, interval)
                if book.state is not None:
                    break
                book.waiters.add(client)
                ready = book.ready
                if ready is None or ready.done():
                    self.rebuild(book)
                    ready = book.ready
                assert ready is not None
                await asyncio.shield(ready)
            book.waiters.discard(client)
            # A first `bars` is big (up to KEPT bars): wait for room after the last one.
            if client.backed_up() and not await client.writable():
                return
            if self.books.get(ticker, {}).get(interval) is book and ticker in client.tickers:
                self._attach(client, book)

    def _attach(self, client: Connection, book: Book) -> None:
        if client in book.subscribers:
            return
        book.subscribers.add(client)
        client.send_frame(*book.bars_message(), bars_key(book.ticker, book.interval))
        pending = client.gap_pending
        if pending is not None and book.ticker in pending:
            self.after_gap(client, book.ticker)

    def detach(self, client: Connection, ticker: str) -> None:
        streams = self._streams.get(client)
        if streams is not None:
            streams.difference_update([s for s in streams if s[0] == ticker])
            if not streams:
                del self._streams[client]
        books = self.books.get(ticker, {})
        for interval, book in list(books.items()):
            book.subscribers.discard(client)
            book.waiters.discard(client)
            if book.state is None and not book.subscribers and not book.waiters:
                # Nobody waits for this build any more: stop it, and the book with it.
                del books[interval]
                if book.building is not None:
                    book.building.cancel()
                    self.cancelled += 1
        if not books:
            self.books.pop(ticker, None)
        waiting = self._after_gap.get(ticker)
        if waiting is not None:
            waiting.discard(client)
            if not waiting:
                del self._after_gap[ticker]

    def after_gap(self, client: Connection, ticker: str) -> None:
        """The client's next update of `ticker` goes out as a gap snapshot: its bars follow
        it afresh (deltas meanwhile would mean nothing to a client that resets there)."""
        if any(client in b.subscribers for b in self.books.get(ticker, {}).values()):
            self._after_gap.setdefault(ticker, set()).add(client)

    def streams_of(self, client: Connection) -> set[tuple[str, str]]:
        """The (ticker, interval) pairs the client streams bars of (or soon will)."""
        return self._streams.get(client, set())

    def stats(self) -> dict[str, int]:
        """For /api/ws/health: books held, built (of which from a shared checkpoint),
        builds cancelled (nobody waited for them any more), and `bar` messages encoded."""
        return {
            "books": sum(len(books) for books in self.books.values()),
            "built": self.built,
            "from_checkpoint": self.from_checkpoint,
            "from_kept": self.from_kept,
            "cancelled": self.cancelled,
            "bar_messages": self.bar_messages,
        }

    def live_bars(self, ticker: str, interval: str) -> list[tuple[int, str]] | None:
        """(time, REST bar text) of the book's bars, for /api/history to merge; None when
        the process keeps no (built) book of them."""
        book = self.books.get(ticker, {}).get(interval)
        if book is None or book.state is None:
            return None
        return book.state.rest_bars()

    # -- the stream --------------------------------------------------------------------

    def on_update(self, ticker: str, seq: int, update: dict[str, Any]) -> None:
        """A relayed update (called by the hub, in seq order, never awaits)."""
        waiting = self._after_gap.get(ticker)
        for book in self.books[ticker].values():
            state = book.state
            if state is None or seq <= state.seq:
                continue  # being built (it folds what it missed), or already in
            if state.seq and seq != state.seq + 1:
                self.rebuild(book)  # updates went by unseen
                continue
            changed = state.apply(seq, update)
            if len(changed) > 1 or seq - book.written >= CHECKPOINT_EVERY:
                self._save(book)
            if not changed or not book.subscribers:
                continue
            self.bar_messages += len(changed)
            frames = []
            for bar in changed:
                text = bar_message(ticker, book.interval, seq, bar)
                frames.append(
                    (text, text_frame(text.encode()), bar_key(ticker, book.interval, bar))
                )
            for client in book.subscribers:
                if waiting and client in waiting:
                    continue
                for text, frame, key in frames:
                    client.send_frame(text, frame, key)
        if waiting:
            self._flush_after_gap(ticker, waiting)

    def _flush_after_gap(self, ticker: str, waiting: set[Connection]) -> None:
        for client in list(waiting):
            pending = client.gap_pending
            if pending is not None and ticker in pending:
                continue  # its gap snapshot has not gone out yet
            waiting.discard(client)
            for book in self.books.get(ticker, {}).values():
                if client in book.subscribers and book.state is not None:
                    client.send_frame(*book.bars_message(), bars_key(ticker, book.interval))
        if not waiting:
            self._after_gap.pop(ticker, None)

    def reset(self, ticker: str) -> None:
        """The ticker's seq space changed (a publisher restarted it): build its books again."""
        for book in self.books.get(ticker, {}).values():
            self.rebuild(book)

    def reset_all(self) -> None:
        """A new epoch: every book's seq space is gone."""
        for ticker in list(self.books):
            self.reset(ticker)

    def drop(self, ticker: str) -> None:
        """The hub stopped holding the ticker: its books go."""
        self.books.pop(ticker, None)
        self._after_gap.pop(ticker, None)

    # -- building ----------------------------------------------------------------------

    def _book(self, ticker: str, interval: str) -> Book:
        books = self.books.setdefault(ticker, {})
        book = books.get(interval)
        if book is None:
            book = books[interval] = Book(ticker, interval)
            self.rebuild(book)
        return book

    def rebuild(self, book: Book) -> None:
        book.generation += 1
        if book.state is None and book.ready is not None and not book.ready.done():
            return  # a build is under way: it starts again when it sees the generation
        book.state = None
        book._frame = None
        book.ready = asyncio.get_running_loop().create_future()
        book.building = self.host.spawn(self._run_build(book, book.ready))

    async def _run_build(self, book: Book, ready: asyncio.Future[None]) -> None:
        try:
            while True:
                generation = book.generation
                try:
                    state = await self._build(book.ticker, book.interval)
                except Exception:
                    log.exception("building %s %s bars failed", book.ticker, book.interval)
                    run, _ = self._run(book.ticker, Known({}, (0, 0)))
                    state = BarBook.scratch(book.ticker, book.interval, [], run)
                if self.books.get(book.ticker, {}).get(book.interval) is not book:
                    return  # dropped meanwhile
                if generation == book.generation:
                    break
                # The seq space changed while it was built (a restart, a new epoch).
            book.state = state
            book._frame = None
            book.written = state.seq
            self.built += 1
            message = book.bars_message()  # a rebuild: everyone afresh
            for client in list(book.subscribers):
                client.send_frame(*message, bars_key(book.ticker, book.interval))
        finally:
            book.building = None
            if not ready.done():
                ready.set_result(None)

    async def _build(self, ticker: str, interval: str) -> BarBook:
        """A book as of the newest update this process knows: from the shared checkpoint
        when one reaches the updates at hand, else from the source's history."""
        host = self.host
        epoch = host.epochs.epoch_for(ticker)
        known = await self._known(ticker)
        kept = await self._kept(ticker, interval, epoch)
        if kept is not None:
            run, reached = self._run(ticker, known, after=kept.seq)
            if reached:
                for seq, update in run:
                    kept.apply(seq, update)
                self.from_kept += 1
                return kept
        saved = await self._checkpoint(ticker, interval, epoch)
        base: list[dict[str, Any]] | None = None
        for _ in range(BUILD_ATTEMPTS):
            if saved is not None:
                run, reached = self._run(ticker, known, after=saved.seq)
                if reached:
                    for seq, update in run:
                        saved.apply(seq, update)
                    self.from_checkpoint += 1
                    return saved
            if base is None:
                base = await self._base(ticker, interval)
            run, _ = self._run(ticker, known)
            state = BarBook.scratch(ticker, interval, base, run)
            oldest = run[0][0] if run else 0
            created = await self._write(ticker, interval, epoch, state, create=oldest)
            if created is not False:
                # Updates that came while the store answered are in the ring by now.
                run, reached = self._run(ticker, known, after=state.seq or None)
                for seq, update in run if reached or not state.seq else ():
                    state.apply(seq, update)
                return state
            # Another process published one meanwhile: take it, as every process must.
            saved = await self._checkpoint(ticker, interval, epoch)
            known = await self._known(ticker)
        run, _ = self._run(ticker, known)
        return BarBook.scratch(ticker, interval, base or [], run)

    async def _known(self, ticker: str) -> Known:
        """The updates the shared history holds (seq -> update), and the newest quote."""
        host = self.host
        known: dict[int, dict[str, Any]] = {}
        if not host.epochs.restarted(ticker):  # else the shared history is another seq space
            try:
                recent = await host.store.recent(ticker)
            except StoreUnavailable:
                recent = []
            for raw in recent:
                try:
                    _, seq, update = protocol.read_update(raw)
                except protocol.BadUpdate:
                    continue
                known[seq] = update
        shared = (min(known), max(known)) if known else (0, 0)
        found = await host.updates.latest_update(ticker)
        if found is not None:
            newest = found[0].get("seq")
            if isinstance(newest, int) and not isinstance(newest, bool):
                known.setdefault(newest, found[0])
        return Known(known, shared)

    def _run(
        self, ticker: str, known: Known, after: int | None = None
    ) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        """The unbroken run of updates ending at the newest one known (the shared history,
        this process's resume ring, its latest), oldest first; with `after`, only those
        after it, and whether the run reaches back to it.

        A seq the shared history skips, between two it holds, was never published (a
        writer killed between taking the seq and publishing it): the run goes on over
        it, as the store's writer folds on over it (kept/keeper.py), since each update
        carries the day's cumulative volume. Stopping there would build the book from
        the source's bars and count nothing of the first update after it."""
        host = self.host
        ring = host.history.get(ticker)
        frames = {entry.seq: entry.frame for entry in ring.entries} if ring is not None else {}
        latest = host.updates.by_ticker.get(ticker)
        newest = max([*known.updates, *frames, latest.seq if latest is not None else 0], default=0)
        if after is not None and newest <= after:
            return [], True
        lowest, highest = known.shared
        out: list[tuple[int, dict[str, Any]]] = []
        seq = newest
        while seq > 0 and (after is None or seq > after):
            update = known.updates.get(seq)
            if update is None and latest is not None and latest.seq == seq:
                update = latest.update
            if update is None and seq in frames:
                try:
                    _, _, update = protocol.read_update(frame_payload(frames[seq]))
                except protocol.BadUpdate:
                    update = None
            if update is None:
                if lowest < seq < highest:
                    seq -= 1  # never published: nothing to fold
                    continue
                break
            out.append((seq, update))
            seq -= 1
        out.reverse()
        return out, after is not None and seq <= after

    async def _base(self, ticker: str, interval: str) -> list[dict[str, Any]]:
        if self.base is None:
            return []
        try:
            return await self.base(ticker, interval)
        except Exception as exc:  # no history (relay, unknown, upstream down): updates only
            log.info(
                "no history bars for %s %s (%s): bars from updates only", ticker, interval, exc
            )
            return []

    async def _kept(self, ticker: str, interval: str, epoch: str) -> BarBook | None:
        if self.kept is None:
            return None
        try:
            found = await self.kept(ticker, interval)
        except Exception as exc:  # the store away: the other ways still work
            log.info("no kept bars for %s %s: %s", ticker, interval, exc)
            return None
        if found is None or found[0] != epoch:
            return None
        return BarBook.from_checkpoint(ticker, interval, found[1])

    async def _checkpoint(self, ticker: str, interval: str, epoch: str) -> BarBook | None:
        try:
            found = await self.host.store.get_bars(ticker, interval)
        except StoreUnavailable:
            return None
        if found is None or found[0] != epoch:
            return None
        return BarBook.from_checkpoint(ticker, interval, found[1])

    async def _write(
        self, ticker: str, interval: str, epoch: str, state: BarBook, *, create: int | None
    ) -> bool | None:
        """Publish the book's state (create: only unless a checkpoint usable from seq
        `create` exists). False: not written; None: the store is away."""
        try:
            return await self.host.store.put_bars(
                ticker,
                interval,
                epoch,
                state.seq,
                state.checkpoint(),
                CHECKPOINT_TTL,
                create=create,
            )
        except StoreUnavailable:
            return None

    def _save(self, book: Book) -> None:
        state = book.state
        if state is None or book.writing:
            return
        book.writing = True
        seq = book.written = state.seq
        epoch = self.host.epochs.epoch_for(book.ticker)
        text = state.checkpoint()

        async def write() -> None:
            try:
                await self.host.store.put_bars(
                    book.ticker, book.interval, epoch, seq, text, CHECKPOINT_TTL, create=None
                )
            except StoreUnavailable:
                pass
            finally:
                book.writing = False

        self.host.spawn(write())
