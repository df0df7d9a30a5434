"""Small helpers for talking to a real server over a real WebSocket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection


async def recv_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    value: dict[str, Any] = json.loads(raw)
    return value


async def recv_until(ws: ClientConnection, msg_type: str, timeout: float = 10.0) -> dict[str, Any]:
    """Read messages until one of `msg_type` arrives (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        msg = await recv_json(ws, max(0.01, deadline - loop.time()))
        if msg["type"] == msg_type:
            return msg


async def recv_updates(
    ws: ClientConnection,
    count: int,
    timeout: float = 20.0,
    types: tuple[str, ...] = ("price_update",),
) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out: list[dict[str, Any]] = []
    while len(out) < count:
        msg = await recv_json(ws, max(0.01, deadline - loop.time()))
        if msg["type"] in types:
            out.append(msg)
    return out
