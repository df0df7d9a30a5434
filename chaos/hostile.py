"""Hostile clients (issue 11, "Bounded by design"; issue 20): a fresh server for each attack.

- ticker-flood: four `/ws` connections of one authorised client each subscribe 50 new
  made-up tickers and unsubscribe them, 7 times a second (14 messages/s, under the
  per-connection 20/s), for 20 s: ~28,000 tickers asked for.
- rest-flood: 300 `/api/history/{T}?interval=1m&range=5d`, each another ticker, 8 at a time.
- slowloris: 500 sockets send a request line, then a header byte every 3 s; 500 send nothing;
  12 s (a server should let go of them sooner).
- churn: three connections subscribe and unsubscribe the good client's own tickers, as
  fast as the message rate allows (19 messages/s each), 8 s.
- many-conns: 1,000 WebSocket connections from one IP, each retrying once a second, 8 s.
- scrape-flood, forwarded-exempt, year-history, dns-rebinding: client identity, health and
  metrics exposure, REST costs and Host names (chaos/hostile_exposure.py).
- pipelined, slow-body: HTTP connections that never read their answers, and request
  bodies sent a byte every 3 s (chaos/hostile_http.py).

The attackers connect from 127.0.0.2, the well-behaved client (chaos/watcher.py, a process
of its own) from 127.0.0.1. Loopback 127.0.0.1 is exempt from the per-IP limits by default
(STOCKFEED_LIMIT_EXEMPT_IPS), 127.0.0.2 is not: the attacks meet the limits a real client
would, on default settings. Each server runs `--source sim` (1 s ticks) with auth on: an
HS256 secret made for the run, a token for the attacker and one for the good client.

The server's RSS (VmRSS) and CPU (utime + stime) are sampled every 0.5 s from /proc from
before the attack until 15 s after it stopped. The table: RSS before the attack, its peak
until the end, the growth, at the end; CPU % (100 = one core) mean during the attack, the
busiest second, the 2 s ending 10 s after it stopped; the good client from the attack's
start to the end: p99 and max of arrival - `timestamp` of its updates, the longest wait
for the next update of one of its tickers (they tick every second), updates lost without
a gap snapshot saying so (silent gaps, in seqs), duplicates, gap snapshots. The floods
fail the run unless RSS grows < 100 MiB, CPU is < 20 % 10 s after, p99 < 10 ms and the good
client keeps its stream; the others, unless it keeps its stream.

Nothing here targets anything but 127.0.0.0/8, and every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import jwt
from bench.procstat import cpu_seconds, rss_bytes
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from chaos.hostile_exposure import EXPOSURE_ATTACKS
from chaos.hostile_http import pipelined, slow_body
from chaos.hostile_ws import SERVER_ARGS, WS_ATTACKS
from chaos.procs import ROOT, ServerProc, free_port

if TYPE_CHECKING:
    from chaos.scenarios import Sizes

Rows = list[tuple[str, str]]
MB = 1024 * 1024
ATTACKER_IP = "127.0.0.2"  # not in the default exempt list, unlike 127.0.0.1
DEFAULT_TICKERS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"]
BASELINE_S = 2.0
SAMPLE_S = 0.5
# The acceptance of the issue, for the two floods.
MAX_RSS_GROWTH_MIB = 100
MAX_CPU_AFTER = 20.0  # % of one core, 10 s after the flood stopped
MAX_P99_MS = 10.0


def mint(secret: str, sub: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + 3600}, secret, algorithm="HS256")


def progress(text: str) -> None:
    print(f"  hostile: {text}", file=sys.stderr, flush=True)


# --- measuring the server -------------------------------------------------------------------


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Meter:
    """RSS and CPU time of the server's processes every 0.5 s, in a thread of its own (the
    attack keeps the harness's event loop busy)."""

    def __init__(self, pids: list[int], limit_s: float = 900.0) -> None:
        self.pids = pids
        self.limit_s = limit_s
        self.samples: list[tuple[float, int, float]] = []  # (epoch s, rss bytes, cpu s)
        self.fds: list[tuple[float, int]] = []  # (epoch s, open file descriptors)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meter", daemon=True)

    def _run(self) -> None:
        ends = time.monotonic() + self.limit_s
        while not self._stop.is_set() and time.monotonic() < ends:
            rss, cpu = rss_bytes(self.pids), cpu_seconds(self.pids)
            fds = sum(open_fds(pid) for pid in self.pids)
            now = time.time()  # after the reads: a sample stamped before t0 is all before t0
            self.samples.append((now, rss, cpu))
            self.fds.append((now, fds))
            self._stop.wait(SAMPLE_S)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def rss_at(self, t: float) -> int:
        before = [rss for ts, rss, _ in self.samples if ts <= t]
        return before[-1] if before else self.samples[0][1]

    def fds_summary(self, t0: float, t1: float) -> str:
        before = [n for ts, n in self.fds if ts <= t0] or [0]
        inside = [n for ts, n in self.fds if t0 <= ts <= t1] or [0]
        return f"{before[-1]} / {max(inside)} / {self.fds[-1][1] if self.fds else 0}"

    def rss_peak(self, t0: float, t1: float) -> int:
        return max((rss for ts, rss, _ in self.samples if t0 <= ts <= t1), default=0)

    def cpu(self, t0: float, t1: float) -> float:
        """Mean CPU % (100 = one core) between the samples nearest inside [t0, t1]."""
        inside = [(ts, cpu) for ts, _, cpu in self.samples if t0 - 0.25 <= ts <= t1 + 0.25]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return float("nan")
        (a_t, a_cpu), (b_t, b_cpu) = inside[0], inside[-1]
        return 100.0 * (b_cpu - a_cpu) / (b_t - a_t)

    def cpu_peak(self, t0: float, t1: float) -> float:
        """The busiest second (two sample intervals) in [t0, t1]."""
        inside = [(ts, cpu) for ts, _, cpu in self.samples if t0 <= ts <= t1]
        rates = [
            100.0 * (b[1] - a[1]) / (b[0] - a[0])
            for a, b in zip(inside, inside[2:], strict=False)
            if b[0] > a[0]
        ]
        return max(rates, default=float("nan"))


class WatcherProc:
    """chaos/watcher.py in its own process: the well-behaved client."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, url: str, token: str) -> None:
        env = {**os.environ, "CHAOS_TOKEN": token}
        self.proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "chaos.watcher", url),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            cwd=ROOT,
            limit=2**26,  # the result is one (long) JSON line
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"the well-behaved client did not subscribe: {line!r}")

    async def result(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        await asyncio.wait_for(self.proc.wait(), 10)
        body: dict[str, Any] = json.loads(line)
        return body

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


@dataclass
class Seen:
    """What the well-behaved client saw from the attack's start to the end of the after-window."""

    p99_ms: float
    max_ms: float
    samples: int
    max_silence_s: float
    missing: int
    duplicates: int
    gap_snapshots: int
    connects: int
    closes: dict[str, int]
    rest_count: int
    rest_p99_ms: float
    rest_bad: Counter[str]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seen(result: dict[str, Any], t0: float, t1: float) -> Seen:
    updates = result["updates"]
    latencies = [ms for ts, ms, _ in updates if t0 <= ts <= t1]
    # Longest wait between two updates of one ticker (sim ticks each every second): a
    # stalled updater shows here even when each update, once published, is delivered fast.
    silence = 0.0
    for ticker in DEFAULT_TICKERS:
        times = [ts for ts, _, t in updates if t == ticker and ts <= t1]
        last = max((ts for ts in times if ts < t0), default=t0)
        for ts in (ts for ts in times if ts >= t0):
            silence = max(silence, ts - last)
            last = ts
        silence = max(silence, t1 - last)
    rest = [(ms, status) for ts, ms, status in result["rest"] if t0 <= ts <= t1]
    return Seen(
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies, default=float("nan")),
        samples=len(latencies),
        max_silence_s=silence,
        missing=result["missing"],
        duplicates=result["duplicates"],
        gap_snapshots=result["gap_snapshots"],
        connects=result["connects"],
        closes=result["closes"],
        rest_count=len(rest),
        rest_p99_ms=percentile([ms for ms, _ in rest], 0.99),
        rest_bad=Counter(str(status) for _, status in rest if status != 200),
    )


# --- the attacks ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the attacker got back: error codes, close codes, HTTP statuses, ..."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def read(self, raw: str | bytes) -> None:
        text = raw if isinstance(raw, str) else raw.decode(errors="replace")
        if '"error"' in text or '"subscribed"' in text or '"unsubscribed"' in text:
            msg = json.loads(text)
            kind = msg.get("type")
            if kind == "error":
                self.counts[f"error {msg.get('code')}"] += 1
            else:
                self.counts[str(kind)] += 1
        elif '"snapshot"' in text:
            self.counts["snapshot"] += 1
        else:
            self.counts["other messages"] += 1

    def closed(self, ws: ClientConnection) -> None:
        if ws.close_code is not None:
            self.counts[f"close {ws.close_code}"] += 1

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, InvalidStatus):
            self.counts[f"HTTP {exc.response.status_code}"] += 1
        else:
            self.counts[f"connect {type(exc).__name__}"] += 1

    def pick(self, *prefixes: str) -> str:
        shown = [f"{k} {v}" for k, v in sorted(self.counts.items()) if k.startswith(prefixes)]
        return ", ".join(shown) if shown else "none"


async def ws_open(server: ServerProc, token: str) -> ClientConnection:
    return await connect(
        server.ws + "/ws",
        additional_headers={"Authorization": f"Bearer {token}"},
        local_addr=(ATTACKER_IP, 0),
        open_timeout=10,
        close_timeout=1,
        ping_interval=None,
        compression=None,
        max_size=2**22,
    )


async def drain(ws: ClientConnection, tally: Tally) -> None:
    try:
        async for raw in ws:
            tally.read(raw)
    except ConnectionClosed:
        pass


async def paced_session(
    server: ServerProc,
    token: str,
    tally: Tally,
    deadline: float,
    per_second: float,
    messages: Callable[[], list[dict[str, Any]]],
    max_connects: int = 20,
) -> None:
    """One hostile connection sending `messages()` `per_second` times a second until the
    deadline, reading all it is sent; reconnects (at most `max_connects` times) when closed."""
    for _ in range(max_connects):
        if time.monotonic() >= deadline:
            return
        try:
            ws = await ws_open(server, token)
        except (OSError, TimeoutError, WebSocketException) as exc:
            tally.failed(exc)
            await asyncio.sleep(1.0)
            continue
        tally.add("connections")
        reader = asyncio.create_task(drain(ws, tally))
        try:
            due = time.monotonic()
            while time.monotonic() < deadline and not reader.done():
                for msg in messages():
                    await ws.send(json.dumps(msg))
                    tally.add("messages sent")
                due += 1.0 / per_second
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        except ConnectionClosed:
            pass
        finally:
            await ws.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(reader, return_exceptions=True), 5)
            tally.closed(ws)


async def ticker_flood(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    tally = Tally()
    names = (f"ZQ{n:06d}" for n in itertools.count())  # valid, made up, never seen before
    asked = 0

    def cycle() -> list[dict[str, Any]]:
        nonlocal asked
        batch = [next(names) for _ in range(50)]
        asked += len(batch)
        return [
            {"action": "subscribe", "tickers": batch},
            {"action": "unsubscribe", "tickers": batch},
        ]

    deadline = time.monotonic() + sizes.hostile_flood_seconds
    await asyncio.gather(
        *(paced_session(server, token, tally, deadline, 7.0, cycle) for _ in range(4))
    )
    refused = sum(v for k, v in tally.counts.items() if k.startswith("error "))
    return [
        (
            "refusals",
            tally.pick("error new_ticker_rate", "error ticker_limit", "error subscription_limit"),
        ),
        (
            "attack",
            f"4 connections x 7 subscribe+unsubscribe of 50 new tickers/s, "
            f"{sizes.hostile_flood_seconds:g} s: {asked} tickers asked, {refused} refused "
            f"({tally.pick('error ')}); {tally.counts['connections']} connects, "
            f"closes: {tally.pick('close ', 'HTTP ', 'connect ')}",
        ),
    ]


async def rest_flood(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    statuses: Counter[str] = Counter()
    times: list[float] = []
    tickers = iter([f"ZR{n:05d}" for n in range(sizes.hostile_rest_requests)])
    deadline = time.monotonic() + 120
    transport = httpx.AsyncHTTPTransport(
        local_address=ATTACKER_IP, limits=httpx.Limits(max_connections=8)
    )
    async with httpx.AsyncClient(
        transport=transport,
        base_url=server.base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as http:

        async def worker() -> None:
            for ticker in tickers:
                if time.monotonic() >= deadline:
                    statuses["not sent (120 s bound)"] += 1
                    continue
                started = time.monotonic()
                try:
                    response = await http.get(
                        f"/api/history/{ticker}", params={"interval": "1m", "range": "5d"}
                    )
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                times.append(time.monotonic() - started)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(8)))
        took = time.monotonic() - started
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    return [
        ("refusals", f"HTTP {shown}"),
        (
            "attack",
            f"{sizes.hostile_rest_requests} x /api/history/<new ticker>?interval=1m&range=5d, "
            f"8 at a time: {took:.1f} s, per request median "
            f"{statistics.median(times) * 1000 if times else float('nan'):.0f} ms, "
            f"max {max(times, default=float('nan')) * 1000:.0f} ms",
        ),
    ]


async def slowloris(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    del token  # plain sockets: they never get as far as a token
    seconds = sizes.hostile_slow_seconds
    started = time.monotonic()
    deadline = started + seconds
    closed_after: dict[str, list[float]] = {"partial": [], "silent": []}
    answers: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    writers: list[asyncio.StreamWriter] = []

    async def one(kind: str) -> None:
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
            writer.write(b"GET /api/ws/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            while time.monotonic() < deadline:  # a header byte every 3 s, never the end
                await asyncio.sleep(3.0)
                writer.write(b"a")

        sender = asyncio.create_task(trickle()) if kind == "partial" else None
        try:
            remaining = max(0.0, deadline - time.monotonic())
            data = await asyncio.wait_for(reader.read(256), remaining)
            # The server answered (408, 400, ...) or closed: either way it let go.
            answers[data.split(b"\r\n", 1)[0].decode(errors="replace") or "EOF"] += 1
            closed_after[kind].append(time.monotonic() - opened)
        except TimeoutError:
            pass  # still open when the attack ends
        except OSError as exc:
            answers[type(exc).__name__] += 1
            closed_after[kind].append(time.monotonic() - opened)
        finally:
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)

    n = sizes.hostile_slow_sockets
    tasks = [asyncio.create_task(one(k)) for k in ("partial", "silent") for _ in range(n)]
    await asyncio.gather(*tasks)
    for writer in writers:
        writer.transport.abort()

    def when(kind: str) -> str:
        got = sorted(closed_after[kind])
        if not got:
            return f"{kind}: 0 of {n} closed by the server"
        return (
            f"{kind}: {len(got)} of {n} closed by the server, after "
            f"{got[0]:.1f} / {statistics.median(got):.1f} / {got[-1]:.1f} s (first/median/last)"
        )

    shown = ", ".join(f"{k!r} {v}" for k, v in sorted(answers.items())) or "none"
    return [
        ("refusals", f"server answers: {shown}; connect failures: {dict(failures) or 0}"),
        (
            "attack",
            f"{n} sockets sending a header byte every 3 s + {n} silent ones, "
            f"{seconds:g} s; {when('partial')}; {when('silent')}",
        ),
    ]


async def churn(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    tally = Tally()
    flip = itertools.cycle(("subscribe", "unsubscribe"))

    def toggle() -> list[dict[str, Any]]:
        return [{"action": next(flip), "tickers": DEFAULT_TICKERS}]

    deadline = time.monotonic() + sizes.hostile_churn_seconds
    await asyncio.gather(
        *(paced_session(server, token, tally, deadline, 19.0, toggle) for _ in range(3))
    )
    return [
        ("refusals", tally.pick("error ", "close 1008", "close 44")),
        (
            "attack",
            f"3 connections x 19 subscribe/unsubscribe of the good client's 6 tickers a second, "
            f"{sizes.hostile_churn_seconds:g} s: {tally.counts['messages sent']} sent, "
            f"{tally.counts['subscribed']} subscribed + {tally.counts['unsubscribed']} "
            f"unsubscribed acks, {tally.counts['snapshot']} snapshots; "
            f"closes: {tally.pick('close ', 'HTTP ', 'connect ')}",
        ),
    ]


async def many_connections(server: ServerProc, token: str, sizes: Sizes) -> Rows:
    tally = Tally()
    seconds = sizes.hostile_conn_seconds
    deadline = time.monotonic() + seconds
    gate = asyncio.Semaphore(100)  # handshakes in flight at once
    open_now = 0
    open_peak = 0

    async def slot() -> None:
        nonlocal open_now, open_peak
        for _ in range(int(seconds) + 1):  # one attempt a second at most
            if time.monotonic() >= deadline:
                return
            tried = time.monotonic()
            try:
                async with gate:
                    ws = await ws_open(server, token)
            except (OSError, TimeoutError, WebSocketException) as exc:
                tally.failed(exc)
            else:
                tally.add("accepted")
                open_now += 1
                open_peak = max(open_peak, open_now)
                try:
                    await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL"]}))
                    remaining = max(0.0, deadline - time.monotonic())
                    await asyncio.wait_for(drain(ws, tally), remaining)
                except (TimeoutError, ConnectionClosed):
                    pass
                finally:
                    open_now -= 1
                    await ws.close()
                    tally.closed(ws)
            await asyncio.sleep(max(0.0, tried + 1.0 - time.monotonic()))

    await asyncio.gather(*(slot() for _ in range(sizes.hostile_conns)))
    attempts = sum(
        v for k, v in tally.counts.items() if k == "accepted" or k.startswith(("HTTP ", "connect "))
    )
    return [
        ("refusals", tally.pick("HTTP ", "close 4", "error too_many", "connect ")),
        (
            "attack",
            f"{sizes.hostile_conns} sockets from {ATTACKER_IP}, retrying once a second, "
            f"{seconds:g} s: {attempts} handshakes, {tally.counts['accepted']} accepted, "
            f"{open_peak} open at once at most; closes: {tally.pick('close ')}",
        ),
    ]


Attack = Callable[[ServerProc, str, "Sizes"], Awaitable[Rows]]
ATTACKS: list[tuple[str, Attack, bool]] = [  # (name, attack, the floods' acceptance applies)
    ("ticker-flood", ticker_flood, True),
    ("rest-flood", rest_flood, True),
    ("slowloris", slowloris, False),
    ("churn", churn, False),
    ("many-conns", many_connections, False),
    *EXPOSURE_ATTACKS,  # identity, exposure, REST costs, Host names: chaos/hostile_exposure.py
    *WS_ATTACKS,  # the one accounted write path and the ticker budgets: chaos/hostile_ws.py
    ("pipelined", pipelined, True),  # chaos/hostile_http.py
    ("slow-body", slow_body, False),
]


# --- one scenario, then the set -----------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    flood: bool
    rss_before: int
    rss_peak: int
    rss_end: int
    cpu_during: float
    cpu_peak: float
    cpu_after: float
    attack_s: float
    good: Seen
    details: Rows
    alive: bool
    tracebacks: int
    load: float  # the machine's 1-minute load average when the attack stopped
    fds: str  # the server's open file descriptors: before / peak / end

    def problems(self) -> list[str]:
        out: list[str] = []
        good = self.good
        if not self.alive:
            out.append("server died")
        if good.missing:
            out.append(f"{good.missing} updates lost silently")
        if good.duplicates:
            out.append(f"{good.duplicates} duplicates")
        if good.connects != 1:
            out.append(f"good client connected {good.connects} times")
        if self.flood:
            growth = (self.rss_peak - self.rss_before) / MB
            if growth >= MAX_RSS_GROWTH_MIB:
                out.append(f"RSS +{growth:.0f} MiB (under {MAX_RSS_GROWTH_MIB})")
            if not self.cpu_after < MAX_CPU_AFTER:
                out.append(f"CPU {self.cpu_after:.0f} % at +10 s (under {MAX_CPU_AFTER:.0f})")
            if not good.p99_ms < MAX_P99_MS:
                out.append(f"p99 {good.p99_ms:.1f} ms (under {MAX_P99_MS:.0f})")
        return out


async def run_one(name: str, attack: Attack, flood: bool, sizes: Sizes, secret: str) -> Outcome:
    server = ServerProc(
        f"hostile-{name}",
        free_port(),
        ["--source", "sim", *SERVER_ARGS.get(name, [])],
        env={"STOCKFEED_AUTH_SECRET": secret},
    )
    watcher = WatcherProc()
    meter: Meter | None = None
    try:
        await asyncio.to_thread(server.wait_ready)
        await watcher.start(server.ws, mint(secret, "good-client"))
        meter = Meter(server.pids())
        meter.start()
        await asyncio.sleep(BASELINE_S)
        t0 = time.time()
        details = await attack(server, mint(secret, "hostile-client"), sizes)
        t1 = time.time()
        load = os.getloadavg()[0]
        await asyncio.sleep(sizes.hostile_after_seconds)
        t2 = time.time()
        result = await watcher.result()
        meter.stop()
        alive = server.proc.poll() is None
        return Outcome(
            name=name,
            flood=flood,
            rss_before=meter.rss_at(t0),
            rss_peak=max(meter.rss_peak(t0, t2), meter.rss_at(t0)),
            rss_end=meter.rss_at(t2),
            cpu_during=meter.cpu(t0, t1),
            cpu_peak=meter.cpu_peak(t0, t2),
            cpu_after=meter.cpu(t1 + 8.0, t1 + 10.0),
            attack_s=t1 - t0,
            good=seen(result, t0, t2),
            details=details,
            alive=alive,
            tracebacks=sum("Traceback" in p for p in server.log_problems()),
            load=load,
            fds=meter.fds_summary(t0, t2),
        )
    finally:
        if meter is not None:
            meter.stop()
        watcher.kill()
        await asyncio.to_thread(server.stop, timeout=5.0)


# (header, width); "|" separates the groups: the attack, RSS, CPU, the good client.
COLUMNS = (
    ("attack s", 8),
    ("|", 1),
    ("RSS MiB before", 14),
    ("peak", 5),
    ("delta", 6),
    ("end", 5),
    ("|", 1),
    ("CPU% during", 11),
    ("peak", 5),
    ("+10s", 5),
    ("|", 1),
    ("good p99 ms", 11),
    ("max ms", 7),
    ("silence s", 9),
    ("silent gaps", 11),
    ("dups", 4),
    ("gap snaps", 9),
)


def line(values: list[str]) -> str:
    cells = iter(values)
    return " ".join("|" if h == "|" else next(cells).rjust(w) for h, w in COLUMNS)


def report(outcomes: list[Outcome]) -> Rows:
    rows: Rows = [("scenario", line([h for h, _ in COLUMNS if h != "|"]))]
    for o in outcomes:
        g = o.good
        rows.append(
            (
                o.name,
                line(
                    [
                        f"{o.attack_s:.1f}",
                        f"{o.rss_before / MB:.0f}",
                        f"{o.rss_peak / MB:.0f}",
                        f"{(o.rss_peak - o.rss_before) / MB:+.0f}",
                        f"{o.rss_end / MB:.0f}",
                        f"{o.cpu_during:.0f}",
                        f"{o.cpu_peak:.0f}",
                        f"{o.cpu_after:.0f}",
                        f"{g.p99_ms:.1f}",
                        f"{g.max_ms:.1f}",
                        f"{g.max_silence_s:.1f}",
                        f"{g.missing}",
                        f"{g.duplicates}",
                        f"{g.gap_snapshots}",
                    ]
                ),
            )
        )
    for o in outcomes:
        g = o.good
        rest_bad = ", ".join(f"{k} x{v}" for k, v in sorted(g.rest_bad.items())) or "all 200"
        rows += [(f"{o.name} {key}", value) for key, value in o.details]
        rows.append(
            (
                f"{o.name} good client",
                f"{g.samples} updates timed, connects {g.connects}, "
                f"closes {g.closes or 'none'}; REST poll: {g.rest_count} requests, "
                f"p99 {g.rest_p99_ms:.0f} ms, {rest_bad}",
            )
        )
        rows.append(
            (
                f"{o.name} server",
                f"open fds {o.fds} (before/peak/end), log tracebacks {o.tracebacks}; "
                f"machine load average {o.load:.1f} on {os.cpu_count()} CPUs",
            )
        )
        problems = o.problems()
        criteria = "acceptance" if o.flood else "good client kept its stream"
        rows.append((f"{o.name} {criteria}", "NO: " + "; ".join(problems) if problems else "yes"))
    return rows


async def hostile(sizes: Sizes) -> Rows:
    secret = secrets.token_hex(32)
    outcomes: list[Outcome] = []
    failed: Rows = []
    for name, attack, flood in ATTACKS:
        if sizes.hostile_attacks and name not in sizes.hostile_attacks:
            continue
        progress(f"{name} ...")
        try:
            outcomes.append(await run_one(name, attack, flood, sizes, secret))
        except Exception as exc:  # report it and go on with the next attack
            failed.append((f"{name} FAILED", f"NO: {type(exc).__name__}: {exc}"))
    return [
        (
            "server",
            "one fresh `stockfeed serve --source sim` per attack, default limits, auth on; "
            f"attackers from {ATTACKER_IP}, the good client from 127.0.0.1 (own process); "
            f"samples every {SAMPLE_S:g} s until {sizes.hostile_after_seconds:g} s after",
        ),
        *report(outcomes),
        *failed,
    ]
