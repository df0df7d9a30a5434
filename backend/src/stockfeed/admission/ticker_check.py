"""Whether one client may add one ticker: every check in one place, in one order, for
both WebSocket endpoints (`/ws/stocks/{ticker}` once, `/ws` per ticker of a subscribe).

In order, cheapest and most certain first, so that nothing is spent on a request that a
later, cheaper check would refuse anyway:

1. the name (`invalid_ticker`), and its ticker group (`wrong_group`: another group's
   processes serve it, ticker_groups.py),
2. the token's `tickers` claim (`forbidden_ticker`),
3. the connection's and the client IP's subscriptions (`subscription_limit`),
4. for a ticker the process does not hold yet: the client's new-ticker rate
   (`new_ticker_rate`) and the process's room (`ticker_limit`; nothing is evicted here:
   the subscribe that follows does, so a refused request costs nobody their lingering
   ticker; an accepted one is reserved until its subscribe, so requests checked
   meanwhile count it),
5. for such a ticker too: whether the source can quote it (`unknown_ticker`), asked last
   because it may cost an upstream call; when the source cannot tell now, the ticker is
   refused for now (`upstream_busy`), never accepted unchecked.

A refusal names the close code a single-ticker endpoint closes with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from stockfeed.admission.auth import Principal
from stockfeed.admission.subscription_limits import ClientBudget
from stockfeed.protocol.codes import CloseCode, ErrorCode
from stockfeed.sources.budget import UpstreamBusy
from stockfeed.ticker_groups import TickerGroup
from stockfeed.tickers import InvalidTicker, normalize_ticker


@dataclass(frozen=True, slots=True)
class Refused:
    code: str
    message: str
    close: int  # what `/ws/stocks/{ticker}` closes with
    shown: str | None  # the ticker as named in the `error` (None: not a string)
    route: str | None = None  # wrong_group: the key that routes to the ticker's group


class TickerRoom(Protocol):
    """What the check asks of the hub's room (fanout/linger.py)."""

    max_tickers: int

    def is_new(self, ticker: str) -> bool: ...

    def has_room(self, ticker: str, pending: int = 0) -> bool: ...

    def is_reserved(self, ticker: str) -> bool: ...

    def reserve(self, ticker: str) -> bool: ...

    def unreserve(self, ticker: str, new: bool) -> None: ...


class Refusals(Protocol):
    """Where the limits' refusals are counted, by error code (fanout/stats.py)."""

    def refuse(self, code: str) -> None: ...


Quotable = Callable[[str], Awaitable[bool]]  # Services.can_quote: raises UpstreamBusy


class TickerCheck:
    """One request's checks (a subscribe message, or a single-ticker connection):
    counts what it accepted so far, so the limits hold for the request as a whole."""

    __slots__ = (
        "accepted",
        "accepted_new",
        "budget",
        "group",
        "held",
        "max_per_connection",
        "principal",
        "quotable",
        "refusals",
        "reserved",
        "room",
    )

    def __init__(
        self,
        *,
        principal: Principal | None,
        budget: ClientBudget,
        room: TickerRoom,
        refusals: Refusals,
        quotable: Quotable,
        held: set[str],
        max_per_connection: int,
        group: TickerGroup | None = None,
    ) -> None:
        self.principal = principal
        self.group = group
        self.budget = budget
        self.room = room
        self.refusals = refusals
        self.quotable = quotable
        self.held = held  # the connection's tickers
        self.max_per_connection = max_per_connection
        self.accepted: list[str] = []
        self.accepted_new = 0
        # Accepted tickers reserved in the room until subscribed (ticker -> it was new).
        self.reserved: dict[str, bool] = {}

    def _refuse(self, code: str, message: str, close: int, shown: str | None) -> Refused:
        if code in (
            ErrorCode.SUBSCRIPTION_LIMIT,
            ErrorCode.NEW_TICKER_RATE,
            ErrorCode.TICKER_LIMIT,
        ):
            self.refusals.refuse(code)
        return Refused(code, message, close, shown)

    async def admit(self, raw: object) -> str | Refused:
        """The ticker, normalised and accepted (the caller subscribes it), or why not."""
        try:
            ticker = normalize_ticker(raw)
        except InvalidTicker as exc:
            shown = raw[:32] if isinstance(raw, str) else None
            return Refused(ErrorCode.INVALID_TICKER, str(exc), CloseCode.BAD_REQUEST, shown)
        elsewhere = None if self.group is None else self.group.elsewhere(ticker)
        if elsewhere is not None:
            message, route = elsewhere
            return Refused(ErrorCode.WRONG_GROUP, message, CloseCode.BAD_REQUEST, ticker, route)
        if self.principal is not None and not self.principal.may(ticker):
            return Refused(
                ErrorCode.FORBIDDEN_TICKER,
                f"this token may not subscribe to {ticker}",
                CloseCode.FORBIDDEN,
                ticker,
            )
        pending = len(self.accepted)
        if len(self.held) + pending >= self.max_per_connection:
            return self._refuse(
                ErrorCode.SUBSCRIPTION_LIMIT,
                f"at most {self.max_per_connection} tickers per connection",
                CloseCode.TOO_MANY,
                ticker,
            )
        problem = self.budget.refuse_subscription(pending)
        if problem is not None:
            return self._refuse(ErrorCode.SUBSCRIPTION_LIMIT, problem, CloseCode.TOO_MANY, ticker)
        if self.room.is_new(ticker):
            # A ticker another request is bringing in costs this one no new-ticker
            # allowance and no room; the source is still asked (its answer is cached).
            if not self.room.is_reserved(ticker):
                problem = self.budget.refuse_new_ticker()
                if problem is not None:
                    return self._refuse(
                        ErrorCode.NEW_TICKER_RATE, problem, CloseCode.TOO_MANY, ticker
                    )
                if not self.room.has_room(ticker):
                    return self._refuse(
                        ErrorCode.TICKER_LIMIT,
                        ticker_limit_message(self.room.max_tickers),
                        CloseCode.TRY_AGAIN_LATER,
                        ticker,
                    )
            # Reserved before the source is asked (that may await): another request
            # checked meanwhile counts this one.
            self.reserved[ticker] = self.room.reserve(ticker)
            try:
                known = await self.quotable(ticker)
            except UpstreamBusy as exc:
                self.release(ticker)
                return Refused(
                    ErrorCode.UPSTREAM_BUSY,
                    f"{exc}: try {ticker} again in {exc.retry_after} s",
                    CloseCode.TRY_AGAIN_LATER,
                    ticker,
                )
            if not known:
                self.release(ticker)
                return Refused(
                    ErrorCode.UNKNOWN_TICKER,
                    f"the source cannot quote {ticker}",
                    CloseCode.BAD_REQUEST,
                    ticker,
                )
            self.accepted_new += 1
        elif ticker not in self.reserved:
            self.reserved[ticker] = self.room.reserve(ticker)  # held: kept from eviction
        self.accepted.append(ticker)
        return ticker

    def release(self, ticker: str) -> None:
        """The reservation of `ticker` is over: it is being subscribed now (the hub holds
        it from the subscribe's first step), or it was refused."""
        new = self.reserved.pop(ticker, None)
        if new is not None:
            self.room.unreserve(ticker, new)

    def release_all(self) -> None:
        """Whatever is still reserved (the request ended early: the client went away)."""
        for ticker, new in self.reserved.items():
            self.room.unreserve(ticker, new)
        self.reserved.clear()


def ticker_limit_message(max_tickers: int) -> str:
    return f"this server holds its maximum of {max_tickers} tickers, all in use: try again later"
