"""Redis-backed store: shared by every process and machine on the same Redis.

Keys: `quote:{T}` (fresh, TTL), `quote_last:{T}` (last known, no expiry), `seq:{T}`,
`history:{T}` (recent updates, newest first, capped), `stockfeed:epoch` (the seq space),
`stockfeed:leader` (lock with TTL), `stockfeed:interest` (sorted set: ticker -> expiry),
`stockfeed:source_status` (leader's source status, TTL).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stockfeed.store.base import HISTORY_LENGTH, SharedStore, StoredQuote, StoreUnavailable

T = TypeVar("T")

LEADER_KEY = "stockfeed:leader"
INTEREST_KEY = "stockfeed:interest"
STATUS_KEY = "stockfeed:source_status"
EPOCH_KEY = "stockfeed:epoch"
COMMAND_TIMEOUT = 3.0

# Renew only if we still own the lock; take it only if free. One round trip, atomic.
_LEAD = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RAISE_SEQ = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""


class RedisStore(SharedStore):
    def __init__(self, url: str) -> None:
        # socket_timeout=None (redis-py 8 defaults to 5 s): with one, redis-py wraps each
        # write in asyncio.wait_for, and on Python 3.11 cancelling a task inside it can
        # hang forever (seen here: a server that never finished its SIGTERM). `_call`
        # bounds every command instead.
        # A blocking pool: a reconnect storm (thousands of resumes reading history at once)
        # queues for a connection instead of failing with "Too many connections" (the
        # default pool's limit), which turned replays into gap snapshots and made the
        # updater drop ticks. The wait is bounded by `_call`'s timeout like the command.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=None,
            socket_connect_timeout=2,
            socket_timeout=None,
            decode_responses=True,
        )
        self._r: aioredis.Redis = aioredis.Redis.from_pool(pool)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                return await awaitable
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(str(exc) or "Redis did not answer in time") from exc

    async def put_quote(self, ticker: str, raw: str, ttl: float) -> None:
        pipe = self._r.pipeline(transaction=False)
        pipe.set(f"quote:{ticker}", raw, px=int(ttl * 1000))
        pipe.set(f"quote_last:{ticker}", raw)
        pipe.lpush(f"history:{ticker}", raw)
        pipe.ltrim(f"history:{ticker}", 0, HISTORY_LENGTH - 1)
        await self._call(pipe.execute())

    async def recent(self, ticker: str) -> list[str]:
        items = await self._call(self._r.lrange(f"history:{ticker}", 0, HISTORY_LENGTH - 1))
        return [str(item) for item in reversed(items)]

    async def epoch(self) -> str:
        # Whoever finds it missing creates it; a flushed Redis therefore gets a new one.
        await self._call(self._r.set(EPOCH_KEY, secrets.token_hex(4), nx=True))
        value = await self._call(self._r.get(EPOCH_KEY))
        return str(value)

    async def get_quote(self, ticker: str) -> StoredQuote | None:
        fresh, last = await self._call(self._r.mget(f"quote:{ticker}", f"quote_last:{ticker}"))
        if fresh is not None:
            return StoredQuote(str(fresh), fresh=True)
        if last is not None:
            return StoredQuote(str(last), fresh=False)
        return None

    async def next_seq(self, ticker: str) -> int:
        return int(await self._call(self._r.incr(f"seq:{ticker}")))

    async def raise_seq(self, ticker: str, at_least: int) -> int:
        result = self._r.eval(_RAISE_SEQ, 1, f"seq:{ticker}", at_least)
        return int(await self._call(result))

    async def try_lead(self, owner: str, ttl: float) -> bool:
        result = self._r.eval(_LEAD, 1, LEADER_KEY, owner, int(ttl * 1000))
        return bool(await self._call(result))

    async def release_lead(self, owner: str) -> None:
        result = self._r.eval(_RELEASE, 1, LEADER_KEY, owner)
        await self._call(result)

    async def leader(self) -> str | None:
        value = await self._call(self._r.get(LEADER_KEY))
        return None if value is None else str(value)

    async def add_interest(self, tickers: set[str], ttl: float) -> None:
        if not tickers:
            return
        until = time.time() + ttl
        await self._call(self._r.zadd(INTEREST_KEY, dict.fromkeys(tickers, until)))

    async def interest(self) -> set[str]:
        now = time.time()
        pipe = self._r.pipeline(transaction=False)
        pipe.zremrangebyscore(INTEREST_KEY, "-inf", now)
        pipe.zrange(INTEREST_KEY, 0, -1)
        _, members = await self._call(pipe.execute())
        return {str(m) for m in members}

    async def put_status(self, status: str, ttl: float) -> None:
        await self._call(self._r.set(STATUS_KEY, status, px=int(ttl * 1000)))

    async def get_status(self) -> str | None:
        value = await self._call(self._r.get(STATUS_KEY))
        return None if value is None else str(value)

    async def close(self) -> None:
        await self._r.aclose()
