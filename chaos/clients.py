"""Clients that behave like ours: resume on reconnect, jittered backoff, and keep score.

Each client keeps, per ticker, the last `seq` it saw and counts what a user would care
about: updates that never arrived without the server saying so (`missing`), updates seen
twice (`duplicates`), and gaps the server did report (a `snapshot` with `gap`, or
`conflated`): those are honest, not lost.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# Like the dashboard: 2, 4, 8 s between attempts, each with jitter, so that a crowd
# that lost its server at the same instant does not come back at the same instant.
BACKOFF_S = (2.0, 4.0, 8.0)


@dataclass
class Score:
    updates: int = 0
    duplicates: int = 0
    missing: int = 0  # seq jumps nothing explained: lost
    reported: int = 0  # seq jumps a gap snapshot or `conflated` announced
    gap_snapshots: int = 0
    connects: int = 0
    handshake_failures: int = 0
    shutdown_notices: int = 0
    errors: int = 0
    closes: Counter[int] = field(default_factory=Counter)

    def add(self, other: Score) -> None:
        for name in (
            "updates",
            "duplicates",
            "missing",
            "reported",
            "gap_snapshots",
            "connects",
            "handshake_failures",
            "shutdown_notices",
            "errors",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.closes.update(other.closes)


class FeedClient:
    def __init__(
        self,
        url: str,
        tickers: list[str],
        rng: random.Random,
        *,
        open_timeout: float = 20.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.tickers = tickers
        self.rng = rng
        self.open_timeout = open_timeout
        self.headers = headers  # e.g. Authorization for a server with auth on
        self.score = Score()
        self.last: dict[str, int] = {}
        self.epochs: dict[str, str] = {}
        self._explained: set[str] = set()
        self.connected = False
        self.subscribed_at = 0.0  # monotonic time of the latest `subscribed`
        self.last_update_at = 0.0
        self.mark_at = 0.0
        self.first_after_mark: float | None = None
        self.published_after_ms = 0.0  # epoch ms; see first_published_after
        self.first_published_after: float | None = None
        self.stopping = False
        self.ws: ClientConnection | None = None

    def mark(self) -> None:
        """Start timing: the next update's arrival is recorded."""
        self.mark_at = time.monotonic()
        self.first_after_mark = None

    def watch_published_after(self, wall_ms: float) -> None:
        """Record the arrival of the first update *published* after `wall_ms`."""
        self.published_after_ms = wall_ms
        self.first_published_after = None

    async def run(self) -> None:
        attempt = 0
        retry_after: float | None = None
        while not self.stopping:
            if retry_after is not None or attempt:
                if retry_after is not None:
                    delay = retry_after + self.rng.uniform(0, 2.0)
                else:
                    base = BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)]
                    delay = base * self.rng.uniform(0.5, 1.5)
                await asyncio.sleep(delay)
            retry_after = None
            try:
                ws = await connect(
                    self.url + "/ws",
                    additional_headers=self.headers,
                    open_timeout=self.open_timeout,
                    max_size=2**20,
                    ping_interval=None,
                    compression=None,
                )
            except (OSError, TimeoutError, ConnectionClosed, Exception):
                self.score.handshake_failures += 1
                attempt += 1
                continue
            attempt = 0
            self.score.connects += 1
            self.ws = ws
            try:
                await ws.send(json.dumps(self._subscribe()))
                self.connected = True
                async for raw in ws:
                    notice = self._on_message(raw)
                    if notice is not None:
                        retry_after = notice
            except ConnectionClosed:
                pass
            finally:
                self.connected = False
                self.ws = None
                if ws.close_code is not None:
                    self.score.closes[ws.close_code] += 1
            if not self.stopping and retry_after is None:
                attempt = 1

    async def stop(self) -> None:
        self.stopping = True
        ws = self.ws
        if ws is not None:
            await ws.close()

    def _subscribe(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"action": "subscribe", "tickers": self.tickers}
        resume = {
            t: {"seq": self.last[t], "epoch": self.epochs[t]}
            for t in self.tickers
            if t in self.last and t in self.epochs
        }
        if resume:
            msg["resume"] = resume
        return msg

    def _on_message(self, raw: str | bytes) -> float | None:
        msg = json.loads(raw)
        kind = msg.get("type")
        if kind == "price_update":
            self._update(msg["ticker"], msg["seq"], msg.get("timestamp", 0.0))
        elif kind == "snapshot":
            self._snapshot(msg)
        elif kind == "subscribed":
            self.epochs.update(msg.get("epochs", {}))
            self.subscribed_at = time.monotonic()
        elif kind == "conflated":
            self._explained.add(msg["ticker"])
        elif kind == "server_shutdown":
            self.score.shutdown_notices += 1
            return float(msg.get("retry_after_ms", 2500)) / 1000
        elif kind == "error":
            self.score.errors += 1
        return None

    def _update(self, ticker: str, seq: int, published_ms: float) -> None:
        now = time.monotonic()
        self.score.updates += 1
        self.last_update_at = now
        if self.mark_at and self.first_after_mark is None:
            self.first_after_mark = now
        if (
            self.published_after_ms
            and self.first_published_after is None
            and published_ms > self.published_after_ms
        ):
            self.first_published_after = now
        last = self.last.get(ticker)
        if last is not None and seq <= last:
            self.score.duplicates += 1
            return
        if last is not None and seq > last + 1:
            if ticker in self._explained:
                self.score.reported += seq - last - 1
            else:
                self.score.missing += seq - last - 1
        self._explained.discard(ticker)
        self.last[ticker] = seq

    def _snapshot(self, msg: dict[str, Any]) -> None:
        ticker, seq = msg["ticker"], msg["seq"]
        if "epoch" in msg:
            self.epochs[ticker] = msg["epoch"]
        last = self.last.get(ticker)
        if msg.get("gap"):
            self.score.gap_snapshots += 1
            if last is not None and seq > last:
                self.score.reported += seq - last - 1
            # A gap starts a new history: whatever seq it names is where we are.
            self.last[ticker] = seq
            self._explained.discard(ticker)
            return
        if last is None:
            self.last[ticker] = seq
        elif seq > last:
            # A plain snapshot after we had a history: the updates in between were
            # skipped without the server saying so.
            self.score.missing += seq - last - 1
            self.last[ticker] = seq


def total(clients: list[FeedClient]) -> Score:
    out = Score()
    for client in clients:
        out.add(client.score)
    return out


async def start_all(
    clients: list[FeedClient], *, batch: int = 200, timeout: float = 120.0
) -> list[asyncio.Task[None]]:
    """Start every client in batches and wait until each holds its subscriptions."""
    tasks: list[asyncio.Task[None]] = []
    for i in range(0, len(clients), batch):
        group = clients[i : i + batch]
        tasks.extend(asyncio.create_task(c.run()) for c in group)
        await wait_until(lambda g=group: all(c.subscribed_at for c in g), timeout)
    return tasks


async def stop_all(clients: list[FeedClient], tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())
