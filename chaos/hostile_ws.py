"""Hostile WebSocket clients against the one accounted write path (issue 20), in the
hostile set. Each runs against a fresh server (auth on, default limits) with the
well-behaved client alongside; chaos/hostile.py prints the server's RSS and CPU during and
after and what the good client saw.

- reply-flood: four `/ws` connections that never read subscribe to 50 listed tickers with
  `"bars":["1m"]`, then send unsubscribe + subscribe pairs for them at 18 messages/s (each
  subscribe would queue 50 snapshots, 50 `market_status` and 50 `bars`). The server stops
  reading a client once its writes back up, holds at most `client_buffer_bytes` for it,
  and closes it 4408 after `slow_client_timeout`, updates or not.
- resume-replay: the server ticks 20 tickers 100 times a second for 20 s (its resume
  history fills), then eight connections that never read resume all 20 from seq 1. A
  replay goes out in chunks that wait for the client to drain.
- ping-flood: 20 connections send WebSocket pings (the protocol's, below the app) as fast
  as they can: they count against the message rate (1008).
- ticker-share: 20 connections from one address subscribe 50 listed tickers each, all
  different: the address may hold a quarter of the process's tickers.
- rest-interest: `GET /api/quotes/{T}` for 300 listed tickers nobody watches, 8 at a
  time: each
  first look is held within the process's ticker budget, lingering `linger_min`.
- bars-abandon: 30 connections a second subscribe 20 listed tickers with bars and leave at
  once: the bar-book builds nobody waits for are cancelled.

Nothing here targets anything but 127.0.0.0/8, and every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from stockfeed.sources.symbols import Directory
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from chaos.procs import ServerProc

if TYPE_CHECKING:
    from chaos.scenarios import Sizes

Rows = list[tuple[str, str]]
ATTACKER_IP = "127.0.0.2"  # not in the default exempt list, unlike 127.0.0.1
LISTED = [t for t in Directory.bundled().symbols() if t.isalpha()]  # US equities and ETFs
WATCHED = ("AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA")  # the good client's


def shown(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


async def health(server: ServerProc) -> dict[str, Any]:
    """The server's health as the exempt loopback peer sees it."""
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        body: dict[str, Any] = (await http.get("/api/ws/health")).json()
    return body


async def _open(
    server: ServerProc, token: str, path: str = "/ws", *, reads: bool = True
) -> ClientConnection:
    """A connection from the attacker's address; one that does not read has a 4 KiB
    receive buffer it never empties."""
    sock = socket.socket()
    sock.bind((ATTACKER_IP, 0))
    if not reads:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    ws = await connect(
        server.ws + path,
        sock=sock,
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=10,
        close_timeout=1,
        ping_interval=None,
        max_size=2**24,
        max_queue=1 if not reads else 16,
    )
    if not reads and ws.transport is not None:
        ws.transport.pause_reading()
    return ws


async def _ended(ws: ClientConnection, outcomes: Counter[str], wait: float) -> None:
    """Read what the server left, to learn how it closed the connection."""
    if ws.transport is not None:
        ws.transport.resume_reading()
    try:
        async with asyncio.timeout(wait):
            async for _ in ws:
                pass
    except TimeoutError:
        outcomes["still open"] += 1
        ws.transport.abort()
        return
    except ConnectionClosed:
        pass
    code = ws.close_code
    outcomes["closed by the server " + str(code) if code != 1006 else "dropped"] += 1


async def _send_paced(ws: ClientConnection, messages: list[str], outcomes: Counter[str]) -> bool:
    """Send unless the server stopped reading (a send that does not complete in 1 s)."""
    for text in messages:
        try:
            async with asyncio.timeout(1.0):
                await ws.send(text)
        except TimeoutError:
            outcomes["sends blocked"] += 1
            return False
        except ConnectionClosed:
            return False
        outcomes["messages sent"] += 1
    return True


async def reply_flood(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    outcomes: Counter[str] = Counter()
    tickers = LISTED[:50]
    subscribe = json.dumps({"action": "subscribe", "tickers": tickers, "bars": ["1m"]})
    unsubscribe = json.dumps({"action": "unsubscribe", "tickers": tickers})
    deadline = time.monotonic() + sizes.hostile_flood_seconds
    before = await health(server)

    async def attacker() -> None:
        try:
            ws = await _open(server, token, reads=False)
        except (OSError, TimeoutError, WebSocketException) as exc:
            outcomes[f"connect {type(exc).__name__}"] += 1
            return
        await _send_paced(ws, [subscribe], outcomes)
        while time.monotonic() < deadline and ws.close_code is None:
            if not await _send_paced(ws, [unsubscribe, subscribe], outcomes):
                await asyncio.sleep(0.5)
                continue
            await asyncio.sleep(2 / 18)
        await _ended(ws, outcomes, 15.0)

    await asyncio.gather(*(attacker() for _ in range(4)))
    after = await health(server)
    return [
        (
            "attack",
            f"4 connections that never read x (subscribe 50 tickers with 1m bars, then "
            f"unsubscribe + subscribe at 18 msg/s), {sizes.hostile_flood_seconds:g} s: "
            f"{shown(outcomes)}",
        ),
        ("server", f"slow_closed {before['slow_closed']} -> {after['slow_closed']}"),
    ]


async def resume_replay(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    outcomes: Counter[str] = Counter()
    tickers = LISTED[:20]
    # One reader holds the tickers while their history fills (100 updates/s each).
    async with connect(
        server.ws + "/ws", additional_headers={"Authorization": f"Bearer {token}"}
    ) as keeper:
        await keeper.send(json.dumps({"action": "subscribe", "tickers": tickers}))
        epochs: dict[str, str] = {}
        filled_until = time.monotonic() + 20.0
        while time.monotonic() < filled_until:
            with contextlib.suppress(TimeoutError):
                msg = json.loads(await asyncio.wait_for(keeper.recv(), 1.0))
                if msg.get("type") == "subscribed":
                    epochs = msg["epochs"]
        resume = {t: {"seq": 1, "epoch": epochs.get(t, "")} for t in tickers}
        request = json.dumps({"action": "subscribe", "tickers": tickers, "resume": resume})
        replayed_before = (await health(server))["replayed"]

        async def attacker() -> None:
            try:
                ws = await _open(server, token, reads=False)
            except (OSError, TimeoutError, WebSocketException) as exc:
                outcomes[f"connect {type(exc).__name__}"] += 1
                return
            await _send_paced(ws, [request], outcomes)
            await asyncio.sleep(sizes.hostile_flood_seconds / 2)
            await _ended(ws, outcomes, 15.0)

        await asyncio.gather(*(attacker() for _ in range(8)))
        replayed = (await health(server))["replayed"] - replayed_before
    return [
        (
            "attack",
            f"20 tickers at 100 updates/s for 20 s, then 8 connections that never read "
            f"resume all 20 from seq 1: {shown(outcomes)}; updates replayed to them "
            f"{replayed} (a whole replay would be up to {8 * 20 * 2000})",
        ),
    ]


async def ping_flood(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    outcomes: Counter[str] = Counter()
    pings = 0

    async def attacker() -> None:
        nonlocal pings
        try:
            ws = await _open(server, token)
        except (OSError, TimeoutError, WebSocketException) as exc:
            outcomes[f"connect {type(exc).__name__}"] += 1
            return
        deadline = time.monotonic() + sizes.hostile_flood_seconds
        try:
            while time.monotonic() < deadline:
                await ws.ping()
                pings += 1
                if pings % 50 == 0:
                    await asyncio.sleep(0)
        except ConnectionClosed:
            pass
        await _ended(ws, outcomes, 5.0)

    await asyncio.gather(*(attacker() for _ in range(20)))
    return [("attack", f"20 connections x WebSocket pings: {pings} sent, {shown(outcomes)}")]


async def ticker_share(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    outcomes: Counter[str] = Counter()
    held = 0
    sockets: list[ClientConnection] = []

    async def attacker(i: int) -> None:
        nonlocal held
        try:
            ws = await _open(server, token)
        except (InvalidStatus, OSError, TimeoutError, WebSocketException) as exc:
            outcomes[f"connect {type(exc).__name__}"] += 1
            return
        sockets.append(ws)
        mine = LISTED[(i * 50) % len(LISTED) :][:50]
        await ws.send(json.dumps({"action": "subscribe", "tickers": mine}))
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            async with asyncio.timeout(10):
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg.get("type") == "error":
                        outcomes[f"error {msg.get('code')}"] += 1
                    elif msg.get("type") == "subscribed":
                        held += len(msg["tickers"])
                        break

    await asyncio.gather(*(attacker(i) for i in range(20)))
    status = await health(server)
    for ws in sockets:
        await ws.close()
    return [
        (
            "attack",
            f"20 connections from {ATTACKER_IP} x 50 different listed tickers "
            f"({len(LISTED)} listed): {held} subscriptions held, {shown(outcomes)}; the "
            f"process holds {status['tickers']['held']} of {status['tickers']['max']}",
        ),
    ]


async def rest_interest(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    statuses: Counter[str] = Counter()
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER_IP)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url=server.base, headers=headers, timeout=10
    ) as http:
        pending = iter(LISTED[:300])

        async def asker() -> None:  # eight at a time; a first look waits for a quote
            for ticker in pending:
                response = await http.get(f"/api/quotes/{ticker}")
                body = response.json() if response.is_error else {}
                code = body.get("error", {}).get("code", "")
                statuses[f"{response.status_code} {code}".strip()] += 1

        await asyncio.gather(*(asker() for _ in range(8)))
    status = await health(server)
    return [
        (
            "attack",
            f"GET /api/quotes/T for 300 listed tickers nobody watches: {shown(statuses)}; "
            f"the process holds {status['tickers']['held']} tickers "
            f"({status['tickers']['lingering']} lingering) of {status['tickers']['max']}",
        ),
    ]


async def bars_abandon(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    outcomes: Counter[str] = Counter()
    before = (await health(server))["bars"]
    deadline = time.monotonic() + sizes.hostile_churn_seconds
    n = 0

    async def once(i: int) -> None:
        try:
            ws = await _open(server, token)
        except (InvalidStatus, OSError, TimeoutError, WebSocketException) as exc:
            outcomes[f"connect {type(exc).__name__}"] += 1
            return
        mine = LISTED[(i * 20) % len(LISTED) :][:20]
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"action": "subscribe", "tickers": mine, "bars": ["5m"]}))
        await ws.close()
        outcomes["left"] += 1

    while time.monotonic() < deadline:
        await asyncio.gather(*(once(n + i) for i in range(30)))
        n += 30
        await asyncio.sleep(1.0)
    await asyncio.sleep(2.0)
    after = (await health(server))["bars"]
    return [
        (
            "attack",
            f"30 connections/s subscribe 20 tickers with 5m bars and leave at once: "
            f"{shown(outcomes)}; books built {after['built'] - before['built']}, builds "
            f"cancelled {after.get('cancelled', 0) - before.get('cancelled', 0)}, books held "
            f"{after['books']}",
        ),
    ]


Attack = Callable[[ServerProc, str, "Sizes"], Awaitable[Rows]]
WS_ATTACKS: list[tuple[str, Attack, bool]] = [  # (name, attack, the floods' acceptance)
    ("reply-flood", reply_flood, True),
    ("resume-replay", resume_replay, True),
    ("ping-flood", ping_flood, True),
    ("ticker-share", ticker_share, False),
    ("rest-interest", rest_interest, False),
    ("bars-abandon", bars_abandon, False),
]
# Server arguments an attack needs besides `--source sim` (resume-replay: a history to
# replay, filled in seconds).
SERVER_ARGS = {"resume-replay": ["--sim-tick-interval", "0.01"]}
