"""The hub's counters: one object, injected into the hub, read through one `snapshot`.

The broadcast path counts with plain integer increments on this object (once per
broadcast, connect or round, never per client per message); whoever else counts (the
admission check's refusals) does so through a method. `/metrics` (metrics.py) and
`/api/ws/health` (api/health.py) read the counters through `snapshot()` at scrape time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from stockfeed.fanout.connections import Connection
from stockfeed.protocol.codes import CloseCode


@dataclass(frozen=True, slots=True)
class StatsView:
    """The counters at one moment, with what the open connections add to them."""

    connections: int
    fast_path_connections: int
    connections_opened: int
    relayed: int
    rejected: int
    duplicates: int
    fanned_out: int
    replayed: int
    gaps: int
    snapshots_sent: int
    statuses_sent: int
    heartbeats_sent: int
    conflated: int
    slow_closed: int
    evicted: int
    refused: dict[str, int]


@dataclass(slots=True)
class HubStats:
    """What the hub and its parts count, for /metrics and health."""

    connections_opened: int = 0
    relayed: int = 0  # updates received from the broker and relayed
    rejected: int = 0  # broker messages that break the contract
    duplicates: int = 0  # updates whose seq was already relayed
    fanned_out: int = 0  # price updates handed to client connections
    replayed: int = 0
    gaps: int = 0
    snapshots_sent: int = 0
    statuses_sent: int = 0
    heartbeats_sent: int = 0
    slow_closed: int = 0
    evicted: int = 0  # lingering tickers dropped early to make room for a new one
    conflated_gone: int = 0  # skipped updates of clients already disconnected
    # Refusals by error code (ticker_limit, new_ticker_rate, subscription_limit...),
    # counted by whoever refuses.
    refused: Counter[str] = field(default_factory=Counter)

    def refuse(self, code: str) -> None:
        self.refused[code] += 1

    def connected(self) -> None:
        self.connections_opened += 1

    def disconnected(self, client: Connection) -> None:
        self.conflated_gone += client.conflated
        if client.close_code == CloseCode.SLOW_CONSUMER:
            self.slow_closed += 1

    def snapshot(self, clients: Collection[Connection]) -> StatsView:
        """The counters now; `clients` (the open connections) add their own conflation
        and the fast-path count."""
        conflated = self.conflated_gone
        fast = 0
        for client in clients:
            conflated += client.conflated
            fast += client.fast_path
        return StatsView(
            connections=len(clients),
            fast_path_connections=fast,
            connections_opened=self.connections_opened,
            relayed=self.relayed,
            rejected=self.rejected,
            duplicates=self.duplicates,
            fanned_out=self.fanned_out,
            replayed=self.replayed,
            gaps=self.gaps,
            snapshots_sent=self.snapshots_sent,
            statuses_sent=self.statuses_sent,
            heartbeats_sent=self.heartbeats_sent,
            conflated=conflated,
            slow_closed=self.slow_closed,
            evicted=self.evicted,
            refused=dict(sorted(self.refused.items())),
        )
