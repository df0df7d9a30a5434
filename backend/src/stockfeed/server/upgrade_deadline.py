"""The upgrade phase's deadline: a WebSocket handshake the app neither accepts nor refuses.

Once `FastHttpProtocol` hands a WebSocket upgrade request to the WebSocket protocol, the
HTTP deadlines no longer watch it, and uvicorn's WebSocket protocols wait for the app's
`websocket.accept` (or refusal) without any time limit. If the app is stuck before it
answers, the socket would stay open, counted by nobody's per-IP cap, for as long as the
client likes. This clock gives the app `http_upgrade_timeout` seconds: past it the client
gets 503 `server_busy` (retry later) and the connection is closed; one whose answer cannot
be written is dropped `REFUSAL_LINGER` later.

The clock is keyed by the WebSocket protocol object (alive anyway for the connection's
life), not the HTTP one, which must be freed the moment the upgrade is handed over
(tests/server/test_fast_websocket.py checks that). An entry whose handshake was answered
is dropped at the clock's next tick.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from stockfeed.protocol.codes import ErrorCode
from stockfeed.server.deadlines import DeadlineClock, PerLoop
from stockfeed.server.http_refusal import REFUSAL_LINGER, drop, error_response

log = logging.getLogger(__name__)


def _settled(protocol: Any) -> bool:
    # uvicorn's WebSocket protocols set `handshake_complete` on accept, on a refusal's
    # answer and on connection_lost; `close_sent` on a close before the accept.
    return bool(protocol.handshake_complete or protocol.close_sent)


def _expired(protocol: Any) -> None:
    if _settled(protocol):
        return
    transport: asyncio.Transport = protocol.transport
    if transport.is_closing():  # our answer (or another) was not out after the linger
        drop(transport)
        return
    seconds = _clocks(protocol.loop).seconds
    log.info("WebSocket handshake of %s not answered within %g s: 503", protocol.client, seconds)
    message = f"the WebSocket handshake was not answered within {seconds:g} s: retry later"
    transport.write(
        error_response((503, ErrorCode.SERVER_BUSY.value, message), protocol.default_headers)
    )
    # A close (not the HTTP refusals' half-close): the app may still answer later, and a
    # closing transport is what uvicorn's protocols check before writing a 101.
    transport.close()
    _clocks(protocol.loop).arm(protocol, REFUSAL_LINGER)


class _UpgradeClock(DeadlineClock[Any]):
    __slots__ = ("seconds",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop, _expired, settled=_settled, name="WebSocket upgrade")
        self.seconds = 10.0


_clocks: PerLoop[_UpgradeClock] = PerLoop(_UpgradeClock)


def watch(protocol: Any, seconds: float) -> None:
    """Give the app `seconds` to answer `protocol`'s handshake. Protocols that do not
    say when their handshake is answered (uvicorn's legacy `websockets` one) are not
    watched."""
    if not hasattr(protocol, "handshake_complete") or not hasattr(protocol, "close_sent"):
        return
    clock = _clocks(protocol.loop)
    clock.seconds = seconds
    clock.arm(protocol, seconds)
