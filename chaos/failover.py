"""Redis failovers under load: a cluster primary, then the Sentinel primary, SIGKILLed.

Both scenarios run two stockfeed processes on the topology (stockfeed.testing.
redis_topologies: 3 primaries + 3 replicas with cluster-node-timeout 2 s; or a primary,
a replica and three Sentinels with down-after 1 s), each with the simulator as source: the
process holding the updater lock publishes 10 tickers x 10 updates/s through Redis (seq
from Redis, history for resume), both relay them. `failover_clients` resuming clients
(chaos/clients.py: they count silent seq gaps, duplicates and gap snapshots) watch 3 of
the 10 tickers each, half on each process.

`cluster-failover` kills twice (~45 s in all): first the primary of the busiest ticker
whose shard does not hold the updater's lock (`{stockfeed}:leader`), then, once every
client has fresh updates again, the primary that does hold it (with its tickers).
`sentinel-failover` (~20 s) kills the primary. For
each kill it prints how long the promotion took, when both processes were connected to
the successor, when publishing resumed (on the victim's tickers and on the others'), and
when every client had an update published after the kill: on some ticker, and on every
ticker it watches. The target is < 10 s for the latter.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockfeed.testing.redis_topologies import (
    ClusterTopology,
    Node,
    SentinelTopology,
    have_redis_server,
)

from chaos.clients import FeedClient, start_all, stop_all, total, wait_until
from chaos.procs import ServerProc, free_port

if TYPE_CHECKING:
    from chaos.scenarios import Sizes

Rows = list[tuple[str, str]]

TICKERS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA", "META", "NFLX", "AMD", "INTC"]
TICK_S = 0.1
LEADER_TTL_S = 2.0
TARGET_S = 10.0  # kill -> every client has an update published after it, on every ticker


class Round:
    """What the clients saw of the updates published after one kill (epoch ms)."""

    def __init__(self, kill_ms: float) -> None:
        self.kill_ms = kill_ms
        self.kill_at = time.monotonic()
        self.published: dict[str, float] = {}  # ticker -> first publish time after the kill


class FailoverClient(FeedClient):
    """A resuming client that also notes, per ticker, the first update published after
    the current round's kill."""

    def __init__(self, url: str, tickers: list[str], rng: random.Random) -> None:
        super().__init__(url, tickers, rng)
        self.round: Round | None = None
        self.fresh: dict[str, float] = {}  # ticker -> monotonic arrival

    def start_round(self, round_: Round) -> None:
        self.round = round_
        self.fresh = {}

    def _update(self, ticker: str, seq: int, published_ms: float) -> None:
        super()._update(ticker, seq, published_ms)
        r = self.round
        if r is not None and published_ms > r.kill_ms and ticker not in self.fresh:
            self.fresh[ticker] = time.monotonic()
            first = r.published.get(ticker)
            if first is None or published_ms < first:
                r.published[ticker] = published_ms

    def has_any(self) -> bool:
        return bool(self.fresh)

    def has_all(self) -> bool:
        return len(self.fresh) == len(self.tickers)


def _clients(urls: list[str], n: int, seed: int) -> list[FailoverClient]:
    rng = random.Random(seed)
    return [
        FailoverClient(urls[i % len(urls)], rng.sample(TICKERS, 3), random.Random(rng.random()))
        for i in range(n)
    ]


def _server_args(broker: str) -> list[str]:
    return [
        "--source",
        "sim",
        "--sim-tick-interval",
        str(TICK_S),
        "--tickers",
        ",".join(TICKERS),
        "--broker",
        broker,
        "--leader-ttl",
        f"{LEADER_TTL_S:g}",
        "--log-level",
        "warning",
    ]


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def _broker(server: ServerProc) -> dict[str, Any]:
    return dict((server.health() or {}).get("broker") or {})


def _leader(servers: list[ServerProc]) -> str:
    """Which process holds the updater lock (its `host:pid` names it)."""
    for server in servers:
        leader = ((server.health() or {}).get("updater") or {}).get("leader")
        if leader:
            pid = str(leader).rsplit(":", 1)[-1]
            names = [s.name for s in servers if pid.isdigit() and int(pid) in s.pids()]
            return f"{names[0] if names else '?'} ({leader})"
    return "none"


async def _until(predicate: Any, timeout: float, step: float = 0.1) -> float | None:
    """Seconds until a blocking `predicate` (run in a thread) holds, None at `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await asyncio.to_thread(predicate):
            return time.monotonic() - started
        await asyncio.sleep(step)
    return None


async def _measure_round(
    label: str,
    victim: Node,
    victim_tickers: set[str],
    clients: list[FailoverClient],
    kill: Any,
    promoted: Any,
    followed: Any,
) -> Rows:
    """Kill `victim` (through `kill`), then time the recovery as the clients see it."""
    round_ = Round(time.time() * 1000)
    for client in clients:
        client.start_round(round_)
    before = total(clients)
    kill()
    killed_at = round_.kill_at
    successor: Node | None = None
    try:
        successor = await asyncio.to_thread(promoted)
    except RuntimeError:
        pass
    promoted_s = time.monotonic() - killed_at if successor is not None else None
    follow_s = None
    if successor is not None:
        waited = await _until(lambda: followed(victim, successor), 20)
        follow_s = None if waited is None else time.monotonic() - killed_at
    await wait_until(lambda: all(c.has_all() for c in clients), 30)
    any_at = [min(c.fresh.values()) for c in clients if c.fresh]
    all_at = [max(c.fresh.values()) for c in clients if c.has_all()]
    every_any = max(any_at) - killed_at if len(any_at) == len(clients) else None
    every_all = max(all_at) - killed_at if len(all_at) == len(clients) else None

    def resumed(tickers: set[str]) -> str:
        delays = [round_.published.get(t) for t in sorted(tickers)]
        if not tickers:
            return "-"
        if any(d is None for d in delays):
            return "never (for some)"
        worst = max(d for d in delays if d is not None) - round_.kill_ms
        return f"{worst / 1000:.2f} s"

    others = set(TICKERS) - victim_tickers
    after = total(clients)
    met = every_all is not None and every_all < TARGET_S
    return [
        (f"{label}: killed", f"{victim.name} (tickers {', '.join(sorted(victim_tickers)) or '-'})"),
        (f"{label}: replica promoted after", _s(promoted_s)),
        (f"{label}: both processes on the successor after", _s(follow_s)),
        (f"{label}: publishing resumed, victim's tickers", resumed(victim_tickers)),
        (f"{label}: publishing resumed, other tickers", resumed(others)),
        (f"{label}: every client has a new update after", _s(every_any)),
        (f"{label}: ... on every ticker it watches after", _s(every_all)),
        (
            f"{label}: target < {TARGET_S:g} s",
            "yes" if met else f"NO: {_s(every_all)}",
        ),
        (
            f"{label}: gap snapshots / silent gaps / client reconnects",
            f"{after.gap_snapshots - before.gap_snapshots} / {after.missing - before.missing}"
            f" / {after.connects - before.connects}",
        ),
    ]


def _score_rows(clients: list[FailoverClient], servers: list[ServerProc]) -> Rows:
    score = total(clients)
    tracebacks = sum("Traceback" in p for s in servers for p in s.log_problems())
    alive = all(s.alive() for s in servers)
    return [
        ("updates received", f"{score.updates}"),
        ("messages lost (silent seq gaps)", f"{score.missing}"),
        ("duplicates", f"{score.duplicates}"),
        ("gap snapshots", f"{score.gap_snapshots} ({score.reported} seqs reported)"),
        ("both processes alive", "yes" if alive else "NO"),
        ("server logs: tracebacks", f"{tracebacks}"),
    ]


async def _start_servers(name: str, broker: str, ready: Any) -> list[ServerProc]:
    servers = [ServerProc(f"{name}-{i}", free_port(), _server_args(broker)) for i in (1, 2)]
    for server in servers:
        await asyncio.to_thread(server.wait_ready)
    for server in servers:
        if await _until(lambda s=server: ready(s), 30) is None:
            raise RuntimeError(f"{server.name}: broker not connected: {_broker(server)}")
    return servers


def _require_tools() -> None:
    if not have_redis_server():
        raise SystemExit("chaos: redis-server and redis-cli are needed (apt-get install redis)")


# --- a cluster primary killed under load -----------------------------------------------------


async def cluster_failover(sizes: Sizes) -> Rows:
    _require_tools()
    topology = ClusterTopology(Path(tempfile.mkdtemp(prefix="chaos-cluster-")))
    servers: list[ServerProc] = []
    clients: list[FailoverClient] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(topology.start)

        def connected(s: ServerProc) -> bool:
            b = _broker(s)
            return b.get("state") == "connected" and b.get("shards_connected") == 3

        servers = await _start_servers("cluster", topology.url, connected)
        clients = _clients([s.ws for s in servers], sizes.failover_clients, seed=14)
        tasks = await start_all(clients)
        await asyncio.sleep(3)

        owner = {t: topology.primary_for(f"market:{{{t}}}").name for t in TICKERS}
        lock_shard = topology.primary_for("{stockfeed}").name
        watchers = Counter(t for c in clients for t in c.tickers)
        spread = Counter(owner.values())
        rows: Rows = [
            ("topology", "3 primaries + 3 replicas, cluster-node-timeout 2 s"),
            (
                "load",
                f"sim source on the leader: {len(TICKERS)} tickers x {1 / TICK_S:g} updates/s "
                f"(seq, quote and history in Redis, SPUBLISH); {len(clients)} clients x 3 "
                f"tickers over 2 processes; leader TTL {LEADER_TTL_S:g} s",
            ),
            ("tickers per shard", ", ".join(f"{n}: {spread[n]}" for n in sorted(spread))),
            ("updater leader before", await asyncio.to_thread(_leader, servers)),
        ]

        def followed(dead: Node, successor: Node) -> bool:
            for s in servers:
                b = _broker(s)
                shards = {x.get("node") for x in b.get("shards") or []}
                if not connected(s) or dead.name in shards or successor.name not in shards:
                    return False
            return True

        # 1: the busiest ticker's shard, not the updater's; 2: the updater's shard.
        plain = [t for t in TICKERS if owner[t] != lock_shard]
        kills = [("kill 2 (the {stockfeed} shard)", lock_shard)]
        if plain:
            busiest = max(plain, key=lambda t: watchers[t])
            kills.insert(0, (f"kill 1 ({busiest}'s shard)", owner[busiest]))
        for label, shard in kills:
            victim = topology.by_name(shard)
            victim_tickers = {t for t, o in owner.items() if o == shard}
            rows += await _measure_round(
                label,
                victim,
                victim_tickers,
                clients,
                lambda v=victim: topology.kill(v),
                lambda v=victim: topology.wait_promoted(v),
                followed,
            )
            owner = {t: topology.primary_for(f"market:{{{t}}}").name for t in TICKERS}
            lock_shard = topology.primary_for("{stockfeed}").name
            await asyncio.sleep(2)  # updates go on: a late hole or repeat would show
        rows.append(("updater leader after", await asyncio.to_thread(_leader, servers)))
        await stop_all(clients, tasks)
        tasks = []
        return rows + _score_rows(clients, servers)
    finally:
        if tasks:
            await stop_all(clients, tasks)
        for server in servers:
            server.stop()
        topology.stop()
        shutil.rmtree(topology.workdir, ignore_errors=True)


# --- the Sentinel primary killed under load ---------------------------------------------------


async def sentinel_failover(sizes: Sizes) -> Rows:
    _require_tools()
    topology = SentinelTopology(Path(tempfile.mkdtemp(prefix="chaos-sentinel-")))
    servers: list[ServerProc] = []
    clients: list[FailoverClient] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(topology.start)
        old = topology.primary

        def on(s: ServerProc, node: Node) -> bool:
            b = _broker(s)
            return b.get("state") == "connected" and b.get("primary") == node.name

        servers = await _start_servers("sentinel", topology.url, lambda s: on(s, old))
        clients = _clients([s.ws for s in servers], sizes.failover_clients, seed=15)
        tasks = await start_all(clients)
        await asyncio.sleep(3)
        rows: Rows = [
            ("topology", "a primary, a replica, 3 Sentinels (down-after 1 s, quorum 2)"),
            (
                "load",
                f"sim source on the leader: {len(TICKERS)} tickers x {1 / TICK_S:g} updates/s "
                f"(seq, quote and history in Redis, PUBLISH); {len(clients)} clients x 3 "
                f"tickers over 2 processes; leader TTL {LEADER_TTL_S:g} s",
            ),
            ("updater leader before", await asyncio.to_thread(_leader, servers)),
        ]
        rows += await _measure_round(
            "kill (the primary)",
            old,
            set(TICKERS),
            clients,
            old.kill,
            lambda: topology.wait_promoted(old),
            lambda dead, successor: all(on(s, successor) for s in servers),
        )
        await asyncio.sleep(2)
        rows.append(("updater leader after", await asyncio.to_thread(_leader, servers)))
        await stop_all(clients, tasks)
        tasks = []
        return rows + _score_rows(clients, servers)
    finally:
        if tasks:
            await stop_all(clients, tasks)
        for server in servers:
            server.stop()
        topology.stop()
        shutil.rmtree(topology.workdir, ignore_errors=True)
