"""Redis Cluster as broker and store: a real 3-primary, 3-replica cluster.

- One ticker's channel and keys share a slot (hash tag), the updater's on another.
- Two processes: the same bytes per seq on both, resume across them, outside SPUBLISH.
- A cluster primary SIGKILLed under resuming clients: every seq once or a gap snapshot,
  and fresh updates within ~10 s; a slot moved under a subscriber.
- `--workers 2` on the cluster.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect

from stockfeed.broker import urls
from stockfeed.broker.cluster import RedisClusterBroker
from stockfeed.config import Settings
from stockfeed.testing.redis_topologies import ClusterTopology
from tests.servers import StartServer
from tests.wsutil import check_server_message, contract_update, recv_until, recv_updates

pytestmark = pytest.mark.process

# AAPL's slot is on the third primary, with the updater's `{stockfeed}` keys (killing
# it stops the feed until the replica takes over: the worst case); GOOGL and AMZN on
# the other two.
TICKERS = ("AAPL", "GOOGL", "AMZN")
ARGS = ("--source", "sim", "--sim-tick-interval", "0.05", "--leader-ttl", "1")


class Feed:
    """A `/ws` client on several tickers that can leave and come back with `resume`,
    anywhere. Keeps, per ticker, every update and snapshot in arrival order, and the raw
    text of each update (to compare bytes across processes)."""

    def __init__(self, tickers: tuple[str, ...] = TICKERS) -> None:
        self.tickers = tickers
        self.seen: dict[str, list[dict[str, Any]]] = {t: [] for t in tickers}
        self.raw: dict[tuple[str, int], str] = {}
        self.epochs: dict[str, str] = {}
        self.arrived: dict[str, list[float]] = {t: [] for t in tickers}  # loop times
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    def last(self, ticker: str) -> int:
        seqs = [m["seq"] for m in self.seen[ticker]]
        return max(seqs) if seqs else 0

    async def open(self, ws_base: str) -> Feed:
        resume = {
            t: {"seq": self.last(t), "epoch": self.epochs[t]}
            for t in self.tickers
            if self.last(t) and t in self.epochs
        }
        ws = await connect(ws_base + "/ws")
        request: dict[str, Any] = {"action": "subscribe", "tickers": list(self.tickers)}
        if resume:
            request["resume"] = resume
        await ws.send(json.dumps(request))
        self._ws = ws
        self._task = asyncio.create_task(self._read(ws))
        return self

    async def _read(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        async for raw in ws:
            msg = json.loads(raw)
            check_server_message(msg)
            kind = msg["type"]
            if kind == "subscribed":
                self.epochs.update(msg.get("epochs") or {})
            elif kind in ("price_update", "snapshot") and msg["ticker"] in self.seen:
                ticker = msg["ticker"]
                if msg.get("epoch"):
                    self.epochs[ticker] = msg["epoch"]
                self.seen[ticker].append(msg)
                self.arrived[ticker].append(loop.time())
                if kind == "price_update":
                    assert isinstance(raw, str)
                    self.raw[(ticker, msg["seq"])] = raw

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        self._ws = self._task = None

    async def wait(self, ticker: str, past: int, timeout: float = 20.0) -> None:
        """Until something past seq `past` of `ticker` arrived."""
        async with asyncio.timeout(timeout):
            while self.last(ticker) <= past:
                assert self._task is None or not self._task.done(), self._task
                await asyncio.sleep(0.02)

    def check(self) -> int:
        """Gap snapshots seen; fails on a seq twice or a jump no gap snapshot explains."""
        gaps = 0
        for ticker, messages in self.seen.items():
            last: int | None = None
            for msg in messages:
                seq = msg["seq"]
                if msg["type"] == "snapshot" and (last is None or msg.get("gap")):
                    gaps += bool(msg.get("gap"))
                    last = seq if last is None else max(last, seq)
                    continue
                assert last is None or seq > last, f"{ticker}: seq {seq} after {last} again"
                assert last is None or seq == last + 1, f"{ticker}: {last} -> {seq} silently"
                last = seq
        return gaps


@pytest.fixture
async def feeds() -> AsyncIterator[list[Feed]]:
    made: list[Feed] = []
    yield made
    await asyncio.gather(*(f.close() for f in made), return_exceptions=True)


def listeners(node: redis.Redis, channel: str) -> int:
    """Connections subscribed to a shard channel on this node."""
    ((_, count),) = node.execute_command("PUBSUB SHARDNUMSUB", channel)
    return int(count)


async def wait_connected(server: Any, shards: int = 3, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    broker: dict[str, Any] = {}
    while time.monotonic() < deadline:
        broker = (await asyncio.to_thread(server.health))["broker"]
        if broker["state"] == "connected" and broker.get("shards_connected") == shards:
            return broker
        await asyncio.sleep(0.1)
    raise AssertionError(f"broker never connected to {shards} shards: {broker}")


# -- URLs ------------------------------------------------------------------------------


def test_broker_urls_parse_and_bad_ones_say_why() -> None:
    target = urls.parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001")
    assert target.mode == "cluster"
    assert target.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert target.password == "pw" and target.username is None
    target = urls.parse("redis+sentinel://s1:26379,s2:26379/mymaster/2")
    assert (target.mode, target.master_name, target.db) == ("sentinel", "mymaster", 2)
    assert urls.parse("redis://127.0.0.1:6379/0").mode == "single"
    for bad, says in [
        ("redis+cluster://", "HOST:PORT"),
        ("redis+cluster://h:7000/0", "no database"),
        ("redis+cluster://h", "HOST:PORT"),
        ("redis+sentinel://h:26379", "name the master"),
        ("redis+sentinel://h:26379/m/x", "number"),
        ("kafka://h:9092", "memory://"),
    ]:
        with pytest.raises(ValueError, match=says):
            Settings(broker=bad)
    assert Settings(broker="redis+cluster://h:7000").uses_redis


# -- broker and store on the cluster ---------------------------------------------------


async def test_a_moved_slot_is_followed(cluster: ClusterTopology, cluster_url: str) -> None:
    broker = RedisClusterBroker(urls.parse(cluster_url))
    got: list[bytes] = []
    broker.set_handler(lambda t, m: got.append(m if isinstance(m, bytes) else m.encode()))
    await broker.start()
    try:
        for _ in range(200):
            if broker.state == "connected":
                break
            await asyncio.sleep(0.02)
        await broker.subscribe("MOVEQ")
        await broker.publish("MOVEQ", "before")
        owner = cluster.primary_for("market:{MOVEQ}")
        other = next(n for n in cluster.primary_nodes() if n.name != owner.name)
        await asyncio.to_thread(cluster.move_slot, "market:{MOVEQ}", other)
        # The old owner drops the subscription itself (sunsubscribe); the broker finds
        # the new owner and subscribes there. Publish until it arrives.
        deadline = time.monotonic() + 10
        while b"after" not in got and time.monotonic() < deadline:
            await broker.publish("MOVEQ", "after")
            await asyncio.sleep(0.1)
        assert got[0] == b"before" and b"after" in got
        shards = {s["node"]: s["channels"] for s in broker.describe()["shards"]}  # type: ignore[union-attr]
        assert shards[other.name] == 1 and shards[owner.name] == 0
    finally:
        await broker.close()


async def test_two_processes_same_bytes_keys_in_one_slot_and_resume_across(
    cluster: ClusterTopology, cluster_url: str, start_server: StartServer, feeds: list[Feed]
) -> None:
    a = start_server(*ARGS, "--tickers", ",".join(TICKERS), "--broker", cluster_url)
    b = start_server(*ARGS, "--tickers", ",".join(TICKERS), "--broker", cluster_url)
    health = await wait_connected(a)
    assert health["mode"] == "cluster" and len(health["shards"]) == 3
    await wait_connected(b)
    on_a, on_b = Feed(), Feed()
    feeds += [on_a, on_b]
    await on_a.open(a.ws)
    await on_b.open(b.ws)
    for t in TICKERS:
        await on_a.wait(t, 0)
        await on_b.wait(t, 0)
    start = {t: max(on_a.last(t), on_b.last(t)) for t in TICKERS}
    for t in TICKERS:
        await on_a.wait(t, start[t] + 10)
        await on_b.wait(t, start[t] + 10)
    # Same bytes for the same seq on both processes.
    common = on_a.raw.keys() & on_b.raw.keys()
    assert len(common) >= 20, "the two processes saw disjoint streams"
    assert all(on_a.raw[k] == on_b.raw[k] for k in common)

    # Each ticker's keys live in its channel's slot, the updater's in `{stockfeed}`'s.
    for t in TICKERS:
        with cluster.primary_for(f"market:{{{t}}}").client() as node:
            keys = [f"quote:{{{t}}}", f"quote_last:{{{t}}}", f"seq:{{{t}}}", f"history:{{{t}}}"]
            assert node.exists(*keys) == 4, t
            assert listeners(node, f"market:{{{t}}}") == 2  # one connection per process
    with cluster.primary_for("{stockfeed}").client() as node:
        assert node.exists("{stockfeed}:leader", "{stockfeed}:epoch") == 2

    # Leave process a, come back on process b with resume: b replays what was missed.
    await on_a.close()
    left_at = {t: on_a.last(t) for t in TICKERS}
    await on_b.wait("AAPL", left_at["AAPL"] + 10)
    await on_a.open(b.ws)
    for t in TICKERS:
        await on_a.wait(t, on_b.last(t))
    assert on_a.check() == 0, "b holds every update a's client missed: no gap snapshot"
    assert on_b.check() == 0
    for t in TICKERS:
        resumed = [m for m in on_a.seen[t] if m["seq"] > left_at[t]]
        assert (
            resumed
            and resumed[0]["type"] == "price_update"
            and resumed[0]["seq"] == (left_at[t] + 1)
        )


async def test_outside_publisher_spublishes_on_the_hash_tagged_channel(
    cluster: ClusterTopology, cluster_url: str, start_server: StartServer
) -> None:
    # docs/protocol.md: a `--source none` deployment relays what others SPUBLISH on
    # `market:{TICKER}`, byte for byte.
    server = start_server("--source", "none", "--broker", cluster_url)
    await wait_connected(server)
    async with connect(server.ws + "/ws/stocks/ACME") as ws:
        await recv_until(ws, "market_status")  # the end of the subscribe (none cached)
        with cluster.primary_for("market:{ACME}").client() as node:
            deadline = time.monotonic() + 10
            while not listeners(node, "market:{ACME}"):
                assert time.monotonic() < deadline, "the server never subscribed"
                await asyncio.sleep(0.05)
            sent = [contract_update("ACME", seq) for seq in (1, 2, 3)]
            for text in sent:
                assert node.execute_command("SPUBLISH", "market:{ACME}", text) == 1
        got: list[str] = []
        while len(got) < len(sent):
            raw = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(raw, str)
            if json.loads(raw)["type"] == "price_update":
                got.append(raw)
    assert got == sent


async def test_workers_share_the_port_on_the_cluster(
    cluster_url: str, start_server: StartServer
) -> None:
    server = start_server(*ARGS, "--tickers", "AAPL", "--broker", cluster_url, "--workers", "2")
    processes: set[str] = set()
    leaders: set[str] = set()
    deadline = time.monotonic() + 20
    while len(processes) < 2 and time.monotonic() < deadline:
        health = await asyncio.to_thread(server.health)
        processes.add(health["updater"]["this_process"])
        if health["updater"]["leader"]:
            leaders.add(health["updater"]["leader"])
        assert health["broker"]["mode"] == "cluster"
        await asyncio.sleep(0.05)
    assert len(processes) == 2, processes
    assert len(leaders) == 1, leaders
    async with connect(server.ws + "/ws/stocks/AAPL") as ws:
        seqs = [m["seq"] for m in await recv_updates(ws, 10)]
    assert seqs == list(range(seqs[0], seqs[0] + 10))


async def test_primary_killed_under_resuming_clients_every_seq_once_or_a_gap(
    cluster: ClusterTopology, cluster_url: str, start_server: StartServer, feeds: list[Feed]
) -> None:
    a = start_server(*ARGS, "--tickers", ",".join(TICKERS), "--broker", cluster_url)
    b = start_server(*ARGS, "--tickers", ",".join(TICKERS), "--broker", cluster_url)
    await wait_connected(a)
    await wait_connected(b)
    stay_a, away_a, stay_b, away_b = Feed(), Feed(), Feed(), Feed()
    feeds += [stay_a, away_a, stay_b, away_b]
    for feed, server in ((stay_a, a), (away_a, a), (stay_b, b), (away_b, b)):
        await feed.open(server.ws)
    for feed in feeds:
        await feed.wait("AAPL", 5)

    # Two clients leave; AAPL's primary (also the updater's lock and epoch) dies.
    await away_a.close()
    await away_b.close()
    victim = cluster.primary_for("market:{AAPL}")
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    seen_at_kill = {t: max(f.last(t) for f in feeds) for t in TICKERS}
    cluster.kill(victim)
    await asyncio.sleep(0.5)
    await away_a.open(b.ws)  # resumes on the other process, in the middle of the outage
    successor = await asyncio.to_thread(cluster.wait_promoted, victim)
    await away_b.open(a.ws)  # and on the other one once the replica took over
    print(f"{victim.name} killed, {successor.name} promoted in {loop.time() - killed_at:.1f}s")

    for feed in feeds:
        for t in TICKERS:
            await feed.wait(t, seen_at_kill[t], timeout=20)
    back_in = max(
        next(at for at, m in zip(f.arrived[t], f.seen[t], strict=True) if m["seq"] > seen)
        - killed_at
        for f in feeds
        for t, seen in seen_at_kill.items()
    )
    print(f"every client had new updates of every ticker {back_in:.1f}s after the kill")
    for feed in feeds:  # and the stream goes on
        for t in TICKERS:
            await feed.wait(t, max(f.last(t) for f in feeds) + 10)
    # A gap snapshot is expected at times: the updater loses its lock with the shard
    # (`{stockfeed}` is on it) and may be stopped between taking a seq and publishing it.
    gaps = [feed.check() for feed in feeds]
    print(f"gap snapshots per client: {gaps}")
    assert back_in < 12, f"clients waited {back_in:.1f}s for fresh updates"
    for server in (a, b):
        broker = await wait_connected(server)
        assert successor.name in {s["node"] for s in broker["shards"]}
        assert victim.name not in {s["node"] for s in broker["shards"]}
        assert server.proc.poll() is None
