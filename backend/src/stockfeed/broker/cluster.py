"""Redis Cluster broker: sharded pub/sub, one connection per shard.

The channel of a ticker is `market:{AAPL}`, the braces written: a hash tag, so the
channel lives in the slot of the ticker's keys (`quote:{AAPL}`, `seq:{AAPL}`, ...) and a
ticker's whole traffic stays on one shard. Publishing is `SPUBLISH` (redis-py's cluster
client routes it to the slot's primary); listening is `SSUBSCRIBE` on that primary.

Each process holds one pub/sub connection per primary (`_Shard`, on the broker's own link:
broker/pubsub_link.py), whether or not it has channels there yet, so that a dead shard
shows in health at once. A supervisor keeps
the slot map (CLUSTER SLOTS through redis-py's cluster client) and the wanted channels
in step: every few seconds, and at once when a shard's connection breaks, a subscribe
is refused with MOVED, or a node drops our channels itself (Redis sends `sunsubscribe`
when a slot leaves it). A channel whose slot has a new owner (failover, resharding) is
subscribed on the new primary; a shard whose primary is gone from the map is closed.

Updates published while a channel was between shards are not lost to clients: the hub
sees the next one's `seq` jump and backfills from the store's history, or sends a gap
snapshot, exactly as after a single Redis restarted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Literal

import hiredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from stockfeed.broker.base import Broker, BrokerUnavailable
from stockfeed.broker.pubsub_link import PubSubLink
from stockfeed.broker.urls import RedisTarget
from stockfeed.logs import redact

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "market:{"
_BACKOFF_MIN = 0.2
_BACKOFF_MAX = 5.0
_CONFIRM_TIMEOUT = 5.0
_PUBLISH_TIMEOUT = 3.0
_MAP_TIMEOUT = 5.0
_MAP_EVERY = 5.0  # slot map refresh when all is well (moves also announce themselves)
_MAP_EVERY_DEGRADED = 0.5  # while a shard is down: find its successor soon
_SILENT_LIMIT = 5.0  # a shard that answers no PING for this long is taken as dead

_ERRORS = (RedisError, RedisClusterException, OSError, TimeoutError)

ShardState = Literal["connecting", "connected", "down"]


def channel(ticker: str) -> str:
    return CHANNEL_PREFIX + ticker + "}"


def ticker_of(name: str) -> str | None:
    if name.startswith(CHANNEL_PREFIX) and name.endswith("}"):
        return name[len(CHANNEL_PREFIX) : -1]
    return None


class _Shard:
    """One primary and our pub/sub connection to it."""

    def __init__(self, broker: RedisClusterBroker, node: ClusterNode) -> None:
        self.broker = broker
        self.name = node.name
        self.host = node.host
        self.port = int(node.port)
        self.channels: set[str] = set()  # wanted on this shard
        self.confirmed: set[str] = set()  # subscribed on the current connection
        self.sent: set[str] = set()  # SSUBSCRIBE sent, not confirmed yet
        self.leaving: set[str] = set()  # SUNSUBSCRIBE sent by us
        self.pending: dict[str, asyncio.Future[None]] = {}
        self.state: ShardState = "connecting"
        self.last_error: str | None = None
        self.ever_connected = False
        self._link: PubSubLink | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"redis-shard-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=3)
        self._settle_pending()
        await self._close_pubsub()

    def describe(self) -> dict[str, object]:
        return {
            "node": self.name,
            "state": self.state,
            "channels": len(self.channels),
            "last_error": self.last_error,
        }

    # -- wanted channels ---------------------------------------------------------------

    async def add(self, name: str, wait: bool) -> None:
        """Want `name` here; with `wait`, return once the node confirmed it (bounded)."""
        self.channels.add(name)
        self.leaving.discard(name)
        if self.state != "connected" or self._link is None or name in self.confirmed:
            return  # the listener subscribes every wanted channel when it connects
        fut: asyncio.Future[None] | None = None
        if wait:
            fut = self.pending.get(name)
            if fut is None:
                fut = self.pending[name] = asyncio.get_running_loop().create_future()
        try:
            await self._send_subscribe(name)
            if fut is not None:
                await asyncio.wait_for(asyncio.shield(fut), _CONFIRM_TIMEOUT)
        except _ERRORS as exc:
            # The listener notices a broken connection and subscribes again.
            log.warning("ssubscribe %s on %s not confirmed: %s", name, self.name, exc)
        finally:
            if fut is not None and self.pending.get(name) is fut:
                del self.pending[name]

    async def _send_subscribe(self, name: str) -> None:
        link = self._link
        if link is None or name in self.sent or name in self.confirmed:
            return
        self.sent.add(name)
        # One SSUBSCRIBE per channel: a node refuses one that spans slots (CROSSSLOT).
        link.send("SSUBSCRIBE", name)

    async def remove(self, name: str) -> None:
        self.channels.discard(name)
        link = self._link
        if self.state != "connected" or link is None:
            return
        # Only what the node still holds for us: after a slot moved, the node dropped
        # the channel itself (and would answer MOVED).
        if name in self.confirmed or name in self.sent:
            self.leaving.add(name)
            self.sent.discard(name)
            try:
                link.send("SUNSUBSCRIBE", name)
            except _ERRORS as exc:
                log.warning("sunsubscribe %s on %s failed: %s", name, self.name, exc)

    async def resync(self) -> None:
        """Subscribe what is wanted here but neither confirmed nor on its way."""
        if self.state != "connected":
            return
        try:
            for name in sorted(self.channels - self.confirmed - self.sent):
                await self._send_subscribe(name)
        except _ERRORS as exc:
            # One line, not one per channel: the listener sees the broken connection.
            log.warning("subscribing on %s: %s", self.name, exc)

    def _settle_pending(self) -> None:
        # Subscribers waiting for a confirmation that will not come on this connection
        # go on; the subscription follows when the listener is back.
        for fut in self.pending.values():
            if not fut.done():
                fut.set_result(None)

    # -- the listener ------------------------------------------------------------------

    async def _close_pubsub(self) -> None:
        link, self._link = self._link, None
        self.confirmed.clear()
        self.sent.clear()
        self.leaving.clear()
        if link is not None:
            link.close()

    async def _run(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            try:
                await self._connect_and_listen()
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                self.last_error = redact(f"{type(exc).__name__}: {exc}")
                if self.state != "down":
                    log.error("Redis shard %s lost (%s): retrying with backoff", self.name, exc)
                if self.state == "connected":
                    backoff = _BACKOFF_MIN
                self.state = "down"
                self._settle_pending()
                self.broker._shard_changed(self, remap=True)
            await self._close_pubsub()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _connect_and_listen(self) -> None:
        target = self.broker.target
        link = await PubSubLink.open(
            self.host,
            self.port,
            self.broker._deliver,
            batch=self.broker,
            rest=self.broker.ingest_rest,
            username=target.username,
            password=target.password,
        )
        self._link = link
        link.send("PING")
        reply = await link.event(within=_SILENT_LIMIT)
        if reply is None:
            raise TimeoutError(f"no answer from {self.name} for {_SILENT_LIMIT:g}s")
        self.state = "connected"
        if self.ever_connected:
            log.info("Redis shard %s back: subscribing %d channels", self.name, len(self.channels))
        self.ever_connected = True
        self.last_error = None
        await self.resync()
        self.broker._shard_changed(self, remap=False)
        while True:
            msg = await link.event(within=1.0)
            if msg is None:
                if link.silent_for() > _SILENT_LIMIT:
                    raise TimeoutError(f"no answer from {self.name} for {_SILENT_LIMIT:g}s")
                link.send("PING")  # poke the connection so a silent death is noticed
                continue
            if isinstance(msg, hiredis.ReplyError):
                # A refused SSUBSCRIBE (MOVED: the slot has another owner now). Which
                # one is not said: forget what was on its way, and have the slot map
                # refreshed; the supervisor subscribes each channel where it belongs.
                log.info("shard %s refused a subscription: %s", self.name, msg)
                self.sent.clear()
                self._settle_pending()
                self.broker._shard_changed(self, remap=True)
                continue
            kind = msg[0]
            if kind == b"pong" or not isinstance(msg[1], bytes):
                continue
            name = msg[1].decode()
            if kind == b"ssubscribe":
                self.sent.discard(name)
                self.confirmed.add(name)
                fut = self.pending.get(name)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            elif kind == b"sunsubscribe":
                self.confirmed.discard(name)
                self.broker._tickers.pop(msg[1], None)
                if name in self.leaving:
                    self.leaving.discard(name)
                elif name in self.channels:
                    # Not ours: the node gave up the slot (resharding, or it is a
                    # replica now). Find the slot's new owner.
                    log.info("shard %s dropped %s: its slot moved", self.name, name)
                    self.broker._shard_changed(self, remap=True)


class RedisClusterBroker(Broker):
    kind = "redis"
    mode = "cluster"

    def __init__(self, target: RedisTarget) -> None:
        super().__init__()
        self.target = target
        self.url = target.url
        # For SPUBLISH and the slot map. No socket_timeout (see shared/redis.py): publish
        # and map refreshes are bounded by asyncio.timeout.
        self._cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
            username=target.username,
            password=target.password,
            socket_connect_timeout=2,
            socket_timeout=None,
            require_full_coverage=False,
        )
        self._channels: set[str] = set()  # every channel this process wants
        self._tickers: dict[bytes, str] = {}  # channel -> ticker, for every data message
        self._owner: dict[str, str] = {}  # channel -> the shard it is wanted on
        self._shards: dict[str, _Shard] = {}  # one per primary in the slot map
        self._map_ok = False
        self._map_error: str | None = None
        self._publish_ok = True
        self._publish_error: str | None = None
        self._remap = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._was_connected = False

    # -- Broker ------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="redis-cluster-supervisor")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=3)
        shards, self._shards = list(self._shards.values()), {}
        await asyncio.gather(*(s.stop() for s in shards), return_exceptions=True)
        await self._cluster.aclose()

    async def publish(self, ticker: str, message: str) -> None:
        await self.publish_many(((ticker, message),))

    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        """Every message in one round trip per node the channels' slots are on, the nodes
        at once (redis-py's cluster pipeline). A ticker's messages keep their order (its
        slot's node gets them in one pipeline); those of tickers on different nodes may
        reach a subscriber in another order than given, as they come to it on separate
        shard connections."""
        try:
            async with asyncio.timeout(_PUBLISH_TIMEOUT):
                if len(messages) == 1:
                    # One command, without the pipeline's retry (which closes every
                    # connection of the client and waits before it tries again).
                    ((ticker, message),) = messages
                    await self._cluster.spublish(channel(ticker), message)
                else:
                    pipe = self._cluster.pipeline(transaction=False)
                    for ticker, message in messages:
                        pipe.spublish(channel(ticker), message)
                    await pipe.execute()
        except _ERRORS as exc:
            self._publish_ok = False
            self._publish_error = f"publish failed: {exc}"
            self._update_state()
            self._remap.set()
            raise BrokerUnavailable(str(exc) or "Redis Cluster did not answer in time") from exc
        if not self._publish_ok:
            self._publish_ok = True
            self._update_state()

    async def subscribe(self, ticker: str) -> None:
        name = channel(ticker)
        if name in self._channels:
            return
        self._channels.add(name)
        shard = self._assign(name)
        if shard is not None:
            await shard.add(name, wait=True)
        # else: no slot map yet; the supervisor subscribes it once there is one

    async def unsubscribe(self, ticker: str) -> None:
        name = channel(ticker)
        if name not in self._channels:
            return
        self._channels.discard(name)
        self._tickers.pop(name.encode(), None)
        owner = self._owner.pop(name, None)
        shard = self._shards.get(owner) if owner is not None else None
        if shard is not None:
            await shard.remove(name)

    def describe(self) -> dict[str, object]:
        out = super().describe()
        shards = [s.describe() for _, s in sorted(self._shards.items())]
        out["shards_connected"] = sum(1 for s in self._shards.values() if s.state == "connected")
        out["shards"] = shards
        return out

    # -- shards and the slot map -------------------------------------------------------

    def _deliver(self, name: bytes, data: bytes) -> None:
        """A shard's data message: to the hub, synchronously (pubsub_link.py)."""
        handler = self._handler
        ticker = self._tickers.get(name)
        if ticker is None:
            text = name.decode(errors="replace")
            ticker = ticker_of(text)
            if ticker is None or text not in self._channels:
                return  # not ours, or left (its SUNSUBSCRIBE still on the way)
            self._tickers[name] = ticker  # remembered while subscribed: bounded by them
        if handler is not None:
            handler(ticker, data)

    def _owner_of(self, name: str) -> str | None:
        try:
            node = self._cluster.get_node_from_key(name)
        except RedisClusterException:  # slot not covered, or no map yet
            return None
        return None if node is None else node.name

    def _assign(self, name: str) -> _Shard | None:
        owner = self._owner_of(name)
        if owner is None:
            return None
        shard = self._shards.get(owner)
        if shard is None:
            node = self._cluster.get_node(node_name=owner)
            if node is None:
                return None
            shard = self._shards[owner] = _Shard(self, node)
            shard.start()
        self._owner[name] = owner
        shard.channels.add(name)
        return shard

    def _shard_changed(self, shard: _Shard, remap: bool) -> None:
        if remap:
            self._remap.set()
        self._update_state()

    def _update_state(self) -> None:
        shards = list(self._shards.values())
        down = [s for s in shards if s.state != "connected"]
        if self._map_ok and shards and not down and self._publish_ok:
            if self.state != "connected":
                if self._was_connected:
                    self.reconnects += 1  # back after a loss (health and /metrics)
                log.info(
                    "Redis Cluster broker connected (%d shards, %d channels)",
                    len(shards),
                    len(self._channels),
                )
            self._was_connected = True
            self._set_state("connected")
            return
        if not self._map_ok:
            error = self._map_error or "no slot map yet"
        elif not shards:
            error = "no primary in the slot map"
        elif down:
            error = "; ".join(f"{s.name}: {s.last_error or s.state}" for s in down)
        else:
            error = self._publish_error or "publish failed"
        first_connects = self._map_ok and all(s.state == "connecting" for s in down)
        if not self._was_connected and first_connects and self._publish_ok:
            return  # still opening the first connections: not a loss
        self._set_state("degraded", error)

    async def _refresh_map(self) -> None:
        try:
            async with asyncio.timeout(_MAP_TIMEOUT):
                if not self._map_ok and not self._cluster.nodes_manager.slots_cache:
                    await self._cluster.initialize()
                else:
                    await self._cluster.nodes_manager.initialize()
        except _ERRORS as exc:
            if self._map_ok or self._map_error is None:
                log.error("Redis Cluster slot map unavailable: %s", exc)
            self._map_ok = False
            self._map_error = f"slot map: {exc}"
            return
        self._map_ok = True
        self._map_error = None

    async def _reconcile(self) -> None:
        """Shards for the primaries of the map, each wanted channel on its slot's one."""
        primaries = {node.name: node for node in self._cluster.get_primaries()}
        for name, node in primaries.items():
            if name not in self._shards:
                shard = self._shards[name] = _Shard(self, node)
                shard.start()
        for name in sorted(self._channels):
            owner = self._owner_of(name)
            current = self._owner.get(name)
            if owner == current:
                continue
            old = self._shards.get(current) if current is not None else None
            if old is not None:
                await old.remove(name)
            if owner is None:
                self._owner.pop(name, None)
                continue
            log.info("channel %s moves from shard %s to %s", name, current, owner)
            self._owner[name] = owner
            await self._shards[owner].add(name, wait=False)
        for name in list(self._shards):
            if name not in primaries:
                shard = self._shards.pop(name)
                log.info("shard %s left the slot map: closing its connection", name)
                await shard.stop()
        for shard in list(self._shards.values()):
            await shard.resync()

    async def _supervise(self) -> None:
        while True:
            self._remap.clear()
            await self._refresh_map()
            if self._map_ok:
                try:
                    await self._reconcile()
                except _ERRORS as exc:  # a shard's send failed: its listener handles it
                    log.warning("resubscribing on the cluster: %s", exc)
            self._update_state()
            every = _MAP_EVERY if self.state == "connected" else _MAP_EVERY_DEGRADED
            try:
                await asyncio.wait_for(self._remap.wait(), every)
            except TimeoutError:
                pass
            if self.state != "connected":
                # Several causes of one failover arrive together: one refresh for them.
                await asyncio.sleep(0.1)
