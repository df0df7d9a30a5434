"""What a source needs and allows, declared up front.

Each source says, before it connects: whether it needs a key (and from which variables),
how many connections one key may hold, how many symbols one connection may carry (in all,
and per event kind: Alpaca's free plan caps trades and quotes at 30 but not bars), which
asset classes it quotes, how far behind real time its data is, which event kinds it
emits, and what its vendor's terms allow. The factory refuses a configuration a source
cannot satisfy before anything starts (a missing key), the failover chain reads
`asset_classes` to pick a source per ticker, and a capacity-limited plugin shrinks its set
to these numbers instead of opening a second socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from stockfeed.sources.events import EventKind

AssetClass = Literal["equity", "etf", "index", "crypto", "fx", "future"]
# What the vendor's terms allow of its data, as far as we could read them
# (docs/sources.md): "self-only" is the key holder's own use (and their team's under
# their licence), never redistribution; "none" for simulated or recorded data.
Redistribution = Literal["self-only", "unknown", "none"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    needs_key: bool
    # Environment variables the key comes from (the vendor's own convention).
    key_variables: tuple[str, ...] = ()
    # Stream connections one key may hold at once (None: no documented limit).
    connections_per_key: int | None = None
    # Symbols one connection may subscribe, in all and per event kind (None: no cap).
    symbols_per_connection: int | None = None
    symbols_per_kind: Mapping[EventKind, int | None] = field(
        default_factory=lambda: MappingProxyType({})
    )
    asset_classes: frozenset[AssetClass] = frozenset()
    delayed_s: int = 0  # seconds behind real time (900: a 15-minute delayed feed)
    event_kinds: frozenset[EventKind] = frozenset()
    redistribution: Redistribution = "unknown"
    # The vendor's own liveness message, when it has one, in seconds (Coinbase: 1).
    heartbeat_s: float | None = None
    history: bool = False  # has a REST history endpoint (/api/history)
    directory: bool = False  # has a symbol directory (/api/symbols)

    def symbol_limit(self, kind: EventKind) -> int | None:
        """How many symbols one connection may carry for `kind` (None: no cap)."""
        per_kind = self.symbols_per_kind.get(kind)
        caps = [c for c in (per_kind, self.symbols_per_connection) if c is not None]
        return min(caps) if caps else None

    def quotes(self, asset_class: str) -> bool:
        """Whether the source quotes this asset class at all (an empty set: anything)."""
        return not self.asset_classes or asset_class in self.asset_classes


SUMMARY_ONLY = Capabilities(needs_key=False, event_kinds=frozenset({"summary"}))
