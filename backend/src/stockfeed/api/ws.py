"""WebSocket endpoints: `/ws/stocks/{ticker}` (one ticker) and `/ws` (many tickers).

A thin adapter between the ASGI WebSocket and the fan-out core: the gate admits the
handshake (admission/gate.py: rate, origin, token, per-IP cap), `_Connected` sets up the
connection's hub session, subscription budget and token-expiry timer and gives all of it
back in one place, and the receive loop reads the client's messages one at a time,
never while the client's writes are backed up (so a client that does not read cannot
make the server queue replies for it), each counted against its message rate. What a
request does is in ws_requests.py; every reply goes through the connection's one
accounted write path (fanout/connections.py). A bad message gets an `error` reply, never
a crash. Close codes are those of docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from stockfeed import protocol
from stockfeed.admission.gate import Admission, Gate
from stockfeed.admission.token_bucket import TokenBucket
from stockfeed.api import ws_requests
from stockfeed.api.deps import process_gate, services
from stockfeed.api.ws_requests import Caller
from stockfeed.fanout.connections import Connection, make_connection
from stockfeed.fanout.hub import HubSession
from stockfeed.protocol.codes import CloseCode, ErrorCode
from stockfeed.services import Services

log = logging.getLogger(__name__)
router = APIRouter()

# Close tasks started by expiry timers, held so they are not collected mid-flight.
_closing: set[asyncio.Task[None]] = set()


def _expire(client: Connection) -> None:
    if client.closed:
        return
    client.send(protocol.error(ErrorCode.UNAUTHORIZED, "token expired"))
    task = asyncio.ensure_future(client.close(CloseCode.UNAUTHORIZED, "token expired"))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


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
        ip = websocket.client.host if websocket.client else ""
        self.caller = Caller(admission.principal, gate.subscriptions.for_connection(ip))
        self.client = _client(svc, websocket)
        self.session: HubSession | None = None
        self.expiry: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> _Connected:
        try:
            session = self.svc.hub.session(self.client)
            await session.__aenter__()
            self.session = session
            principal, verifier = self.admission.principal, self.gate.verifier
            if principal is not None and verifier is not None:
                # At the instant the token would no longer be accepted (`exp` + leeway).
                delay = max(0.0, verifier.seconds_left(principal))
                self.expiry = asyncio.get_running_loop().call_later(delay, _expire, self.client)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self.expiry is not None:
                self.expiry.cancel()
            self.caller.budget.release()
            if self.session is not None:
                await self.session.__aexit__(*exc_info)
        finally:
            self.gate.release(self.admission)


def _client(svc: Services, websocket: WebSocket) -> Connection:
    # Nothing reads the handshake headers once connected; they cost ~1 KiB a connection.
    websocket.scope["headers"] = []
    settings = svc.settings
    limiter = TokenBucket(settings.client_messages_per_second, settings.client_message_burst)
    return make_connection(
        websocket,
        queue_size=settings.client_queue_size,
        stuck_timeout=settings.slow_client_timeout,
        budget=settings.client_buffer_bytes,
        limiter=limiter.take,
    )


async def _admitted(websocket: WebSocket) -> tuple[Services, Gate, Admission] | None:
    svc = services(websocket)
    gate = process_gate(websocket)
    admission = await gate.admit(websocket)
    return None if admission is None else (svc, gate, admission)


@router.websocket("/ws/stocks/{ticker}")
async def ws_single(websocket: WebSocket, ticker: str) -> None:
    admitted = await _admitted(websocket)
    if admitted is None:
        return
    async with _Connected(*admitted, websocket) as conn:
        bars = websocket.query_params.get("bars")
        if await ws_requests.open_single(conn.svc, conn.client, conn.caller, ticker, bars):
            await _receive_loop(conn, multiplexed=False)


@router.websocket("/ws")
async def ws_multi(websocket: WebSocket) -> None:
    admitted = await _admitted(websocket)
    if admitted is None:
        return
    async with _Connected(*admitted, websocket) as conn:
        await _receive_loop(conn, multiplexed=True)


async def _receive_loop(conn: _Connected, *, multiplexed: bool) -> None:
    client = conn.client
    websocket = client.websocket
    limiter = client.limiter
    while True:
        # The next message is read only once the replies to the last have gone out: a
        # client that does not read what it is sent stops being read, and the stuck
        # watch closes it (4408) if it never drains (then `writable` returns at once).
        if client.backed_up():
            await client.writable()
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        if client.closed or websocket.application_state != WebSocketState.CONNECTED:
            # Closing: what the client still sends is dropped until the socket ends.
            # Returning now would close the transport under the close frame and what
            # is buffered before it (the peer would get a reset, not 4408).
            continue
        if limiter is not None and not limiter():
            client.send(protocol.error(ErrorCode.RATE_LIMITED, "too many messages: slow down"))
            await client.close(CloseCode.POLICY_VIOLATION, "too many messages")
            return
        text = message.get("text")
        if text is None:
            client.send(protocol.error(ErrorCode.BAD_MESSAGE, "send JSON text frames, not binary"))
            continue
        await _handle(conn, text, multiplexed=multiplexed)


def _pong_id(message_id: object) -> object:
    """The `id` a pong echoes: what JSON can carry back, else null."""
    if not isinstance(message_id, int | str | float | type(None)) or isinstance(message_id, bool):
        return None
    if isinstance(message_id, float) and not math.isfinite(message_id):
        return None  # json.loads reads NaN/Infinity; JSON cannot carry them back
    return message_id


async def _handle(conn: _Connected, text: str, *, multiplexed: bool) -> None:
    client = conn.client
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting 4 KiB deep, e.g. [[[[...
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, "message is not valid JSON"))
        return
    if not isinstance(msg, dict):
        client.send(protocol.error(ErrorCode.BAD_MESSAGE, "message must be a JSON object"))
        return
    if msg.get("type") == "ping":
        client.send(protocol.pong(_pong_id(msg.get("id"))))
        return
    action = msg.get("action")
    if action in ("subscribe", "unsubscribe"):
        if not multiplexed:
            message = f"{action} is for the /ws endpoint; this one has one ticker"
            client.send(protocol.error(ErrorCode.BAD_MESSAGE, message))
        elif action == "subscribe":
            await ws_requests.subscribe(conn.svc, client, conn.caller, msg)
        else:
            await ws_requests.unsubscribe(conn.svc, client, conn.caller, msg)
        return
    client.send(
        protocol.error(
            ErrorCode.BAD_MESSAGE,
            'unknown message: send {"type":"ping","id":N}'
            + (' or {"action":"subscribe","tickers":[...]}' if multiplexed else ""),
        )
    )
