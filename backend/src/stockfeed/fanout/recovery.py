"""Getting clients back in step: resumes, backfills and seq restarts.

- A resume (`subscribe` with a resume point) replays what the client missed from the
  ticker's resume ring, else from the shared store's recent history (a process that was
  not listening while the client was away), else it becomes a gap snapshot.
- A seq jump on the broker (its subscription was down while the updater published)
  holds the clients that missed updates and backfills them from the store's history,
  or sends them a gap snapshot: never a silent jump in `seq`.
- A seq that goes back (a publisher restarted its count) starts a new epoch for the
  ticker and sends its clients a gap snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from stockfeed import protocol
from stockfeed.fanout.bar_feed import BarFeed
from stockfeed.fanout.connections import Connection
from stockfeed.fanout.epochs import Epochs
from stockfeed.fanout.frames import text_frame
from stockfeed.fanout.resume import Entry, History, ResumePoint, replay_after
from stockfeed.fanout.stats import HubStats
from stockfeed.shared import SharedStore, StoreUnavailable

log = logging.getLogger(__name__)


class Recovery:
    def __init__(
        self,
        *,
        store: SharedStore,
        history: History,
        epochs: Epochs,
        stats: HubStats,
        bars: BarFeed,
        subscribers: Mapping[str, set[Connection]],
        spawn: Callable[[Coroutine[Any, Any, None], str | None], asyncio.Future[None]],
    ) -> None:
        self.store = store
        self.history = history
        self.epochs = epochs
        self.stats = stats
        self.bars = bars
        self.subscribers = subscribers
        self.spawn = spawn

    def backfill(self, ticker: str, seq: int, subscribers: set[Connection]) -> None:
        """Updates went by unseen: the broker's subscription was down (e.g. Redis was
        restarting) while the updater already published again. Hold the clients that
        missed them, replay them from the shared history, or send a gap snapshot when the
        history lacks them (never a silent jump in `seq`)."""
        behind = [
            c
            for c in subscribers
            # A held client (its subscribe or a fill under way) is checked for jumps
            # when it is released (release).
            if c.last_seq.get(ticker, seq) < seq - 1 and not c.is_held_for_subscribe(ticker)
        ]
        if not behind:
            return
        for client in behind:
            client.hold(ticker)
        self.spawn(self._fill(ticker, seq, behind), f"hub-fill-{ticker}")

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
                # `last < oldest_seen`: the seq went back meanwhile (seq_restarted); the
                # history may be of the old count (and has no frames that far back).
                if missed is None or reached < seq - 1 or last < oldest_seen:
                    # Not all of what went by is in the history (it may also end before
                    # the jump): a gap snapshot, never a silent jump in seq.
                    client.gap_next(ticker, self.epochs.epoch_for(ticker))
                    self.bars.after_gap(client, ticker)
                    self.stats.gaps += 1
                    continue
                for entry in missed:
                    client.replay(ticker, entry)
                self.stats.replayed += len(missed)
        finally:
            self.release(ticker, clients)

    def release(self, ticker: str, clients: Sequence[Connection]) -> None:
        """Send what the clients held since their subscribe or fill began. What arrived
        meanwhile may itself jump in seq (the broker skipped updates again; backfill
        leaves held clients alone): from that jump on they stay held, and it is filled
        in turn, so a jump never goes out silently."""
        again: dict[int, list[Connection]] = {}
        for client in clients:
            jump = client.release_to_jump(ticker)
            if jump is not None:
                again.setdefault(jump, []).append(client)
        for jump, behind in again.items():
            self.spawn(self._fill(ticker, jump, behind), None)

    def seq_restarted(self, ticker: str, seq: int, update: dict[str, Any] | None) -> None:
        """A publisher started `seq` again: new epoch for the ticker, gap for its clients."""
        restarts = self.epochs.restart(ticker)
        if restarts <= 3 or restarts % 100 == 0:
            # Repeated restarts mean two publishers with their own seq on one channel.
            log.warning(
                "seq of %s went back to %d (%d times): new epoch %s",
                ticker,
                seq,
                restarts,
                self.epochs.epoch_for(ticker),
            )
        self.history.clear(ticker)
        self.bars.reset(ticker)  # fresh `bars` follow the gap snapshot
        epoch = self.epochs.epoch_for(ticker)
        if update is None:  # unreadable: the next update is the gap snapshot
            for client in self.subscribers.get(ticker, ()):
                client.last_seq[ticker] = seq
                client.gap_next(ticker, epoch)
            return
        text = protocol.snapshot(update, gap=True, epoch=epoch)
        for client in self.subscribers.get(ticker, ()):
            client.last_seq[ticker] = seq
            client.send(text)
            self.stats.snapshots_sent += 1

    async def replay(self, client: Connection, ticker: str, point: ResumePoint) -> bool:
        """Replay what the client missed; False when that is not possible (gap)."""
        if point.epoch is not None and point.epoch != self.epochs.epoch_for(ticker):
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
        self.stats.replayed += len(entries)
        return True

    async def _replay_from_store(self, ticker: str, last_seq: int) -> list[Entry] | None:
        """The deployment's shared history (the updater keeps it): for a process that was
        not listening to this ticker while the client was away."""
        if self.epochs.restarted(ticker):
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
