"""Redis pub/sub broker: any number of processes and machines share one feed.

One pub/sub connection per process, one channel per ticker. When Redis drops, the
listener retries with backoff and resubscribes every channel; meanwhile the broker
reports `degraded` and publishing raises BrokerUnavailable (the caller decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stockfeed.broker.base import CHANNEL_PREFIX, Broker, BrokerUnavailable, channel

log = logging.getLogger(__name__)

_BACKOFF_MIN = 0.2
_BACKOFF_MAX = 5.0
_CONFIRM_TIMEOUT = 5.0
_PUBLISH_TIMEOUT = 3.0


class RedisBroker(Broker):
    kind = "redis"
    mode = "single"

    def __init__(self, url: str, client: aioredis.Redis | None = None) -> None:
        """One Redis at `url`, or `client` (broker/sentinel.py: the current primary)."""
        super().__init__()
        self.url = url
        # Separate clients: the pub/sub connection is held by the listener, and a
        # publish must not queue behind it.
        # No socket_timeout (see shared/redis.py): publish is bounded by asyncio.timeout.
        if client is None:
            client = aioredis.Redis.from_url(
                url, socket_connect_timeout=2, socket_timeout=None, health_check_interval=0
            )
        self._client: aioredis.Redis = client
        self._channels: set[str] = set()
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        # Both directions must work for "connected": the listener and publishing.
        self._publish_ok = True
        self._ever_connected = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="redis-broker-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=3)
        await self._close_pubsub()
        await self._client.aclose()

    async def publish(self, ticker: str, message: str) -> None:
        try:
            async with asyncio.timeout(_PUBLISH_TIMEOUT):
                await self._client.publish(channel(ticker), message)
        except (RedisError, OSError, TimeoutError) as exc:
            self._publish_ok = False
            self._set_state("degraded", f"publish failed: {exc}")
            raise BrokerUnavailable(str(exc)) from exc
        if not self._publish_ok:
            self._publish_ok = True
            if self._connected.is_set():
                self._set_state("connected")

    async def subscribe(self, ticker: str) -> None:
        name = channel(ticker)
        if name in self._channels:
            return
        self._channels.add(name)
        if not self._connected.is_set() or self._pubsub is None:
            return  # the listener subscribes every channel when it (re)connects
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[name] = fut
        try:
            await self._pubsub.subscribe(name)
            await asyncio.wait_for(asyncio.shield(fut), _CONFIRM_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            # The listener will notice the broken connection and resubscribe.
            log.warning("subscribe %s not confirmed: %s", name, exc)
        finally:
            self._pending.pop(name, None)

    async def unsubscribe(self, ticker: str) -> None:
        name = channel(ticker)
        if name not in self._channels:
            return
        self._channels.discard(name)
        if self._pubsub is not None and self._connected.is_set():
            try:
                await self._pubsub.unsubscribe(name)
            except (RedisError, OSError) as exc:
                log.warning("unsubscribe %s failed: %s", name, exc)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._connected.clear()
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                pass

    async def _listen_forever(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            try:
                await self._connect_and_listen()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.state != "degraded":
                    log.error("Redis broker lost (%s): retrying with backoff", exc)
                self._set_state("degraded", str(exc))
            await self._close_pubsub()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)
            if self.state == "connected":
                backoff = _BACKOFF_MIN

    async def _connect_and_listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=False)
        self._pubsub = pubsub
        # A first subscribe opens the connection; an idle pubsub has no channel yet, so
        # subscribe to a private control channel to hold the connection open.
        initial = set(self._channels)
        await pubsub.subscribe("stockfeed:control", *sorted(initial))
        self._connected.set()
        if self._ever_connected:
            self.reconnects += 1  # back after a loss (health and /metrics)
        self._ever_connected = True
        added_meanwhile = self._channels - initial
        if added_meanwhile:
            await pubsub.subscribe(*sorted(added_meanwhile))
        if self.state != "connected":
            log.info("Redis broker connected (%d channels)", len(self._channels))
        if not self._publish_ok:
            # A publish failed while Redis was away. A process that is no longer the
            # updater never publishes again to clear that: ask the publishing side.
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(_PUBLISH_TIMEOUT):
                    self._publish_ok = bool(await self._client.ping())
        if self._publish_ok:
            self._set_state("connected")
        prefix_len = len(CHANNEL_PREFIX)
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
            if msg is None:
                # Poke the connection so a silent Redis death is noticed.
                await pubsub.ping()
                continue
            kind = msg["type"]
            name = msg["channel"]
            if isinstance(name, bytes):
                name = name.decode()
            if kind == b"message" or kind == "message":
                handler = self._handler
                if handler is None or not name.startswith(CHANNEL_PREFIX):
                    continue
                try:
                    handler(name[prefix_len:], msg["data"])
                except Exception:  # a bad message must not kill the listener
                    log.exception("handler failed for %s", name)
            elif kind in (b"subscribe", "subscribe"):
                fut = self._pending.get(name)
                if fut is not None and not fut.done():
                    fut.set_result(None)
