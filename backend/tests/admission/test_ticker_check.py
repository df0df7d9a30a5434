"""The one per-ticker check both WebSocket endpoints use (admission/ticker_check.py),
in-process: its order (nothing is spent on a request a cheaper check refuses), that it
evicts nothing, and that it fails closed when the source cannot tell."""

from __future__ import annotations

from collections import Counter

import pytest

from stockfeed.admission.auth import Principal, TickerScope
from stockfeed.admission.subscription_limits import SubscriptionLimits
from stockfeed.admission.ticker_check import Refused, TickerCheck
from stockfeed.config import Settings
from stockfeed.protocol.codes import CloseCode, ErrorCode
from stockfeed.sources.budget import UpstreamBusy
from stockfeed.ticker_groups import TickerGroup, group_of, route_key


class Room:
    def __init__(self, held: set[str], max_tickers: int, lingering: int = 0) -> None:
        self.held = held
        self.max_tickers = max_tickers
        self.lingering = lingering
        self.refused: Counter[str] = Counter()
        self.reserved: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()

    def refuse(self, code: str) -> None:
        self.refused[code] += 1

    def is_new(self, ticker: str) -> bool:
        return ticker not in self.held

    def has_room(self, ticker: str, pending: int = 0) -> bool:
        if ticker in self.reserved:
            return True
        over = len(self.held) + len(self.reserved) + pending + 1 - self.max_tickers
        return over <= 0 or self.lingering >= over

    def is_reserved(self, ticker: str) -> bool:
        return ticker in self.reserved

    def reserve(self, ticker: str) -> bool:
        if ticker in self.held:
            self.kept[ticker] += 1
            return False
        self.reserved[ticker] += 1
        return True

    def unreserve(self, ticker: str, new: bool) -> None:
        counts = self.reserved if new else self.kept
        counts[ticker] -= 1
        if not counts[ticker]:
            del counts[ticker]


class Source:
    def __init__(self, known: dict[str, bool | None]) -> None:
        self.known = known
        self.asked: list[str] = []

    async def quotable(self, ticker: str) -> bool:
        self.asked.append(ticker)
        answer = self.known.get(ticker, True)
        if answer is None:
            raise UpstreamBusy("the upstream budget is spent", 7)
        return answer


def check(
    *,
    room: Room | None = None,
    source: Source | None = None,
    principal: Principal | None = None,
    held: set[str] | None = None,
    ip: str = "198.51.100.7",
    group: TickerGroup | None = None,
    **settings: object,
) -> TickerCheck:
    limits = SubscriptionLimits(Settings(**settings), lambda _: False)  # type: ignore[arg-type]
    room = room or Room(set(), 1000)
    return TickerCheck(
        principal=principal,
        budget=limits.for_connection(ip),
        room=room,
        refusals=room,
        quotable=(source or Source({})).quotable,
        held=held if held is not None else set(),
        max_per_connection=3,
        group=group,
    )


async def test_a_valid_ticker_is_normalised_and_counted() -> None:
    c = check()
    assert await c.admit(" aapl ") == "AAPL"
    assert c.accepted == ["AAPL"] and c.accepted_new == 1


@pytest.mark.parametrize(
    ("raw", "shown"), [("bad ticker!", "bad ticker!"), (42, None), ("x" * 40, "x" * 32)]
)
async def test_an_invalid_ticker_is_refused_before_anything_is_asked(
    raw: object, shown: str | None
) -> None:
    source = Source({})
    got = await check(source=source).admit(raw)
    assert isinstance(got, Refused) and got.code == ErrorCode.INVALID_TICKER
    assert got.shown == shown and got.close == CloseCode.BAD_REQUEST
    assert source.asked == []


async def test_a_ticker_outside_the_tokens_claim_is_forbidden() -> None:
    principal = Principal("s", 4e9, TickerScope.parse(["AAPL"]))
    got = await check(principal=principal).admit("MSFT")
    assert isinstance(got, Refused) and got.code == ErrorCode.FORBIDDEN_TICKER
    assert got.close == CloseCode.FORBIDDEN


async def test_a_ticker_of_another_group_is_refused_with_its_route_and_costs_nothing() -> None:
    # AAPL and MSFT are group 2 of 2, GOOG group 1 (nginx's hash; tests/deploy checks it).
    assert (group_of("AAPL", 2), group_of("MSFT", 2), group_of("GOOG", 2)) == (2, 2, 1)
    room, source = Room(set(), 1000), Source({})
    c = check(room=room, source=source, group=TickerGroup(1, 2))
    got = await c.admit("aapl")
    assert isinstance(got, Refused) and got.code == ErrorCode.WRONG_GROUP
    assert got.shown == "AAPL" and got.route == route_key(2, 2)
    assert got.close == CloseCode.BAD_REQUEST and "group 2 of 2" in got.message
    assert await c.admit("GOOG") == "GOOG"
    # Nothing asked, reserved or counted for the refused one.
    assert source.asked == ["GOOG"] and set(room.reserved) == {"GOOG"}
    assert not room.refused and c.accepted == ["GOOG"]
    # The other group serves it; one group of one serves everything.
    assert await check(group=TickerGroup(2, 2)).admit("AAPL") == "AAPL"
    assert await check(group=TickerGroup(1, 1)).admit("AAPL") == "AAPL"


async def test_the_connection_limit_counts_what_the_request_accepted() -> None:
    c = check(held={"AAA"})
    assert await c.admit("BBB") == "BBB"
    assert await c.admit("CCC") == "CCC"
    got = await c.admit("DDD")  # 1 held + 2 accepted = 3 = max_per_connection
    assert isinstance(got, Refused) and got.code == ErrorCode.SUBSCRIPTION_LIMIT


async def test_no_room_is_refused_without_asking_the_source_or_evicting() -> None:
    room, source = Room({"AAA", "BBB"}, max_tickers=2, lingering=1), Source({})
    c = check(room=room, source=source)
    assert await c.admit("CCC") == "CCC"  # one lingering ticker can make room...
    got = await c.admit("DDD")  # ...not two
    assert isinstance(got, Refused) and got.code == ErrorCode.TICKER_LIMIT
    assert got.close == CloseCode.TRY_AGAIN_LATER
    assert source.asked == ["CCC"] and room.refused[ErrorCode.TICKER_LIMIT] == 1


async def test_an_accepted_ticker_is_reserved_for_requests_checked_meanwhile() -> None:
    """Two requests checked before either subscribes cannot both take the last room."""
    room = Room({"AAA"}, max_tickers=2)
    first, second = check(room=room), check(room=room, ip="198.51.100.8")
    assert await first.admit("BBB") == "BBB"
    got = await second.admit("CCC")
    assert isinstance(got, Refused) and got.code == ErrorCode.TICKER_LIMIT
    assert await second.admit("BBB") == "BBB"  # reserved: coming anyway, costs no room
    first.release("BBB")
    second.release_all()
    assert room.reserved == {} and room.kept == {}


async def test_a_ticker_refused_by_the_source_gives_its_reservation_back() -> None:
    room = Room(set(), max_tickers=1)
    c = check(room=room, source=Source({"NOPE": False, "MAYBE": None}))
    assert isinstance(await c.admit("NOPE"), Refused)
    assert isinstance(await c.admit("MAYBE"), Refused)
    assert room.reserved == {} and c.reserved == {}
    assert await c.admit("AAPL") == "AAPL"


async def test_an_unknown_ticker_is_refused_and_a_held_one_is_not_asked_about() -> None:
    source = Source({"NOPE": False})
    c = check(room=Room({"AAPL"}, 1000), source=source)
    got = await c.admit("NOPE")
    assert isinstance(got, Refused) and got.code == ErrorCode.UNKNOWN_TICKER
    assert await c.admit("AAPL") == "AAPL"  # the process holds it: known
    assert source.asked == ["NOPE"]


async def test_when_the_source_cannot_tell_the_ticker_is_refused_for_now() -> None:
    got = await check(source=Source({"MAYBE": None})).admit("MAYBE")
    assert isinstance(got, Refused) and got.code == ErrorCode.UPSTREAM_BUSY
    assert "7 s" in got.message and got.close == CloseCode.TRY_AGAIN_LATER


async def test_the_new_ticker_rate_applies_to_new_tickers_only() -> None:
    c = check(room=Room({"HELD"}, 1000), new_ticker_burst=1)
    assert await c.admit("AAA") == "AAA"
    got = await c.admit("BBB")
    assert isinstance(got, Refused) and got.code == ErrorCode.NEW_TICKER_RATE
    assert await c.admit("HELD") == "HELD"  # held by the process: no new-ticker token
