"""Redis-backed store: shared by every process and machine on the same Redis.

Keys: `quote:{T}` (fresh, TTL), `quote_last:{T}` (last known, no expiry), `seq:{T}`,
`history:{T}` (recent updates, newest first, capped), `bars:{T}:{interval}` (bar books'
checkpoints, a hash with a TTL), `stockfeed:epoch` (the seq space),
`stockfeed:leader` (lock with TTL), `stockfeed:interest` (sorted set: ticker -> expiry),
`stockfeed:source_status` (leader's source status, TTL).

On a Redis Cluster the same keys carry hash tags, so that one ticker's keys (and its
broker channel `market:{T}`) live in one slot, on one shard: `quote:{AAPL}`,
`seq:{AAPL}`, ..., with the braces written; the deployment-wide ones share the slot of
`{stockfeed}`: `{stockfeed}:leader`, `{stockfeed}:epoch`, ... (`cluster_store`).

Behind Sentinel (`sentinel_store`) the keys are those of one Redis; the client follows
the promoted replica.

With replicas (cluster and Sentinel) a failover can lose the last writes the old primary
acknowledged (replication is asynchronous), or leave a `seq` taken that no update was
written for. The recent history is therefore kept contiguous: an update whose `seq` does
not follow the newest one in `history:{T}` starts the history again, so a replay across
the hole is impossible and the client gets a gap snapshot instead of a silent jump.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from stockfeed.broker.urls import RedisTarget
from stockfeed.shared.base import HISTORY_LENGTH, SharedStore, StoredQuote, StoreUnavailable

T = TypeVar("T")

LEADER_KEY = "stockfeed:leader"
INTEREST_KEY = "stockfeed:interest"
STATUS_KEY = "stockfeed:source_status"
EPOCH_KEY = "stockfeed:epoch"
COMMAND_TIMEOUT = 3.0
# Commands in flight per process against a cluster (its per-node pools do not queue).
CLUSTER_MAX_IN_FLIGHT = 64


@dataclass(frozen=True, slots=True)
class KeySpace:
    leader: str
    interest: str
    status: str
    epoch: str
    tagged: bool  # ticker keys as `kind:{T}` (a hash tag) rather than `kind:T`

    def of(self, kind: str, ticker: str) -> str:
        return f"{kind}:{{{ticker}}}" if self.tagged else f"{kind}:{ticker}"


SINGLE_KEYS = KeySpace(LEADER_KEY, INTEREST_KEY, STATUS_KEY, EPOCH_KEY, tagged=False)
CLUSTER_KEYS = KeySpace(
    "{stockfeed}:leader",
    "{stockfeed}:interest",
    "{stockfeed}:source_status",
    "{stockfeed}:epoch",
    tagged=True,
)

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
# put_quotes: every update of a batch (of one slot, on a cluster) in one call, rather
# than four commands each (SET, SET, LPUSH, LTRIM): the client's time per command, not
# Redis's, bounded the updater. Run by its SHA (EVALSHA); a Redis that does not know it
# (restarted, failed over, SCRIPT FLUSH) is sent the text (EVAL), which it then keeps.
# With replicas (`contiguous`) the history stays one run of consecutive seqs (see above).
# KEYS: quote, quote_last and history of each update, in order. ARGV: ttl ms, history
# length, contiguous ('1' or '0'), then the raw text and seq ('' when unknown) of each.
_PUT_QUOTES = """
local ttl, length, contiguous = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
for i = 1, #KEYS / 3 do
  local history = KEYS[3 * i]
  local raw, seq = ARGV[2 * i + 2], tonumber(ARGV[2 * i + 3])
  if contiguous and seq then
    local head = redis.call('LINDEX', history, 0)
    if head then
      local ok, prev = pcall(cjson.decode, head)
      local prev_seq = nil
      if ok and type(prev) == 'table' then prev_seq = tonumber(prev['seq']) end
      if prev_seq ~= seq - 1 then redis.call('DEL', history) end
    end
  end
  redis.call('SET', KEYS[3 * i - 2], raw, 'PX', ttl)
  redis.call('SET', KEYS[3 * i - 1], raw)
  redis.call('LPUSH', history, raw)
  redis.call('LTRIM', history, 0, length - 1)
end
return #KEYS / 3
"""
_PUT_QUOTES_SHA = hashlib.sha1(_PUT_QUOTES.encode()).hexdigest()
# Updates per _PUT_QUOTES call, about: Redis runs a script to its end before it serves
# anyone else, and a whole batch (up to 500, publish_queue.py) in one call would hold
# every other client (resume reads, the hubs' subscriptions) for milliseconds.
_PUT_CHUNK = 100

# A bar book's checkpoint (fanout/bar_feed.py), a hash {epoch, seq, state}. ARGV: epoch,
# seq, state, ttl s, create ('' for an update over an older one; else N: write only when
# no kept checkpoint of this epoch can be continued from seq N, i.e. none at N - 1 or later).
_PUT_BARS = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch == ARGV[1] then
  local kept = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
  if ARGV[5] == '' then
    if kept >= tonumber(ARGV[2]) then return 0 end
  elseif kept + 1 >= tonumber(ARGV[5]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', ARGV[2], 'state', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


def _seq_of(raw: str) -> int | None:
    try:
        seq = json.loads(raw).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (connections go to the current primary) that queues for a
    connection like RedisStore's single-Redis pool, instead of failing."""


class RedisStore(SharedStore):
    def __init__(
        self,
        url: str,
        *,
        client: aioredis.Redis | RedisCluster | None = None,
        keys: KeySpace = SINGLE_KEYS,
        contiguous_history: bool = False,
        max_in_flight: int | None = None,
    ) -> None:
        """One Redis at `url`; `cluster_store` / `sentinel_store` pass their own client."""
        self.keys = keys
        self._contiguous = contiguous_history
        self._gate = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self._sentinel: Sentinel | None = None
        if client is not None:
            self._r: aioredis.Redis | RedisCluster = client
            return
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
        self._r = aioredis.Redis.from_pool(pool)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                if self._gate is None:
                    return await awaitable
                # A cluster's per-node pools fail past their size instead of queueing:
                # queue here (within the same timeout).
                async with self._gate:
                    return await awaitable
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            # RedisClusterException: no cluster node reachable (not a RedisError).
            raise StoreUnavailable(str(exc) or "Redis did not answer in time") from exc
        finally:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # never started when the timeout hit in the queue

    # A batch is one round trip on one Redis (or Sentinel's primary); on a cluster, one
    # per node it touches, the nodes at once (redis-py's cluster pipeline groups them).
    pipelined = True

    def shard_of(self, ticker: str) -> str | None:
        if not isinstance(self._r, RedisCluster):
            return None
        try:
            node = self._r.get_node_from_key(self.keys.of("seq", ticker))
        except RedisClusterException:  # no slot map yet, or the slot is not covered
            return None
        return None if node is None else node.name

    async def next_seqs(self, tickers: Sequence[str]) -> list[int]:
        pipe = self._r.pipeline(transaction=False)
        for ticker in tickers:
            pipe.incr(self.keys.of("seq", ticker))
        return [int(value) for value in await self._call(pipe.execute())]

    async def put_quotes(self, quotes: Sequence[tuple[str, str]], ttl: float) -> None:
        if not quotes:
            return
        calls = self._put_calls(quotes, ttl)
        pipe = self._r.pipeline(transaction=False)
        for call in calls:
            # Not `pipe.evalsha`: redis-py's cluster pipeline blocks that method; the
            # command itself goes to its keys' node like any other.
            pipe.execute_command("EVALSHA", _PUT_QUOTES_SHA, *call)
        results = await self._call(pipe.execute(raise_on_error=False))
        # NOSCRIPT: that call wrote nothing. Each ticker is in one call only (its slot's),
        # so sending the refused ones again, as text, keeps every ticker's order.
        unknown = [
            call
            for call, result in zip(calls, results, strict=True)
            if isinstance(result, NoScriptError)
        ]
        failed = [
            r for r in results if isinstance(r, Exception) and not isinstance(r, NoScriptError)
        ]
        if unknown:
            pipe = self._r.pipeline(transaction=False)
            for call in unknown:
                pipe.execute_command("EVAL", _PUT_QUOTES, *call)
            await self._call(pipe.execute())
        if failed:
            raise StoreUnavailable(str(failed[0]))

    def _put_calls(self, quotes: Sequence[tuple[str, str]], ttl: float) -> list[list[Any]]:
        """The arguments (numkeys, keys, args) of the _PUT_QUOTES calls for these updates,
        each ticker's in one call, in the order given: on a cluster one call per slot (a
        script's keys must share one), else about _PUT_CHUNK updates a call."""
        keys = self.keys
        cluster = self._r if isinstance(self._r, RedisCluster) else None
        chunks = 1 + (len(quotes) - 1) // _PUT_CHUNK
        head = [int(ttl * 1000), HISTORY_LENGTH, "1" if self._contiguous else "0"]
        groups: dict[int, tuple[list[str], list[Any]]] = {}
        for ticker, raw in quotes:
            quote = keys.of("quote", ticker)
            slot = hash(ticker) % chunks if cluster is None else cluster.keyslot(quote)
            group = groups.get(slot)
            if group is None:
                group = groups[slot] = ([], list(head))
            group[0].extend((quote, keys.of("quote_last", ticker), keys.of("history", ticker)))
            # The seq only matters to the contiguous history: no parse without it.
            seq = _seq_of(raw) if self._contiguous else None
            group[1].extend((raw, "" if seq is None else seq))
        return [[len(names), *names, *args] for names, args in groups.values()]

    async def put_quote(self, ticker: str, raw: str, ttl: float) -> None:
        await self.put_quotes(((ticker, raw),), ttl)

    async def recent(self, ticker: str) -> list[str]:
        key = self.keys.of("history", ticker)
        items = await self._call(self._r.lrange(key, 0, HISTORY_LENGTH - 1))
        return [str(item) for item in reversed(items)]

    async def epoch(self) -> str:
        # Whoever finds it missing creates it; a flushed Redis therefore gets a new one.
        await self._call(self._r.set(self.keys.epoch, secrets.token_hex(4), nx=True))
        value = await self._call(self._r.get(self.keys.epoch))
        return str(value)

    async def get_quote(self, ticker: str) -> StoredQuote | None:
        keys = self.keys
        fresh, last = await self._call(
            self._r.mget(keys.of("quote", ticker), keys.of("quote_last", ticker))
        )
        if fresh is not None:
            return StoredQuote(str(fresh), fresh=True)
        if last is not None:
            return StoredQuote(str(last), fresh=False)
        return None

    async def next_seq(self, ticker: str) -> int:
        return int(await self._call(self._r.incr(self.keys.of("seq", ticker))))

    async def raise_seq(self, ticker: str, at_least: int) -> int:
        result = self._r.eval(_RAISE_SEQ, 1, self.keys.of("seq", ticker), at_least)
        return int(await self._call(result))

    async def try_lead(self, owner: str, ttl: float) -> bool:
        result = self._r.eval(_LEAD, 1, self.keys.leader, owner, int(ttl * 1000))
        return bool(await self._call(result))

    async def release_lead(self, owner: str) -> None:
        result = self._r.eval(_RELEASE, 1, self.keys.leader, owner)
        await self._call(result)

    async def leader(self) -> str | None:
        value = await self._call(self._r.get(self.keys.leader))
        return None if value is None else str(value)

    async def add_interest(self, tickers: set[str], ttl: float) -> None:
        if not tickers:
            return
        until = time.time() + ttl
        await self._call(self._r.zadd(self.keys.interest, dict.fromkeys(tickers, until)))

    async def interest(self) -> set[str]:
        now = time.time()
        pipe = self._r.pipeline(transaction=False)
        pipe.zremrangebyscore(self.keys.interest, "-inf", now)
        pipe.zrange(self.keys.interest, 0, -1)
        _, members = await self._call(pipe.execute())
        return {str(m) for m in members}

    def _bars_key(self, ticker: str, interval: str) -> str:
        return f"{self.keys.of('bars', ticker)}:{interval}"  # the ticker's slot on a cluster

    async def get_bars(self, ticker: str, interval: str) -> tuple[str, str] | None:
        epoch, state = await self._call(
            self._r.hmget(self._bars_key(ticker, interval), ["epoch", "state"])
        )
        if epoch is None or state is None:
            return None
        return str(epoch), str(state)

    async def put_bars(
        self,
        ticker: str,
        interval: str,
        epoch: str,
        seq: int,
        checkpoint: str,
        ttl: float,
        *,
        create: int | None,
    ) -> bool:
        result = self._r.eval(
            _PUT_BARS,
            1,
            self._bars_key(ticker, interval),
            epoch,
            seq,
            checkpoint,
            max(1, int(ttl)),
            "" if create is None else create,
        )
        return bool(await self._call(result))

    async def put_status(self, status: str, ttl: float) -> None:
        await self._call(self._r.set(self.keys.status, status, px=int(ttl * 1000)))

    async def get_status(self) -> str | None:
        value = await self._call(self._r.get(self.keys.status))
        return None if value is None else str(value)

    async def close(self) -> None:
        await self._r.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()


def cluster_store(target: RedisTarget) -> RedisStore:
    """The store on a Redis Cluster: hash-tagged keys, one shard per ticker."""
    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
        username=target.username,
        password=target.password,
        decode_responses=True,
        # As for one Redis: no socket_timeout (see RedisStore), `_call` bounds commands.
        socket_connect_timeout=2,
        socket_timeout=None,
        # A shard without a reachable primary must not stop the others being served.
        require_full_coverage=False,
    )
    return RedisStore(
        target.url,
        client=client,
        keys=CLUSTER_KEYS,
        contiguous_history=True,
        max_in_flight=CLUSTER_MAX_IN_FLIGHT,
    )


def sentinel_store(target: RedisTarget) -> RedisStore:
    """The store behind Sentinel: the keys of one Redis, on whichever node is primary."""
    assert target.master_name is not None
    from stockfeed.broker.sentinel import make_sentinel

    sentinel = make_sentinel(target)
    client = sentinel.master_for(
        target.master_name,
        connection_pool_class=_BlockingSentinelPool,
        max_connections=64,
        timeout=None,
        db=target.db,
        username=target.username,
        password=target.password,
        decode_responses=True,
    )
    store = RedisStore(target.url, client=client, contiguous_history=True)
    store._sentinel = sentinel
    return store
