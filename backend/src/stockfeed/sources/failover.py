"""A chain of sources (`--source alpaca,yfinance`): each ticker from the first source that
quotes it and is healthy, failed over one by one and brought back.

Per ticker, the chain picks its *active* member: the first in order that quotes the
ticker's asset class (its capabilities) and is not failing it. A member fails a ticker
when it reported a fatal error (a bad key: the whole member), left the ticker out for
capacity (a symbol limit), or says the ticker is stale (silent while its market is open,
or on an endpoint that failed); a summarising member (Yahoo) fails every ticker while it
is marked stale. When the active member fails a ticker, the ticker moves to the next
member that does not; once an earlier member has been good for the ticker for
`fail_back_after` seconds, it moves back.

Every member earlier than a ticker's active one keeps the ticker subscribed (that is how
it is seen to recover); the active one has it too; later ones do not. Only the active
member's events of a ticker reach the updater, each with that member's provenance
(`source`, `feed`, `delayed` on the wire). The updater's `seq` is per ticker whatever the
source, so it goes on unbroken through a failover and back; the day's volume stays the
first source's (sources/last_price.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from stockfeed.market_hours import MarketClock
from stockfeed.models import Bar
from stockfeed.sources.base import (
    Deliver,
    Emit,
    Provenance,
    Source,
    SourceError,
    UnknownTicker,
    Wanted,
)
from stockfeed.sources.budget import UpstreamBudget
from stockfeed.sources.capabilities import Capabilities
from stockfeed.sources.events import Event, Gap, SourceState, ticker_of
from stockfeed.sources.symbols import SymbolInfo
from stockfeed.tickers import asset_class

log = logging.getLogger(__name__)

# How often the chain looks again at who should carry each ticker (fail-back timing).
CHECK_INTERVAL = 1.0
# A member whose stream crashed (not a fatal report: a bug) is started again after this.
RESTART_AFTER = 5.0


@dataclass(slots=True)
class _Member:
    source: Source
    index: int
    state: SourceState | None = None
    ended: str | None = None  # why its stream stopped for good
    good_since: dict[str, float] = field(default_factory=dict)  # ticker -> monotonic
    wanted: frozenset[str] = frozenset()


class FailoverSource(Source):
    name: ClassVar[str] = "chain"
    simulated: ClassVar[bool] = False

    def __init__(
        self,
        members: Sequence[Source],
        *,
        clock: MarketClock | None = None,
        fail_back_after: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("a chain needs at least two sources")
        self.members = [_Member(source, i) for i, source in enumerate(members)]
        self.label = ",".join(m.name for m in members)
        self.clock = clock
        self.fail_back_after = fail_back_after
        self._monotonic = monotonic
        self.active: dict[str, int] = {}  # ticker -> index of the member carrying it
        self.switches = 0
        self._switch_log: list[dict[str, object]] = []
        self.capabilities = Capabilities(
            needs_key=any(m.capabilities.needs_key for m in members),
            asset_classes=frozenset().union(*(m.capabilities.asset_classes for m in members))
            if all(m.capabilities.asset_classes for m in members)
            else frozenset(),
            event_kinds=frozenset().union(*(m.capabilities.event_kinds for m in members)),
            history=any(m.capabilities.history for m in members),
            directory=any(m.capabilities.directory for m in members),
        )
        self._wanted: Wanted = frozenset
        # One budget of upstream calls made for clients, shared by the members (the
        # process's: services configures it).
        budgets = [getattr(m, "client_budget", None) for m in members]
        shared = next((b for b in budgets if isinstance(b, UpstreamBudget)), None)
        if shared is not None:
            self.client_budget = shared
            for member in members:
                if isinstance(getattr(member, "client_budget", None), UpstreamBudget):
                    member.client_budget = shared  # type: ignore[attr-defined]

    @property
    def provenance(self) -> Provenance:
        first = self.members[0].source
        return first.provenance

    # -- who carries what -----------------------------------------------------------------

    def _quotes(self, member: _Member, ticker: str) -> bool:
        return member.source.capabilities.quotes(asset_class(ticker))

    def _fails(self, member: _Member, ticker: str) -> bool:
        if member.ended is not None:
            return True
        state = member.state
        if state is None:
            return member.source.health.stale and member.source.health.last_tick_ms is not None
        return bool(state.fatal) or ticker in state.stale or ticker in state.limited

    def evaluate(self) -> list[tuple[str, int, int]]:
        """Bring each wanted ticker to the member that should carry it now; the moves made
        (ticker, from, to)."""
        now = self._monotonic()
        moves: list[tuple[str, int, int]] = []
        wanted = self._wanted()
        for ticker in list(self.active):
            if ticker not in wanted:
                del self.active[ticker]
        for ticker in wanted:
            candidates = [m for m in self.members if self._quotes(m, ticker)]
            if not candidates:
                continue
            for member in candidates:
                if self._fails(member, ticker):
                    member.good_since.pop(ticker, None)
                else:
                    member.good_since.setdefault(ticker, now)
            current = self.active.get(ticker)
            choice = current
            if current is None:
                ok = [m for m in candidates if not self._fails(m, ticker)]
                choice = (ok[0] if ok else candidates[0]).index
            else:
                here = self.members[current]
                if self._fails(here, ticker):
                    later = [
                        m for m in candidates if m.index > current and not self._fails(m, ticker)
                    ]
                    earlier = [
                        m for m in candidates if m.index < current and not self._fails(m, ticker)
                    ]
                    pick = earlier[:1] or later[:1]
                    if pick:
                        choice = pick[0].index
                for member in candidates:
                    if member.index >= (choice if choice is not None else current):
                        break
                    since = member.good_since.get(ticker)
                    if since is not None and now - since >= self.fail_back_after:
                        choice = member.index
                        break
            if choice is not None and choice != current:
                self.active[ticker] = choice
                if current is not None:
                    moves.append((ticker, current, choice))
        for member in self.members:
            member.wanted = frozenset(
                t for t, i in self.active.items() if member.index <= i and self._quotes(member, t)
            )
        for ticker, before, after in moves:
            self.switches += 1
            why = self._why(self.members[before], ticker)
            log.warning(
                "failover: %s now from %s (was %s: %s)",
                ticker,
                self.members[after].source.name,
                self.members[before].source.name,
                why,
            )
            self._switch_log.append(
                {
                    "ticker": ticker,
                    "from": self.members[before].source.name,
                    "to": self.members[after].source.name,
                    "why": why,
                    "at_ms": round(time.time() * 1000),
                }
            )
            del self._switch_log[:-20]
        return moves

    def _why(self, member: _Member, ticker: str) -> str:
        if member.ended is not None:
            return member.ended
        state = member.state
        if state is None:
            return "stale" if self._fails(member, ticker) else "recovered"
        if state.fatal:
            return state.fatal
        if ticker in state.limited:
            return f"left out ({state.message or 'capacity'})"
        if ticker in state.stale:
            return "stale: no data while its market is open"
        return "recovered"

    # -- the stream ---------------------------------------------------------------------

    async def run(self, wanted: Wanted, deliver: Deliver) -> None:
        self._wanted = wanted
        self.evaluate()
        async with asyncio.TaskGroup() as tasks:
            for member in self.members:
                tasks.create_task(self._run_member(member, deliver))
            tasks.create_task(self._check_loop())

    async def stream(self, wanted: Wanted, emit: Emit) -> None:
        async def deliver(_: Provenance, event: Event) -> None:
            await emit(event)

        await self.run(wanted, deliver)

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            self.evaluate()
            self.health.stale = all(
                self._fails(self.members[i], t) for t, i in self.active.items()
            ) and bool(self.active)

    async def _run_member(self, member: _Member, deliver: Deliver) -> None:
        source = member.source

        def member_wanted() -> frozenset[str]:
            return member.wanted

        async def forward(provenance: Provenance, event: Event) -> None:
            if isinstance(event, SourceState):
                member.state = event
                self.evaluate()
                await deliver(provenance, event)
                return
            if isinstance(event, Gap):
                # A report about the member (health shows it per source), whether or not
                # another member carried its tickers meanwhile.
                await deliver(provenance, event)
                return
            ticker = ticker_of(event)
            if ticker is not None and self.active.get(ticker) == member.index:
                if event_is_data(event):
                    self.health.ok()
                await deliver(provenance, event)

        while True:
            try:
                await source.run(member_wanted, forward)
            except Exception as exc:
                log.exception("source %s of the chain crashed: restarting it", source.name)
                member.ended = f"crashed ({type(exc).__name__})"
                self.evaluate()
                await asyncio.sleep(RESTART_AFTER)
                member.ended = None
                continue
            # A source's stream ends only when it cannot work (it said why).
            fatal = member.state.fatal if member.state is not None else None
            member.ended = fatal or f"{source.name} stopped"
            log.error("source %s of the chain stopped: %s", source.name, member.ended)
            self.evaluate()
            return

    # -- what the REST API asks ---------------------------------------------------------

    def _for(self, ticker: str) -> list[Source]:
        kind = asset_class(ticker)
        return [m.source for m in self.members if m.source.capabilities.quotes(kind)]

    async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        """From the first member that quotes the ticker and answers."""
        errors: list[Exception] = []
        for source in self._for(ticker):
            try:
                return await source.history(ticker, interval, range_)
            except (SourceError, UnknownTicker) as exc:
                errors.append(exc)
        if errors and all(isinstance(e, UnknownTicker) for e in errors):
            raise errors[0]
        if errors:
            raise SourceError(str(errors[-1]))
        raise UnknownTicker(f"no source of {self.label} quotes {ticker}")

    async def can_quote(self, ticker: str) -> bool | None:
        answers = []
        for source in self._for(ticker):
            answer = await source.can_quote(ticker)
            if answer:
                return True
            answers.append(answer)
        return None if None in answers else False

    async def search_symbols(self, query: str, limit: int) -> list[SymbolInfo]:
        found: dict[str, SymbolInfo] = {}
        failures: list[SourceError] = []
        for member in self.members:
            try:
                for info in await member.source.search_symbols(query, limit):
                    found.setdefault(info.symbol, info)
            except SourceError as exc:
                failures.append(exc)
        if not found and failures:
            raise failures[0]
        return list(found.values())[:limit]

    def describe_state(self) -> dict[str, object]:
        counts: dict[str, int] = {m.source.name: 0 for m in self.members}
        for index in self.active.values():
            counts[self.members[index].source.name] += 1
        moved = sorted((t, self.members[i].source.name) for t, i in self.active.items() if i > 0)
        return {
            "chain": [m.source.name for m in self.members],
            "tickers_by_source": counts,
            "failed_over": {t: name for t, name in moved[:100]},
            "switches": self.switches,
            "recent_switches": list(self._switch_log),
            "members": {
                m.source.name: {"ended": m.ended, **m.source.describe_state()} for m in self.members
            },
        }

    async def close(self) -> None:
        for member in self.members:
            with contextlib.suppress(Exception):
                await member.source.close()


def event_is_data(event: Event) -> bool:
    return not isinstance(event, SourceState | Gap)
