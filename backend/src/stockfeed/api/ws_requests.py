"""What a WebSocket client's requests do: the ticker of `/ws/stocks/{ticker}`, and the
`subscribe` / `unsubscribe` messages of `/ws`.

Every ticker goes through the one check (admission/ticker_check.py) before the hub is
asked for it; every reply is built in `protocol` and goes out through the connection's
accounted write path (fanout/connections.py). Per-ticker failures are `error`s naming
the ticker; on the single-ticker endpoint the same refusal closes the connection with
the code the check names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stockfeed import protocol
from stockfeed.admission.auth import Principal
from stockfeed.admission.subscription_limits import ClientBudget
from stockfeed.admission.ticker_check import Refused, TickerCheck, ticker_limit_message
from stockfeed.fanout.bars import BadBars, parse_bars
from stockfeed.fanout.connections import Connection
from stockfeed.fanout.resume import BadResume, ResumePoint, parse_resume
from stockfeed.protocol.codes import CloseCode, ErrorCode
from stockfeed.services import Services
from stockfeed.tickers import InvalidTicker, normalize_ticker


@dataclass(slots=True)
class Caller:
    """Who is on a connection: the token's principal and its subscription budget."""

    principal: Principal | None
    budget: ClientBudget


def _check(svc: Services, client: Connection, caller: Caller) -> TickerCheck:
    return TickerCheck(
        principal=caller.principal,
        budget=caller.budget,
        room=svc.hub.room,
        refusals=svc.hub.stats,
        quotable=svc.can_quote,
        held=client.tickers,
        max_per_connection=svc.settings.max_subscriptions,
        group=svc.group,
    )


def _refuse(client: Connection, refused: Refused) -> None:
    client.send(protocol.error(refused.code, refused.message, refused.shown, refused.route))


def bar_streams_message(svc: Services) -> str:
    limit = svc.settings.max_bar_streams
    return f"bars: at most {limit} bar streams (tickers x intervals) per connection"


def _ticker_limit(svc: Services, client: Connection, ticker: str) -> None:
    """Others filled the process between the check and the subscribe (rare)."""
    svc.hub.stats.refuse(ErrorCode.TICKER_LIMIT)
    message = ticker_limit_message(svc.hub.room.max_tickers)
    client.send(protocol.error(ErrorCode.TICKER_LIMIT, message, ticker))


async def open_single(
    svc: Services, client: Connection, caller: Caller, raw_ticker: str, raw_bars: str | None
) -> bool:
    """`/ws/stocks/{ticker}[?bars=1m,5m]`: subscribe the one ticker, or refuse (an
    `error`, then the close its refusal names) and return False."""
    bars: tuple[str, ...] = ()
    try:
        bars = parse_bars(raw_bars.split(",")) if raw_bars else ()
    except BadBars as exc:
        refused = Refused(ErrorCode.BAD_MESSAGE, str(exc), CloseCode.BAD_REQUEST, None)
    else:
        if len(bars) > svc.settings.max_bar_streams:
            message = bar_streams_message(svc)
            refused = Refused(ErrorCode.BAD_MESSAGE, message, CloseCode.BAD_REQUEST, None)
        else:
            check = _check(svc, client, caller)
            checked = await check.admit(raw_ticker)
            if isinstance(checked, str):
                check.release(checked)  # the subscribe takes the room from its first step
                if await svc.hub.subscribe(client, checked, bars=bars):
                    caller.budget.added()
                    return True
                _ticker_limit(svc, client, checked)
                await client.close(CloseCode.TRY_AGAIN_LATER, ErrorCode.TICKER_LIMIT)
                return False
            refused = checked
    _refuse(client, refused)
    await client.close(refused.close, refused.code)
    return False


async def subscribe(svc: Services, client: Connection, caller: Caller, msg: dict[str, Any]) -> None:
    tickers = _tickers_of(svc, client, msg)
    if tickers is None:
        return
    try:
        resume = parse_resume(msg.get("resume"))
        bars = parse_bars(msg.get("bars"))
    except (BadResume, BadBars) as exc:
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, str(exc)))
        return
    if bars and not _bars_fit(svc, client, tickers, bars):
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, bar_streams_message(svc)))
        return
    check = _check(svc, client, caller)
    try:
        await _admit_and_subscribe(svc, client, caller, check, tickers, resume, bars)
    finally:
        check.release_all()


async def _admit_and_subscribe(
    svc: Services,
    client: Connection,
    caller: Caller,
    check: TickerCheck,
    tickers: list[Any],
    resume: dict[str, ResumePoint],
    bars: tuple[str, ...],
) -> None:
    more_bars: list[str] = []  # tickers held already, that get bars now
    for raw in tickers:
        name = _name(raw)
        if name is not None and (name in client.tickers or name in check.accepted):
            if bars and name in client.tickers and name not in more_bars:
                more_bars.append(name)
            continue
        checked = await check.admit(raw)
        if isinstance(checked, Refused):
            _refuse(client, checked)
    # The acknowledgement first (with the epochs a client needs to resume later), then
    # each ticker's replay or snapshot.
    held = sorted(client.tickers | set(check.accepted))
    client.send(protocol.subscribed(held, {t: svc.hub.epochs.epoch_for(t) for t in held}))
    for ticker in more_bars:
        await svc.hub.subscribe(client, ticker, bars=bars)
    for ticker in check.accepted:
        check.release(ticker)  # the subscribe takes the room from its first step
        if await svc.hub.subscribe(client, ticker, resume.get(ticker), bars):
            caller.budget.added()
        else:
            _ticker_limit(svc, client, ticker)


async def unsubscribe(
    svc: Services, client: Connection, caller: Caller, msg: dict[str, Any]
) -> None:
    tickers = _tickers_of(svc, client, msg)
    if tickers is None:
        return
    for raw in tickers:
        try:
            ticker = normalize_ticker(raw)
        except InvalidTicker as exc:
            shown = raw[:32] if isinstance(raw, str) else None
            client.send(protocol.error(ErrorCode.INVALID_TICKER, str(exc), shown))
            continue
        if ticker in client.tickers:
            caller.budget.removed()
        await svc.hub.unsubscribe(client, ticker)
    client.send(protocol.unsubscribed(sorted(client.tickers)))


def _tickers_of(svc: Services, client: Connection, msg: dict[str, Any]) -> list[Any] | None:
    tickers = msg.get("tickers")
    if not isinstance(tickers, list) or not tickers:
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, "tickers must be a non-empty list"))
        return None
    if len(tickers) > svc.settings.max_subscriptions * 2:
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, "too many tickers in one message"))
        return None
    return tickers


def _name(raw: object) -> str | None:
    try:
        return normalize_ticker(raw)
    except InvalidTicker:
        return None


def _bars_fit(
    svc: Services, client: Connection, tickers: Sequence[Any], bars: tuple[str, ...]
) -> bool:
    """Whether the connection stays within `max_bar_streams` if every valid ticker of the
    subscribe gets these intervals (checked before anything is subscribed)."""
    names = {name for name in map(_name, tickers) if name is not None}
    held = svc.hub.bars.streams_of(client)
    new = {(name, interval) for name in names for interval in bars} - held
    return len(held) + len(new) <= svc.settings.max_bar_streams
