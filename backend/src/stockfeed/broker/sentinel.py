"""Redis behind Sentinel: the single-Redis broker on whichever node is the primary.

Sentinel's connection pool asks the Sentinels for the primary's address on every new
connection, and so does the pub/sub connection (`_address`). When the primary dies, the
listener's connection breaks, and it reconnects with backoff like after any Redis outage
(broker/redis.py): to nothing while the Sentinels still name the dead primary (they
refuse it once it is down), then to the promoted replica, where it subscribes every
channel again. Updates published meanwhile are the hub's to backfill (a `seq` jump), as
after a Redis restart.
"""

from __future__ import annotations

from redis.asyncio.sentinel import MasterNotFoundError, Sentinel

from stockfeed.broker.redis import RedisBroker
from stockfeed.broker.urls import RedisTarget


class _Sentinel(Sentinel):
    async def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            address: tuple[str, int] = await super().discover_master(service_name)
        except MasterNotFoundError:
            # redis-py's message holds the repr of every Sentinel client (pools,
            # connection settings): a screenful in each log line and in health.
            raise MasterNotFoundError(
                f"no Sentinel names a live primary for {service_name!r} (asked {self.hosts})"
            ) from None
        return address

    @property
    def hosts(self) -> str:
        return ",".join(
            f"{s.connection_pool.connection_kwargs['host']}:"
            f"{s.connection_pool.connection_kwargs['port']}"
            for s in self.sentinels
        )


def make_sentinel(target: RedisTarget) -> Sentinel:
    """The Sentinels of `target`. No socket_timeout anywhere (see store/redis.py); the
    connects are bounded, the commands by their callers."""
    return _Sentinel(  # type: ignore[no-untyped-call]
        list(target.hosts),
        sentinel_kwargs={"socket_connect_timeout": 1, "socket_timeout": None},
        socket_connect_timeout=2,
        socket_timeout=None,
    )


class SentinelBroker(RedisBroker):
    mode = "sentinel"

    def __init__(self, target: RedisTarget) -> None:
        assert target.master_name is not None
        self.master_name = target.master_name
        self._sentinel = make_sentinel(target)
        client = self._sentinel.master_for(
            target.master_name,
            db=target.db,
            username=target.username,
            password=target.password,
            health_check_interval=0,
        )
        super().__init__(target.url, client=client)

    async def _address(self) -> tuple[str, int]:
        """The primary the Sentinels name now (the pub/sub connection goes there)."""
        host, port = await self._sentinel.discover_master(self.master_name)
        return host, int(port)

    async def close(self) -> None:
        await super().close()
        await self._sentinel.aclose()

    def describe(self) -> dict[str, object]:
        out = super().describe()
        address = self.listening_at or getattr(self._client.connection_pool, "master_address", None)
        out["master_name"] = self.master_name
        out["primary"] = f"{address[0]}:{address[1]}" if address else None
        return out
