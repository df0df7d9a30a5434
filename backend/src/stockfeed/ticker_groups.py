"""Ticker groups: a deployment's tickers split over groups of processes, so that a process
reads from the broker only the tickers of its own group (docs/scaling.md#ticker-groups).

`STOCKFEED_TICKER_GROUP=K/N` makes a process group K of N. A ticker belongs to the group
that nginx's `hash $key;` picks for it among N servers of equal weight: the key's CRC-32,
`(crc32 >> 16) & 0x7fff`, modulo N (ngx_http_upstream_hash_module, the Cache::Memcached
expression; its first try, which is the only one while no server is marked failed, so
the example configuration sets `max_fails=0`). One `hash` rule at the load balancer then
sends every ticker's clients to the processes of its group (deploy/nginx/ticker-groups.conf).

A request for a ticker of another group is refused (`wrong_group`), never served: serving
it would make this process read that ticker too. The refusal names a `route` key that the
load balancer hashes to the right group, for clients that cannot be routed by the ticker
(`/ws` with many tickers: one connection per group, `/ws?route=KEY`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cache

MAX_GROUPS = 64


class BadTickerGroup(ValueError):
    """The setting is not `K/N` with 1 <= K <= N <= MAX_GROUPS."""


def group_of(key: str, count: int) -> int:
    """The group (1-based) nginx's `hash` sends `key` to among `count` servers."""
    return ((zlib.crc32(key.encode()) >> 16) & 0x7FFF) % count + 1


@cache
def route_key(group: int, count: int) -> str:
    """A short key that hashes to `group` of `count` (`/ws?route=KEY`): the first of
    `g{group}-0`, `g{group}-1`, ... that does (about `count` tries)."""
    i = 0
    while group_of(f"g{group}-{i}", count) != group:
        i += 1
    return f"g{group}-{i}"


@dataclass(frozen=True, slots=True)
class TickerGroup:
    """Group `index` of `count`: which tickers this process serves."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> TickerGroup:
        index, sep, count = text.strip().partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise BadTickerGroup(f"ticker group {text!r}: write K/N, e.g. 1/2")
        group = cls(int(index), int(count))
        if not 1 <= group.index <= group.count <= MAX_GROUPS:
            raise BadTickerGroup(
                f"ticker group {text!r}: 1 <= K <= N <= {MAX_GROUPS}, e.g. 1/2 and 2/2"
            )
        return group

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def serves(self, ticker: str) -> bool:
        """Whether `ticker` (normalised) belongs to this group."""
        return self.count == 1 or group_of(ticker, self.count) == self.index

    def elsewhere(self, ticker: str) -> tuple[str, str] | None:
        """For a ticker of another group: the refusal's message and its `route` key."""
        if self.serves(ticker):
            return None
        other = group_of(ticker, self.count)
        route = route_key(other, self.count)
        return (
            f"{ticker} is served by ticker group {other} of {self.count}, this process is"
            f" group {self}: connect by the ticker's name, or with ?route={route}",
            route,
        )

    @property
    def route(self) -> str:
        """The key that routes to this group."""
        return route_key(self.index, self.count)
