"""Hostile HTTP clients (issue 20, "every connection must make progress"): two attacks on
the HTTP side, registered in chaos/hostile.py's ATTACKS and measured like the others.

- pipelined: three sockets each write 3 MB of pipelined `GET /nope HTTP/1.1` requests and
  never read an answer (plain sockets: nothing reads on the attacker's side, not even a
  library's buffer). Before issue 20 the server parsed all of it into memory (+38 MiB,
  never given back). It should read one request at a time and reset a client that takes
  none of its answers (STOCKFEED_HTTP_WRITE_TIMEOUT).
- slow-body: 40 sockets send a request head with `Content-Length: 1000000`, then a body
  byte every 3 s, for 30 s. Before issue 20 none was ever closed, and enough of them fill
  the process's connection cap. Each should be answered and closed at the body deadline
  (STOCKFEED_HTTP_BODY_TIMEOUT).

Each returns rows for the report; a row whose value starts with "NO: " fails the run
(an acceptance of issue 20 not met). Attackers connect from 127.0.0.2 (not exempt from the
per-IP limits by default); nothing here targets anything but 127.0.0.0/8, and every loop is
bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from collections import Counter
from typing import TYPE_CHECKING

from chaos.procs import ServerProc

if TYPE_CHECKING:
    from chaos.scenarios import Sizes

Rows = list[tuple[str, str]]
MB = 1024 * 1024
ATTACKER_IP = "127.0.0.2"  # as in chaos/hostile.py

PIPELINED_SOCKETS = 3
PIPELINED_BYTES = 3_000_000
PIPELINED_SECONDS = 45.0  # the longest the attack waits for the server to let go
PIPELINED_REQUEST = b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
MAX_GROWTH_PER_CONNECTION_MIB = 20  # the acceptance of issue 20

SLOW_BODY_SOCKETS = 40
SLOW_BODY_SECONDS = 30.0  # the acceptance of issue 20: closed within this
SLOW_BODY_HEAD = (
    b"POST /api/quotes/AAPL HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n"
)
TCP_ESTABLISHED = 1  # tcpi_state


def tcp_state(sock: socket.socket) -> int:
    """The kernel's state of the connection, read without reading from it (a client that
    never reads still sees the server's reset here)."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    except OSError:
        return 0


def spread(values: list[float]) -> str:
    got = sorted(values)
    return f"{got[0]:.1f} / {statistics.median(got):.1f} / {got[-1]:.1f} s (first/median/last)"


async def pipelined(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    del token, sizes  # plain sockets, no token; fixed size: the figures of issue 20
    loop = asyncio.get_running_loop()
    flood = PIPELINED_REQUEST * (PIPELINED_BYTES // len(PIPELINED_REQUEST))
    rss_before = server.rss()
    rss_peak = rss_before
    socks: list[socket.socket] = []
    for _ in range(PIPELINED_SOCKETS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((ATTACKER_IP, 0))
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", server.port)), 10)
        socks.append(sock)
    sent = [0] * len(socks)
    send_ends: Counter[str] = Counter()

    async def send(i: int) -> None:
        view = memoryview(flood)
        try:
            while sent[i] < len(flood):
                piece = view[sent[i] : sent[i] + 65536]
                await loop.sock_sendall(socks[i], piece)
                sent[i] += len(piece)
            send_ends["all sent"] += 1
        except OSError as exc:
            send_ends[type(exc).__name__] += 1

    senders = [asyncio.create_task(send(i)) for i in range(len(socks))]
    started = time.monotonic()
    dropped: dict[int, float] = {}
    while len(dropped) < len(socks) and time.monotonic() - started < PIPELINED_SECONDS:
        await asyncio.sleep(0.5)
        rss_peak = max(rss_peak, server.rss())
        for i, sock in enumerate(socks):
            if i not in dropped and tcp_state(sock) != TCP_ESTABLISHED:
                dropped[i] = time.monotonic() - started
    for task in senders:
        task.cancel()
    await asyncio.gather(*senders, return_exceptions=True)
    for sock in socks:
        sock.close()
    growth = (rss_peak - rss_before) / MB
    per_connection = growth / len(socks)
    when = spread(list(dropped.values())) if dropped else "none"
    rows: Rows = [
        (
            "refusals",
            f"connections reset by the server: {len(dropped)} of {len(socks)}, after {when}",
        ),
        (
            "attack",
            f"{len(socks)} sockets from {ATTACKER_IP} each writing "
            f"{PIPELINED_BYTES / 1e6:g} MB of pipelined GET /nope, never reading: "
            f"{sum(sent) / 1e6:.1f} MB taken by the server's sockets (64 KB steps); senders: "
            f"{dict(send_ends) or 'still blocked when stopped'}",
        ),
        (
            "server RSS per attacking connection",
            f"+{per_connection:.1f} MiB (peak +{growth:.1f} MiB for {len(socks)})",
        ),
    ]
    problems = []
    if per_connection >= MAX_GROWTH_PER_CONNECTION_MIB:
        problems.append(f"+{per_connection:.1f} MiB per connection")
    if len(dropped) < len(socks):
        problems.append(f"{len(socks) - len(dropped)} never-reading connections kept")
    if problems:
        rows.append(("pipelined acceptance", "NO: " + "; ".join(problems)))
    return rows


async def slow_body(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    del token, sizes  # plain sockets; fixed size: the figures of issue 20
    started = time.monotonic()
    deadline = started + SLOW_BODY_SECONDS
    closed_after: list[float] = []
    answers: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", server.port, local_addr=(ATTACKER_IP, 0)),
                10,
            )
        except (OSError, TimeoutError) as exc:
            failures[type(exc).__name__] += 1
            return
        writers.append(writer)
        opened = time.monotonic()

        async def trickle() -> None:
            writer.write(SLOW_BODY_HEAD)
            while time.monotonic() < deadline:  # a body byte every 3 s, never the end
                await asyncio.sleep(3.0)
                writer.write(b"a")

        sender = asyncio.create_task(trickle())
        try:
            first = b""
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                while chunk := await reader.read(4096):  # the answer, then the close
                    first = first or chunk
            answers[first.split(b"\r\n", 1)[0].decode(errors="replace") or "EOF"] += 1
            closed_after.append(time.monotonic() - opened)
        except TimeoutError:
            pass  # still open when the attack ends
        except OSError as exc:
            answers[type(exc).__name__] += 1
            closed_after.append(time.monotonic() - opened)
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    await asyncio.gather(*(one() for _ in range(SLOW_BODY_SOCKETS)))
    for writer in writers:
        with contextlib.suppress(Exception):
            writer.transport.abort()
    closed = len(closed_after)
    shown = ", ".join(f"{k!r} {v}" for k, v in sorted(answers.items())) or "none"
    when = f", after {spread(closed_after)}" if closed_after else ""
    rows: Rows = [
        ("refusals", f"server answers: {shown}; connect failures: {dict(failures) or 0}"),
        (
            "attack",
            f"{SLOW_BODY_SOCKETS} sockets from {ATTACKER_IP}: a head with Content-Length "
            f"1000000, then a body byte every 3 s, {SLOW_BODY_SECONDS:g} s; "
            f"{closed} of {SLOW_BODY_SOCKETS} closed by the server{when}",
        ),
    ]
    if closed < SLOW_BODY_SOCKETS:
        rows.append(
            (
                "slow-body acceptance",
                f"NO: {SLOW_BODY_SOCKETS - closed} sockets still open after "
                f"{SLOW_BODY_SECONDS:g} s",
            )
        )
    return rows
