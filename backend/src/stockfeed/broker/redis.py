"""Redis pub/sub broker: any number of processes and machines share one feed.

One pub/sub connection per process (broker/pubsub_link.py: every message of a read handed
to the hub at once), one channel per ticker; publishing and everything else through
redis-py. When Redis drops, the listener retries with backoff and resubscribes every
channel; meanwhile the broker reports `degraded` and publishing raises BrokerUnavailable
(the caller decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Sequence

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection
from redis.exceptions import RedisError

from stockfeed.broker.base import CHANNEL_PREFIX, Broker, BrokerUnavailable, channel
from stockfeed.broker.pubsub_link import LinkLost, PubSubLink

log = logging.getLogger(__name__)

_BACKOFF_MIN = 0.2
_BACKOFF_MAX = 5.0
_CONFIRM_TIMEOUT = 5.0
_PUBLISH_TIMEOUT = 3.0
_SILENT_LIMIT = 5.0  # a Redis that answers no PING for this long is taken as dead
_CONTROL = "stockfeed:control"  # subscribed first: holds the connection in pub/sub mode


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
        self._link: PubSubLink | None = None
        self.listening_at: tuple[str, int] | None = None  # where the pub/sub link went
        self._tickers: dict[bytes, str] = {}  # channel -> ticker, for every data message
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
        await self.publish_many(((ticker, message),))

    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        """Every message in one round trip (a pipeline: order kept)."""
        try:
            async with asyncio.timeout(_PUBLISH_TIMEOUT):
                pipe = self._client.pipeline(transaction=False)
                for ticker, message in messages:
                    pipe.publish(channel(ticker), message)
                await pipe.execute()
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
        link = self._link
        if not self._connected.is_set() or link is None:
            return  # the listener subscribes every channel when it (re)connects
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[name] = fut
        try:
            link.send("SUBSCRIBE", name)
            await asyncio.wait_for(asyncio.shield(fut), _CONFIRM_TIMEOUT)
        except (LinkLost, TimeoutError) as exc:
            # The listener will notice the broken connection and resubscribe.
            log.warning("subscribe %s not confirmed: %s", name, exc)
        finally:
            self._pending.pop(name, None)

    async def unsubscribe(self, ticker: str) -> None:
        name = channel(ticker)
        if name not in self._channels:
            return
        self._channels.discard(name)
        self._tickers.pop(name.encode(), None)
        link = self._link
        if link is not None and self._connected.is_set():
            try:
                link.send("UNSUBSCRIBE", name)
            except LinkLost as exc:
                log.warning("unsubscribe %s failed: %s", name, exc)

    async def _close_pubsub(self) -> None:
        link, self._link = self._link, None
        self._connected.clear()
        if link is not None:
            link.close()

    async def _listen_forever(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            try:
                await self._connect_and_listen()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:  # LinkLost is an OSError
                if self.state != "degraded":
                    log.error("Redis broker lost (%s): retrying with backoff", exc)
                self._set_state("degraded", str(exc))
            await self._close_pubsub()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)
            if self.state == "connected":
                backoff = _BACKOFF_MIN

    async def _address(self) -> tuple[str, int]:
        """Where the pub/sub connection goes (Sentinel: the current primary)."""
        kwargs = self._client.connection_pool.connection_kwargs
        return kwargs.get("host", "localhost"), int(kwargs.get("port", 6379))

    def _tls(self) -> ssl.SSLContext | None:
        """`rediss://`: TLS as redis-py would do it for the same URL."""
        pool = self._client.connection_pool
        if not issubclass(pool.connection_class, SSLConnection):
            return None
        kwargs = pool.connection_kwargs
        context = ssl.create_default_context(cafile=kwargs.get("ssl_ca_certs"))
        if kwargs.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif kwargs.get("ssl_check_hostname") is False:
            context.check_hostname = False
        if kwargs.get("ssl_certfile"):
            context.load_cert_chain(kwargs["ssl_certfile"], kwargs.get("ssl_keyfile"))
        return context

    def _on_data(self, name: bytes, data: bytes) -> None:
        """A message on one of our channels: to the hub, synchronously (pubsub_link.py)."""
        ticker = self._tickers.get(name)
        if ticker is None:
            text = name.decode(errors="replace")
            if text not in self._channels:
                # The control channel, or one left (its UNSUBSCRIBE still on the way):
                # after `unsubscribe` returns, nothing more of it is delivered.
                return
            ticker = text[len(CHANNEL_PREFIX) :]
            self._tickers[name] = ticker  # remembered while subscribed: bounded by them
        handler = self._handler
        if handler is not None:
            handler(ticker, data)

    async def _connect_and_listen(self) -> None:
        host, port = await self._address()
        kwargs = self._client.connection_pool.connection_kwargs
        link = await PubSubLink.open(
            host,
            port,
            self._on_data,
            batch=self,
            rest=self.ingest_rest,
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            tls=self._tls(),
        )
        self._link = link
        self.listening_at = (host, port)
        self._tickers.clear()
        # The control channel first: its confirmation says the connection works.
        initial = set(self._channels)
        link.send("SUBSCRIBE", _CONTROL, *sorted(initial))
        while True:
            reply = await link.event(within=_CONFIRM_TIMEOUT)
            if reply is None:
                raise TimeoutError(f"Redis did not confirm a subscribe in {_CONFIRM_TIMEOUT:g}s")
            if isinstance(reply, hiredis.ReplyError):
                raise LinkLost(f"Redis refused SUBSCRIBE: {reply}")
            if reply[0] == b"subscribe" and reply[1] == _CONTROL.encode():
                break
        self._connected.set()
        if self._ever_connected:
            self.reconnects += 1  # back after a loss (health and /metrics)
        self._ever_connected = True
        added_meanwhile = self._channels - initial
        if added_meanwhile:
            link.send("SUBSCRIBE", *sorted(added_meanwhile))
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
        while True:
            reply = await link.event(within=1.0)
            if reply is None:
                if link.silent_for() > _SILENT_LIMIT:
                    raise TimeoutError(f"no answer from Redis for {_SILENT_LIMIT:g}s")
                # Poke the connection so a silent Redis death is noticed.
                link.send("PING")
                continue
            if isinstance(reply, hiredis.ReplyError):
                log.warning("Redis pub/sub error: %s", reply)
                continue
            kind, name = reply[0], reply[1]
            if kind == b"subscribe":
                text = name.decode()
                fut = self._pending.get(text)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            elif kind == b"unsubscribe":
                self._tickers.pop(name, None)
            # b"pong": heard, nothing more to do
