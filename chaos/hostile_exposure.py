"""Hostile clients against identity, exposure and REST costs (issue 20), in the hostile set.

- scrape-flood: eight clients, each from its own loopback address (127.0.0.2-9), request
  `/api/ws/health` and `/metrics` as fast as they can for `hostile_flood_seconds`. Each
  address meets its status budget (429); what passes is rendered at most once a second.
  Reports statuses, requests/s, the renders the server did, and whether an answer named a
  watched ticker or the host (auth is on, no metrics token: counts only).
- forwarded-exempt: `X-Forwarded-For: 127.0.0.1` from 127.0.0.2, trying to pass as the
  exempt loopback peer: up to 300 WebSocket connections opened, 50 a second, each
  subscribing 50 listed tickers (25 the same for all, 25 of its own), then 300 REST
  requests. No
  proxy is trusted by default, so every per-IP limit applies: handshakes (429),
  subscriptions per address (a quarter of the process's tickers), new tickers per
  address, the REST rate.
- year-history: `/api/history/{T}?interval=1d&range=1y` (a year of source minutes for 366
  bars, ~100 ms of CPU each on the simulator) for 300 distinct listed tickers, 8 at a
  time: charged 22 tokens each, so 429 comes after two.
- dns-rebinding: requests and WebSocket handshakes naming `Host: evil.example:PORT` (as a
  page whose name was made to resolve to 127.0.0.1 would): 403 `host_not_allowed`, while
  the same with `localhost` works.

chaos/hostile.py runs each against a fresh server (auth on, default limits) with the
well-behaved client alongside and prints the server's RSS and CPU during and after.
Nothing here targets anything but 127.0.0.0/8, and every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import httpx
from stockfeed.sources.symbols import Directory
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from chaos.procs import ServerProc

if TYPE_CHECKING:
    from chaos.scenarios import Sizes

Rows = list[tuple[str, str]]
ATTACKER_IP = "127.0.0.2"  # not in the default exempt list, unlike 127.0.0.1
LISTED = Directory.bundled().symbols()  # tickers the simulator quotes
WATCHED = ("AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA")  # the good client's


def shown(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


async def metric(server: ServerProc, name: str) -> float:
    """A counter of the server's, read from the exempt loopback peer."""
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


async def scrape_flood(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    del token  # the status endpoints answer anyone
    statuses: Counter[str] = Counter()
    leaks: Counter[str] = Counter()
    deadline = time.monotonic() + sizes.hostile_flood_seconds
    renders_before = await metric(server, "stockfeed_status_renders_total")

    async def scraper(ip: str) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=ip)
        async with httpx.AsyncClient(transport=transport, base_url=server.base, timeout=10) as http:
            paths = ("/api/ws/health", "/metrics")
            n = 0
            while time.monotonic() < deadline:
                n += 1
                try:
                    response = await http.get(paths[n % 2])
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                    continue
                statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    text = response.text
                    if socket.gethostname() in text:
                        leaks["host name"] += 1
                    if any(f'"{t}"' in text or f'ticker="{t}"' in text for t in WATCHED):
                        leaks["ticker"] += 1

    started = time.monotonic()
    await asyncio.gather(*(scraper(f"127.0.0.{i}") for i in range(2, 10)))
    took = time.monotonic() - started
    renders = await metric(server, "stockfeed_status_renders_total") - renders_before
    total = sum(statuses.values())
    return [
        ("refusals", f"HTTP {shown(statuses)}"),
        (
            "attack",
            f"8 addresses x /api/ws/health + /metrics as fast as answered, {took:.1f} s: "
            f"{total} requests ({total / took:.0f}/s), {renders:.0f} renders "
            f"({renders / took:.1f}/s); answers naming a watched ticker or the host: "
            f"{shown(leaks)}",
        ),
    ]


async def forwarded_exempt(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    forged = {"X-Forwarded-For": "127.0.0.1", "Authorization": f"Bearer {token}"}
    outcomes: Counter[str] = Counter()
    held = 0
    sockets: list[ClientConnection] = []
    deadline = time.monotonic() + sizes.hostile_flood_seconds
    tickers = itertools.cycle(LISTED[25:])

    async def one() -> None:
        nonlocal held
        try:
            ws = await connect(
                server.ws + "/ws",
                additional_headers=forged,
                local_addr=(ATTACKER_IP, 0),
                open_timeout=10,
                close_timeout=1,
                ping_interval=None,
                max_size=2**22,
            )
        except InvalidStatus as exc:
            outcomes[f"HTTP {exc.response.status_code}"] += 1
            return
        except (OSError, TimeoutError, WebSocketException) as exc:
            outcomes[f"connect {type(exc).__name__}"] += 1
            return
        sockets.append(ws)
        batch = LISTED[:25] + [next(tickers) for _ in range(25)]
        try:
            await ws.send(json.dumps({"action": "subscribe", "tickers": batch}))
            while time.monotonic() < deadline:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg["type"] == "error":
                    outcomes[f"error {msg['code']}"] += 1
                elif msg["type"] == "subscribed":
                    held += len(msg["tickers"])
                    outcomes["subscribed"] += 1
                    return
        except (ConnectionClosed, TimeoutError):
            outcomes[f"close {ws.close_code}"] += 1

    for _ in range(min(300, sizes.hostile_conns)):  # one handshake every 20 ms at most
        if time.monotonic() >= deadline:
            break
        await one()
        await asyncio.sleep(0.02)
    rest: Counter[str] = Counter()
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER_IP)
    async with httpx.AsyncClient(
        transport=transport, base_url=server.base, headers=forged, timeout=10
    ) as http:
        for _ in range(300):
            rest[str((await http.get("/api/tickers")).status_code)] += 1
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return [
        ("refusals", f"WebSocket: {shown(outcomes)}; REST: HTTP {shown(rest)}"),
        (
            "attack",
            f"`X-Forwarded-For: 127.0.0.1` from {ATTACKER_IP}: {len(sockets)} connections "
            f"accepted, {held} subscriptions held in all (the per-address cap is a quarter "
            f"of the process's tickers); 300 REST requests",
        ),
    ]


async def year_history(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    statuses: Counter[str] = Counter()
    times: list[float] = []
    queue = iter(LISTED[: sizes.hostile_rest_requests])
    transport = httpx.AsyncHTTPTransport(
        local_address=ATTACKER_IP, limits=httpx.Limits(max_connections=8)
    )
    async with httpx.AsyncClient(
        transport=transport,
        base_url=server.base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ) as http:

        async def worker() -> None:
            for ticker in queue:
                started = time.monotonic()
                try:
                    response = await http.get(
                        f"/api/history/{ticker}", params={"interval": "1d", "range": "1y"}
                    )
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                times.append(time.monotonic() - started)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(8)))
        took = time.monotonic() - started
    return [
        ("refusals", f"HTTP {shown(statuses)}"),
        (
            "attack",
            f"{len(times)} x /api/history/<listed ticker>?interval=1d&range=1y, 8 at a time: "
            f"{took:.1f} s, per request median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms",
        ),
    ]


async def dns_rebinding(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    del sizes
    evil = f"evil.example:{server.port}"
    http_statuses: Counter[str] = Counter()
    ws_statuses: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        for path in ("/", "/api/ws/health", "/metrics", "/api/tickers", "/docs") * 20:
            response = await http.get(path, headers={"Host": evil})
            code = response.json()["error"]["code"] if response.status_code == 403 else ""
            http_statuses[f"{response.status_code} {code}".strip()] += 1
        local = await http.get("/api/ws/health", headers={"Host": f"localhost:{server.port}"})

    async def handshake(host: str, path: str) -> str:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            async with connect(
                f"ws://{host}{path}?access_token={token}", sock=sock, origin=f"http://{host}"
            ) as ws:  # type: ignore[arg-type]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 5)
                return "accepted"
        except InvalidStatus as exc:
            body = json.loads(exc.response.body or b"{}")
            return f"{exc.response.status_code} {body.get('error', {}).get('code', '')}"
        finally:
            sock.close()

    for path in ("/ws", "/ws/stocks/AAPL") * 10:
        ws_statuses[await handshake(evil, path)] += 1
    local_ws = await handshake(f"localhost:{server.port}", "/ws/stocks/AAPL")
    return [
        ("refusals", f"HTTP {shown(http_statuses)}; WebSocket {shown(ws_statuses)}"),
        (
            "attack",
            f"100 requests and 20 handshakes with `Host: {evil}` and its origin; the same "
            f"with `Host: localhost`: HTTP {local.status_code}, WebSocket {local_ws}",
        ),
    ]


Attack = Callable[[ServerProc, str, "Sizes"], Awaitable[Rows]]
# (name, attack, the floods' acceptance applies): registered in chaos/hostile.py's ATTACKS.
EXPOSURE_ATTACKS: list[tuple[str, Attack, bool]] = [
    ("scrape-flood", scrape_flood, True),
    ("forwarded-exempt", forwarded_exempt, True),
    ("year-history", year_history, True),
    ("dns-rebinding", dns_rebinding, False),
]
