"""The REST answers the process remembers: a byte-budgeted TTL cache with single flight.

One object per process (`Services.answers`), shared by every route that asks the source
something on a client's behalf (history, "can you quote X?"). Three properties make the
REST API useless as an amplifier:

- **Bounded in bytes.** Each entry is charged its stored size (history answers are kept
  as the encoded JSON body, so the size is exact and a hit costs no re-serialisation)
  plus a fixed overhead for the key and bookkeeping; past `max_bytes` the least recently
  used entries go. An entry bigger than an eighth of the budget is served but not kept,
  so one answer can never flush the rest.
- **Single flight.** Concurrent requests for the same key share one source call. The
  call runs in its own task, shielded from any one caller's cancellation (a client that
  hangs up does not fail the others); if it raises, every waiter gets that same error,
  and nothing is stored.
- **Negative answers are answers.** The loader decides each answer's TTL, so "unknown
  ticker" is kept too (shorter), and asking again does not reach the source.

The process holds one `AnswerCaches`: an `AnswerCache` per kind of answer (the first
item of the key: `history`, `symbols`, `can_quote`), each with its own share of
`rest_cache_bytes` (KIND_SHARES). A flood of one kind (distinct symbol searches, made-up
tickers looked up) evicts only its own kind: it can never push history out.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")

# What an entry costs besides its payload: the entry and the OrderedDict's node and slot
# (~190 bytes, tracemalloc) plus the key tuple and its strings (~340 for a history key).
ENTRY_OVERHEAD = 512
# An answer bigger than max_bytes / this is served but not stored.
MAX_ENTRY_FRACTION = 8


@dataclass(frozen=True, slots=True)
class Fill(Generic[T]):
    """What a loader returns: the value, its payload size in bytes, and how long it stays
    (seconds; 0 or less: use it for the waiting callers, do not keep it)."""

    value: T
    size: int
    ttl: float


@dataclass(slots=True)
class _Entry:
    value: object
    size: int
    expires: float


class AnswerCache:
    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._flights: dict[Hashable, asyncio.Task[Fill[Any]]] = {}
        self.bytes = 0
        # Counters, read by /metrics and /api/ws/health.
        self.hits = 0
        self.misses = 0
        self.joins = 0  # callers that shared a call already in flight
        self.evictions = 0  # entries dropped for the byte budget
        self.too_big = 0  # answers served but not stored

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def in_flight(self) -> int:
        return len(self._flights)

    def get(self, key: Hashable) -> tuple[bool, object]:
        """(True, value) for a fresh entry (now the most recently used), else (False, None)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry.expires <= self._clock():
            self._drop(key)
            return False, None
        self._entries.move_to_end(key)
        return True, entry.value

    def put(self, key: Hashable, value: object, size: int, ttl: float) -> bool:
        """Store an answer for `ttl` seconds; False when it is not kept (no TTL, too big)."""
        if key in self._entries:
            self._drop(key)
        if ttl <= 0:
            return False
        charged = size + ENTRY_OVERHEAD
        if charged > self.max_bytes // MAX_ENTRY_FRACTION:
            self.too_big += 1
            return False
        self._entries[key] = _Entry(value, charged, self._clock() + ttl)
        self.bytes += charged
        while self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.size
            self.evictions += 1
        return True

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[Fill[T]]]) -> T:
        """The cached answer for `key`, or the one `load()` gives, shared with every
        concurrent caller of the same key. Raises what `load()` raised (nothing stored)."""
        found, value = self.get(key)
        if found:
            self.hits += 1
            return cast(T, value)
        flight = self._flights.get(key)
        if flight is None:
            self.misses += 1
            flight = asyncio.ensure_future(self._fly(key, load))
            self._flights[key] = flight
            flight.add_done_callback(_retrieve)
        else:
            self.joins += 1
        fill = await asyncio.shield(flight)
        return cast(T, fill.value)

    async def _fly(self, key: Hashable, load: Callable[[], Awaitable[Fill[T]]]) -> Fill[T]:
        try:
            fill = await load()
        finally:
            self._flights.pop(key, None)
        self.put(key, fill.value, fill.size, fill.ttl)
        return fill

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self.bytes -= entry.size

    def stats(self) -> dict[str, int]:
        return {
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "entries": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "single_flight_joins": self.joins,
            "evictions": self.evictions,
        }


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Every waiter may have gone (clients hung up): mark the error as seen so asyncio does
    # not log "exception was never retrieved" for a failure already answered or unwanted.
    if not task.cancelled():
        task.exception()


# Each kind's share of the budget, in eighths: history bodies are the big, valuable ones;
# symbol searches and "can you quote X?" answers are small and many.
KIND_SHARES = {"history": 6, "symbols": 1, "can_quote": 1}
_SHARE_UNIT = sum(KIND_SHARES.values())


class AnswerCaches:
    """The process's answer caches, one per kind; the key's first item names the kind
    (`("history", source, ticker, interval, range)`). Counters and stats add the kinds
    up; `stats()["kinds"]` has each one's."""

    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.kinds = {
            kind: AnswerCache(max_bytes * share // _SHARE_UNIT, clock=clock)
            for kind, share in KIND_SHARES.items()
        }

    def of(self, key: tuple[Hashable, ...]) -> AnswerCache:
        kind = key[0]
        cache = self.kinds.get(kind) if isinstance(kind, str) else None
        if cache is None:
            raise ValueError(f"no answer cache for kind {kind!r}: add it to KIND_SHARES")
        return cache

    def get(self, key: tuple[Hashable, ...]) -> tuple[bool, object]:
        return self.of(key).get(key)

    def put(self, key: tuple[Hashable, ...], value: object, size: int, ttl: float) -> bool:
        return self.of(key).put(key, value, size, ttl)

    async def get_or_load(
        self, key: tuple[Hashable, ...], load: Callable[[], Awaitable[Fill[T]]]
    ) -> T:
        return await self.of(key).get_or_load(key, load)

    def _total(self, name: str) -> int:
        return sum(int(getattr(cache, name)) for cache in self.kinds.values())

    def __len__(self) -> int:
        return sum(len(cache) for cache in self.kinds.values())

    @property
    def bytes(self) -> int:
        return self._total("bytes")

    @property
    def hits(self) -> int:
        return self._total("hits")

    @property
    def misses(self) -> int:
        return self._total("misses")

    @property
    def joins(self) -> int:
        return self._total("joins")

    @property
    def evictions(self) -> int:
        return self._total("evictions")

    @property
    def too_big(self) -> int:
        return self._total("too_big")

    @property
    def in_flight(self) -> int:
        return self._total("in_flight")

    def stats(self) -> dict[str, object]:
        return {
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "entries": len(self),
            "hits": self.hits,
            "misses": self.misses,
            "single_flight_joins": self.joins,
            "evictions": self.evictions,
            "kinds": {kind: cache.stats() for kind, cache in self.kinds.items()},
        }
