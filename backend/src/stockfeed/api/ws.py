"""WebSocket endpoints: `/ws/stocks/{ticker}` (one ticker) and `/ws` (many tickers).

Both share the hub and the same client handling; all input is validated and a bad
message gets an `error` reply, never a crash. Close codes are those of docs/protocol.md.
Every handshake passes the gate first (guard.py: rate, origin, token, per-IP cap); a
token's `tickers` claim is checked per subscribed ticker, and a connection is closed
with 4401 when its token expires.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from stockfeed import protocol
from stockfeed.admission.auth import FORBIDDEN_TICKER, UNAUTHORIZED, Principal
from stockfeed.admission.gate import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, Admission, Gate
from stockfeed.admission.subscription_limits import (
    NEW_TICKER_RATE,
    SUBSCRIPTION_LIMIT,
    TICKER_LIMIT,
    ClientBudget,
)
from stockfeed.admission.token_bucket import TokenBucket
from stockfeed.api.deps import process_gate, services
from stockfeed.fanout.bars import BadBars, parse_bars
from stockfeed.fanout.connections import Connection, make_connection
from stockfeed.fanout.resume import BadResume, parse_resume
from stockfeed.protocol.codes import CloseCode, ErrorCode
from stockfeed.services import Services
from stockfeed.tickers import InvalidTicker, normalize_ticker

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_POLICY = CloseCode.POLICY_VIOLATION
CLOSE_TRY_AGAIN_LATER = CloseCode.TRY_AGAIN_LATER  # ticker_limit
CLOSE_BAD_REQUEST = CloseCode.BAD_REQUEST
CLOSE_TOO_MANY = CloseCode.TOO_MANY  # new tickers too fast, or too many held
CAN_QUOTE_TIMEOUT = 3.0
# Close tasks started by expiry timers, held so they are not collected mid-flight.
_closing: set[asyncio.Task[None]] = set()


async def _refuse(websocket: WebSocket, code: str, message: str, ticker: str | None) -> None:
    await websocket.send_text(protocol.error(code, message, ticker))
    await websocket.close(CLOSE_BAD_REQUEST, code)


async def _check_quotable(svc: Services, ticker: str) -> bool:
    """False only when the source knows it cannot quote the ticker (relay: never)."""
    if svc.source is None:
        return True
    try:
        known = await asyncio.wait_for(svc.source.can_quote(ticker), CAN_QUOTE_TIMEOUT)
    except Exception:  # unreachable source: do not refuse what may be valid
        return True
    return known is not False


@dataclass(slots=True)
class Caller:
    """Who is on a connection: the token's principal and its subscription budget."""

    principal: Principal | None
    budget: ClientBudget


def _caller(gate: Gate, admission: Admission, websocket: WebSocket) -> Caller:
    ip = websocket.client.host if websocket.client else ""
    return Caller(admission.principal, gate.subscriptions.for_connection(ip))


def _expire(client: Connection) -> None:
    if client.closed:
        return
    client.send(protocol.error(UNAUTHORIZED, "token expired"))
    task = asyncio.ensure_future(client.close(CLOSE_UNAUTHORIZED, "token expired"))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def _watch_expiry(
    gate: Gate, admission: Admission, client: Connection
) -> asyncio.TimerHandle | None:
    """One timer per authenticated connection, at the instant its token would no longer
    be accepted (`exp` + leeway); cancelled when the connection ends first."""
    if admission.principal is None or gate.verifier is None:
        return None
    delay = max(0.0, gate.verifier.seconds_left(admission.principal))
    return asyncio.get_running_loop().call_later(delay, _expire, client)


class _Connected:
    """One admitted WebSocket as both endpoints run it: its hub connection, its
    subscription budget and the timer for its token's expiry, set up on entry and all
    given back on exit (the gate's admission too), however the connection ends. A
    class, not a generator: nothing of it stays on the connection's stack."""

    __slots__ = ("admission", "caller", "client", "expiry", "gate", "session", "svc")

    def __init__(
        self, svc: Services, gate: Gate, admission: Admission, websocket: WebSocket
    ) -> None:
        self.svc = svc
        self.gate = gate
        self.admission = admission
        self.caller = _caller(gate, admission, websocket)
        self.client = _client(svc, websocket)
        self.session = svc.hub.session(self.client)
        self.expiry: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> _Connected:
        await self.session.__aenter__()
        self.expiry = _watch_expiry(self.gate, self.admission, self.client)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self.expiry is not None:
                self.expiry.cancel()
            self.caller.budget.release()
            await self.session.__aexit__(*exc_info)
        finally:
            self.gate.release(self.admission)


@router.websocket("/ws/stocks/{ticker}")
async def ws_single(websocket: WebSocket, ticker: str) -> None:
    svc = services(websocket)
    gate = process_gate(websocket)
    admission = await gate.admit(websocket)
    if admission is None:
        return
    try:
        bars = await _query_bars(svc, websocket, ticker)
        name = (
            None if bars is None else await _single_ticker(svc, gate, admission, websocket, ticker)
        )
    except BaseException:
        gate.release(admission)
        raise
    if name is None or bars is None:
        gate.release(admission)
        return
    async with _Connected(svc, gate, admission, websocket) as conn:
        client = conn.client
        if not await svc.hub.subscribe(client, name, bars=bars):
            svc.hub.refused[TICKER_LIMIT] += 1
            client.send(protocol.error(TICKER_LIMIT, _ticker_limit_message(svc), name))
            await client.close(CLOSE_TRY_AGAIN_LATER, TICKER_LIMIT)
            return
        conn.caller.budget.added()
        await _receive_loop(svc, client, multiplexed=False, caller=conn.caller)


async def _query_bars(svc: Services, websocket: WebSocket, ticker: str) -> tuple[str, ...] | None:
    """The intervals of `?bars=1m,5m`, or None after refusing them (error + close 4400)."""
    raw = websocket.query_params.get("bars")
    if raw is None:
        return ()
    try:
        bars = parse_bars(raw.split(",")) if raw else ()
    except BadBars as exc:
        await _refuse(websocket, ErrorCode.BAD_MESSAGE, str(exc), None)
        return None
    if len(bars) > svc.settings.max_bar_streams:
        message = _bar_streams_message(svc)
        await _refuse(websocket, ErrorCode.BAD_MESSAGE, message, None)
        return None
    return bars


def _bar_streams_message(svc: Services) -> str:
    limit = svc.settings.max_bar_streams
    return f"bars: at most {limit} bar streams (tickers x intervals) per connection"


async def _single_ticker(
    svc: Services, gate: Gate, admission: Admission, websocket: WebSocket, ticker: str
) -> str | None:
    """The ticker of `/ws/stocks/{ticker}`, or None after refusing it (error + close)."""
    try:
        name = normalize_ticker(ticker)
    except InvalidTicker as exc:
        await _refuse(websocket, ErrorCode.INVALID_TICKER, str(exc), ticker[:32])
        return None
    principal = admission.principal
    if principal is not None and not principal.may(name):
        await websocket.send_text(
            protocol.error(FORBIDDEN_TICKER, f"this token may not subscribe to {name}", name)
        )
        await websocket.close(CLOSE_FORBIDDEN, FORBIDDEN_TICKER)
        return None
    # Checked against a budget of its own: the connection's comes with _Connected.
    budget = gate.subscriptions.for_connection(websocket.client.host if websocket.client else "")
    refusal = _budget_refusal(svc, Caller(principal, budget), name, pending=0)
    if refusal is not None:
        code, message = refusal
        close = CLOSE_TRY_AGAIN_LATER if code == TICKER_LIMIT else CLOSE_TOO_MANY
        await websocket.send_text(protocol.error(code, message, name))
        await websocket.close(close, code)
        return None
    if not await _check_quotable(svc, name):
        await _refuse(websocket, ErrorCode.UNKNOWN_TICKER, f"the source cannot quote {name}", name)
        return None
    return name


@router.websocket("/ws")
async def ws_multi(websocket: WebSocket) -> None:
    svc = services(websocket)
    gate = process_gate(websocket)
    admission = await gate.admit(websocket)
    if admission is None:
        return
    try:
        conn = _Connected(svc, gate, admission, websocket)
    except BaseException:
        gate.release(admission)
        raise
    async with conn:
        await _receive_loop(svc, conn.client, multiplexed=True, caller=conn.caller)


def _client(svc: Services, websocket: WebSocket) -> Connection:
    # Nothing reads the handshake headers once connected; they cost ~1 KiB a connection.
    websocket.scope["headers"] = []
    return make_connection(
        websocket,
        queue_size=svc.settings.client_queue_size,
        stuck_timeout=svc.settings.slow_client_timeout,
    )


async def _receive_loop(
    svc: Services, client: Connection, *, multiplexed: bool, caller: Caller
) -> None:
    websocket = client.websocket
    limiter = TokenBucket(
        svc.settings.client_messages_per_second, svc.settings.client_message_burst
    )
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        if client.closed or websocket.application_state != WebSocketState.CONNECTED:
            return
        if not limiter.take():
            client.send(protocol.error(ErrorCode.RATE_LIMITED, "too many messages: slow down"))
            await client.close(CLOSE_POLICY, "too many messages")
            return
        text = message.get("text")
        if text is None:
            client.send(protocol.error(ErrorCode.BAD_MESSAGE, "send JSON text frames, not binary"))
            continue
        await _handle(svc, client, text, multiplexed=multiplexed, caller=caller)


async def _handle(
    svc: Services,
    client: Connection,
    text: str,
    *,
    multiplexed: bool,
    caller: Caller,
) -> None:
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting 4 KiB deep, e.g. [[[[...
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, "message is not valid JSON"))
        return
    if not isinstance(msg, dict):
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, "message must be a JSON object"))
        return
    if msg.get("type") == "ping":
        message_id = msg.get("id")
        if not isinstance(message_id, int | str | float | type(None)) or isinstance(
            message_id, bool
        ):
            message_id = None
        elif isinstance(message_id, float) and not math.isfinite(message_id):
            message_id = None  # json.loads reads NaN/Infinity; JSON cannot carry them back
        client.send(protocol.pong(message_id))
        return
    action = msg.get("action")
    if action in ("subscribe", "unsubscribe"):
        if not multiplexed:
            client.send(
                protocol.error(
                    ErrorCode.BAD_MESSAGE,
                    f"{action} is for the /ws endpoint; this one has one ticker",
                )
            )
            return
        await _subscription(svc, client, action, msg, caller)
        return
    client.send(
        protocol.error(
            ErrorCode.BAD_MESSAGE,
            'unknown message: send {"type":"ping","id":N}'
            + (' or {"action":"subscribe","tickers":[...]}' if multiplexed else ""),
        )
    )


async def _subscription(
    svc: Services,
    client: Connection,
    action: str,
    msg: dict[str, Any],
    caller: Caller,
) -> None:
    principal = caller.principal
    tickers = msg.get("tickers")
    if not isinstance(tickers, list) or not tickers:
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, "tickers must be a non-empty list"))
        return
    if len(tickers) > svc.settings.max_subscriptions * 2:
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, "too many tickers in one message"))
        return
    try:
        resume = parse_resume(msg.get("resume")) if action == "subscribe" else {}
        bars = parse_bars(msg.get("bars")) if action == "subscribe" else ()
    except (BadResume, BadBars) as exc:
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, str(exc)))
        return
    if bars and not _bars_fit(svc, client, tickers, bars):
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, _bar_streams_message(svc)))
        return
    accepted: list[str] = []
    more_bars: list[str] = []  # tickers held already, that get bars now
    for raw in tickers:
        try:
            ticker = normalize_ticker(raw)
        except InvalidTicker as exc:
            shown = raw[:32] if isinstance(raw, str) else None
            client.send(protocol.error(ErrorCode.INVALID_TICKER, str(exc), shown))
            continue
        if action == "unsubscribe":
            if ticker in client.tickers:
                caller.budget.removed()
            await svc.hub.unsubscribe(client, ticker)
            continue
        if ticker in client.tickers or ticker in accepted:
            if bars and ticker in client.tickers and ticker not in more_bars:
                more_bars.append(ticker)
            continue
        if principal is not None and not principal.may(ticker):
            client.send(
                protocol.error(
                    FORBIDDEN_TICKER, f"this token may not subscribe to {ticker}", ticker
                )
            )
            continue
        if len(client.tickers) + len(accepted) >= svc.settings.max_subscriptions:
            svc.hub.refused[SUBSCRIPTION_LIMIT] += 1
            client.send(
                protocol.error(
                    SUBSCRIPTION_LIMIT,
                    f"at most {svc.settings.max_subscriptions} tickers per connection",
                    ticker,
                )
            )
            continue
        refusal = _budget_refusal(svc, caller, ticker, pending=len(accepted))
        if refusal is not None:
            client.send(protocol.error(refusal[0], refusal[1], ticker))
            continue
        if not await _check_quotable(svc, ticker):
            client.send(
                protocol.error(
                    ErrorCode.UNKNOWN_TICKER, f"the source cannot quote {ticker}", ticker
                )
            )
            continue
        accepted.append(ticker)
    if action == "unsubscribe":
        client.send(protocol.dumps({"type": "unsubscribed", "tickers": sorted(client.tickers)}))
        return
    # The acknowledgement first (with the epochs a client needs to resume later), then
    # each ticker's replay or snapshot.
    held = sorted(client.tickers | set(accepted))
    client.send(
        protocol.dumps(
            {
                "type": "subscribed",
                "tickers": held,
                "epochs": {t: svc.hub.epoch_for(t) for t in held},
            }
        )
    )
    for ticker in more_bars:
        await svc.hub.subscribe(client, ticker, bars=bars)
    for ticker in accepted:
        if await svc.hub.subscribe(client, ticker, resume.get(ticker), bars):
            caller.budget.added()
        else:
            # Others filled the process between the check above and now (rare): this
            # ticker is not held after all, whatever the acknowledgement listed.
            svc.hub.refused[TICKER_LIMIT] += 1
            client.send(protocol.error(TICKER_LIMIT, _ticker_limit_message(svc), ticker))


def _bars_fit(svc: Services, client: Connection, tickers: list[Any], bars: tuple[str, ...]) -> bool:
    """Whether the connection stays within `max_bar_streams` if every valid ticker of the
    subscribe gets these intervals (checked before anything is subscribed)."""
    names: set[str] = set()
    for raw in tickers:
        try:
            names.add(normalize_ticker(raw))
        except InvalidTicker:
            continue
    held = svc.hub.bars.streams_of(client)
    new = {(name, interval) for name in names for interval in bars} - held
    return len(held) + len(new) <= svc.settings.max_bar_streams


def _ticker_limit_message(svc: Services) -> str:
    return (
        f"this server holds its maximum of {svc.hub.max_tickers} tickers, all in use: "
        "try again later"
    )


def _budget_refusal(
    svc: Services, caller: Caller, ticker: str, pending: int
) -> tuple[str, str] | None:
    """(code, message) when this client may not add `ticker` now, counted; else None.
    Checked before the source is asked about the ticker: a lookup upstream is part of
    what a new ticker costs."""
    hub = svc.hub
    problem = caller.budget.refuse_subscription(pending)
    if problem is not None:
        hub.refused[SUBSCRIPTION_LIMIT] += 1
        return SUBSCRIPTION_LIMIT, problem
    if not hub.is_new(ticker):
        return None
    problem = caller.budget.refuse_new_ticker()
    if problem is not None:
        hub.refused[NEW_TICKER_RATE] += 1
        return NEW_TICKER_RATE, problem
    if not hub.has_room(ticker):
        hub.refused[TICKER_LIMIT] += 1
        return TICKER_LIMIT, _ticker_limit_message(svc)
    return None
