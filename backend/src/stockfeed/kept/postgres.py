"""The market-data store on PostgreSQL, for deployments past one machine.

The same tables as SQLite (kept/schema.py), with `bars` partitioned by month of `start`
and `ticks` by day of `time_us`: the writer makes a partition the first time a row needs
it, and retention drops whole days of ticks (instant, no vacuum). Bars are upserted
`ON CONFLICT (ticker, interval, start)` with the same rules as SQLite's.

psycopg 3: reads through its async connection pool (any process), writes through one
plain connection on the writer thread of the process whose updater leads. Migrations
run at start under an advisory lock, so processes starting together apply each once.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from stockfeed.kept.base import (
    ALL_INTERVALS,
    Batch,
    BatchWriter,
    KeptBar,
    KeptQuote,
    KeptStore,
    KeptTick,
    KeptUnavailable,
    Span,
    closed_chunks,
    join_chunks,
)
from stockfeed.kept.schema import (
    CHUNK_SECONDS,
    LATEST,
    POSTGRES_MIGRATIONS,
    TICKS_PARTITION_US,
)
from stockfeed.kept.sqlite import BAR_COLUMNS, TICK_COLUMNS, bar_row, kept_bar, kept_tick, tick_row
from stockfeed.kept.urls import redact
from stockfeed.sources.base import INTERVALS

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the migrations ("stockfeed" in the bytes of an int8).
MIGRATION_LOCK = 0x73746F636B666565
CONNECT_TIMEOUT_S = 5
POOL_SIZE = 4

UPSERT_BAR = """
INSERT INTO bars AS b (ticker, interval, start, open, high, low, close, volume, final,
                       revision, origin, body)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s)
ON CONFLICT (ticker, interval, start) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, final = excluded.final, origin = excluded.origin,
    body = excluded.body,
    revision = b.revision + CASE WHEN b.final AND b.body <> excluded.body THEN 1 ELSE 0 END
WHERE (b.body <> excluded.body OR b.final <> excluded.final OR b.origin <> excluded.origin)
  AND (excluded.final OR NOT b.final)
"""
INSERT_SOURCE_BAR = """
INSERT INTO bars AS b (ticker, interval, start, open, high, low, close, volume, final,
                       revision, origin, body)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s)
ON CONFLICT (ticker, interval, start) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, final = excluded.final, body = excluded.body
WHERE b.origin = 'source' AND NOT b.final
"""
UPSERT_QUOTE = """
INSERT INTO quotes (ticker, seq, epoch, time_ms, body) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (ticker) DO UPDATE SET
    seq = excluded.seq, epoch = excluded.epoch, time_ms = excluded.time_ms, body = excluded.body
"""
INSERT_TICK = f"""
INSERT INTO ticks ({TICK_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
REBUILD_CHUNK = """
INSERT INTO bar_chunks (ticker, interval, start, bars, body)
SELECT %s, %s, %s, count(*), coalesce(string_agg(body, ',' ORDER BY start), '') FROM bars
WHERE ticker = %s AND interval = %s AND start >= %s AND start < %s
ON CONFLICT (ticker, interval, start) DO UPDATE SET bars = excluded.bars, body = excluded.body
"""
UPSERT_SPAN = """
INSERT INTO spans AS s (ticker, interval, start, "end", origin) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (ticker, interval, start) DO UPDATE SET "end" = GREATEST(s."end", excluded."end")
"""
_TICKS_PART = re.compile(r"^ticks_d(\d{8})$")


def _month_bounds(start: int) -> tuple[str, int, int]:
    """(partition name, from, to) of the month of epoch second `start`."""
    at = datetime.fromtimestamp(start, UTC)
    first = calendar.timegm((at.year, at.month, 1, 0, 0, 0))
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    after = calendar.timegm((year, month, 1, 0, 0, 0))
    return f"bars_m{at.year:04d}{at.month:02d}", first, after


def _day_bounds(time_us: int) -> tuple[str, int, int]:
    first = time_us - time_us % TICKS_PARTITION_US
    day = datetime.fromtimestamp(first / 1_000_000, UTC)
    return f"ticks_d{day:%Y%m%d}", first, first + TICKS_PARTITION_US


def _unavailable(exc: Exception) -> KeptUnavailable:
    return KeptUnavailable(f"PostgreSQL: {str(exc).strip() or type(exc).__name__}")


class PostgresWriter(BatchWriter):
    def __init__(self, url: str) -> None:
        try:
            # Autocommit: reads commit at once; each write is its own `transaction()`.
            self.conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
        except psycopg.Error as exc:
            raise _unavailable(exc) from None
        self._partitions: set[str] = set()

    def _partition(
        self, cur: psycopg.Cursor[Any], table: str, bounds: tuple[str, int, int]
    ) -> None:
        name, first, after = bounds
        if name in self._partitions:
            return
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
            f"FOR VALUES FROM ({first}) TO ({after})"
        )
        self._partitions.add(name)

    def write(self, batch: Batch) -> None:
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                bars = batch.bars + batch.source_bars
                for bounds in {_month_bounds(b.start) for b in bars}:
                    self._partition(cur, "bars", bounds)
                for bounds in {_day_bounds(t.time_us) for t in batch.ticks}:
                    self._partition(cur, "ticks", bounds)
                if batch.bars:
                    cur.executemany(UPSERT_BAR, [bar_row(b) for b in batch.bars])
                if batch.source_bars:
                    cur.executemany(INSERT_SOURCE_BAR, [bar_row(b) for b in batch.source_bars])
                for ticker, interval, first in closed_chunks(bars, time.time()):
                    after = first + CHUNK_SECONDS[interval]
                    cur.execute(
                        REBUILD_CHUNK, (ticker, interval, first, ticker, interval, first, after)
                    )
                if batch.quotes:
                    cur.executemany(
                        UPSERT_QUOTE,
                        [(q.ticker, q.seq, q.epoch, q.time_ms, q.body) for q in batch.quotes],
                    )
                if batch.ticks:
                    cur.executemany(INSERT_TICK, [tick_row(t) for t in batch.ticks])
                if batch.spans:
                    cur.executemany(
                        UPSERT_SPAN,
                        [(s.ticker, s.interval, s.start, s.end, s.origin) for s in batch.spans],
                    )
        except psycopg.Error as exc:
            self._partitions.clear()  # one may have been rolled back with the batch
            raise _unavailable(exc) from None

    def _tick_partitions(self) -> list[tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'ticks' "
            "AND p.relnamespace = current_schema()::regnamespace"
        ).fetchall()
        out = []
        for (name,) in rows:
            found = _TICKS_PART.match(str(name))
            if found:
                day = datetime.strptime(found.group(1), "%Y%m%d").replace(tzinfo=UTC)
                out.append((str(name), int(day.timestamp()) * 1_000_000))
        return sorted(out, key=lambda item: item[1])

    def drop_ticks_before(self, time_us: int) -> int:
        """Whole days of ticks before `time_us` (their partitions dropped: not counted)."""
        dropped = 0
        try:
            with self.conn.transaction():
                for name, first in self._tick_partitions():
                    if first + TICKS_PARTITION_US <= time_us:
                        self.conn.execute(f"DROP TABLE {name}")
                        self._partitions.discard(name)
                        dropped += 1
        except psycopg.Error as exc:
            raise _unavailable(exc) from None
        return -1 if dropped else 0

    def oldest_tick_us(self) -> int | None:
        try:
            parts = self._tick_partitions()
            for name, _ in parts:
                row = self.conn.execute(f"SELECT min(time_us) FROM {name}").fetchone()
                if row is not None and row[0] is not None:
                    return int(row[0])
        except psycopg.Error as exc:
            raise _unavailable(exc) from None
        return None

    def size_bytes(self) -> int:
        try:
            row = self.conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace "
                "AND (c.relname IN ('quotes', 'spans', 'bar_chunks', 'stockfeed_schema') "
                "OR c.relname LIKE 'bars\\_m%%' OR c.relname LIKE 'ticks\\_d%%')"
            ).fetchone()
        except psycopg.Error as exc:
            raise _unavailable(exc) from None
        return int(row[0]) if row is not None else 0

    def close(self) -> None:
        self.conn.close()


class PostgresStore(KeptStore):
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: AsyncConnectionPool | None = None

    @property
    def where(self) -> str:
        return redact(self.url)

    async def open(self) -> None:
        pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            name="stockfeed-kept",
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS stockfeed_schema (version integer NOT NULL)"
                )
                row = await (
                    await conn.execute("SELECT max(version) FROM stockfeed_schema")
                ).fetchone()
                version = int(row[0]) if row is not None and row[0] is not None else 0
                if version < LATEST:
                    for number, statements in POSTGRES_MIGRATIONS:
                        if number > version:
                            for statement in statements:
                                await conn.execute(statement)
                    await conn.execute("DELETE FROM stockfeed_schema")
                    await conn.execute(
                        "INSERT INTO stockfeed_schema (version) VALUES (%s)", (LATEST,)
                    )
                    log.info("store: PostgreSQL schema %d -> %d", version, LATEST)
        except Exception as exc:
            await pool.close()
            raise _unavailable(exc) from None
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def open_writer(self) -> BatchWriter:
        return PostgresWriter(self.url)

    async def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._pool is None:
            raise KeptUnavailable("the store is closed")
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(sql, args)
                return await cur.fetchall()
        except (psycopg.Error, TimeoutError) as exc:
            raise _unavailable(exc) from None

    # -- reads ---------------------------------------------------------------------------

    async def history_pieces(self, ticker: str, interval: str, start: int, end: int) -> list[bytes]:
        if self._pool is None:
            raise KeptUnavailable("the store is closed")
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur = await conn.execute(
                    "SELECT start, convert_to(body, 'UTF8') FROM bar_chunks WHERE ticker = %s "
                    "AND interval = %s AND start >= %s AND start < %s ORDER BY start",
                    (ticker, interval, start, end),
                )
                chunks = [(int(first), bytes(body)) for first, body in await cur.fetchall()]
                pieces: list[bytes] = []
                for part in join_chunks(interval, start, end, chunks):
                    if isinstance(part, bytes):
                        pieces.append(part)
                        continue
                    cur = await conn.execute(
                        "SELECT convert_to(string_agg(body, ',' ORDER BY start), 'UTF8') "
                        "FROM bars WHERE ticker = %s AND interval = %s AND start >= %s "
                        "AND start < %s",
                        (ticker, interval, *part),
                    )
                    row = await cur.fetchone()
                    if row is not None and row[0]:
                        pieces.append(bytes(row[0]))
                return pieces
        except (psycopg.Error, TimeoutError) as exc:
            raise _unavailable(exc) from None

    async def bars(
        self, ticker: str, interval: str, start: int, end: int, *, newest: int | None = None
    ) -> list[KeptBar]:
        sql = (
            f"SELECT {BAR_COLUMNS} FROM bars WHERE ticker = %s AND interval = %s "
            "AND start >= %s AND start < %s"
        )
        if newest is None:
            rows = await self._query(sql + " ORDER BY start", (ticker, interval, start, end))
            return [kept_bar(r) for r in rows]
        rows = await self._query(
            sql + " ORDER BY start DESC LIMIT %s", (ticker, interval, start, end, newest)
        )
        return [kept_bar(r) for r in reversed(rows)]

    async def last_quote(self, ticker: str) -> KeptQuote | None:
        rows = await self._query(
            "SELECT ticker, seq, epoch, time_ms, body FROM quotes WHERE ticker = %s", (ticker,)
        )
        return KeptQuote(*rows[0]) if rows else None

    async def quote_seqs(self) -> dict[str, int]:
        rows = await self._query("SELECT ticker, seq FROM quotes", ())
        return {str(t): int(s) for t, s in rows}

    async def tickers(self) -> list[str]:
        rows = await self._query("SELECT ticker FROM quotes ORDER BY ticker", ())
        return [str(r[0]) for r in rows]

    async def _snapshot(self, reads: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
        """Several reads in one REPEATABLE READ transaction: one snapshot."""
        if self._pool is None:
            raise KeptUnavailable("the store is closed")
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                out = []
                for sql, args in reads:
                    cur = await conn.execute(sql, args)
                    out.append(await cur.fetchall())
                return out
        except (psycopg.Error, TimeoutError) as exc:
            raise _unavailable(exc) from None

    async def book_state(
        self, ticker: str, interval: str, newest: int
    ) -> tuple[KeptQuote | None, list[KeptBar]]:
        quote, rows = await self._snapshot(
            [
                (
                    "SELECT ticker, seq, epoch, time_ms, body FROM quotes WHERE ticker = %s",
                    (ticker,),
                ),
                (
                    f"SELECT {BAR_COLUMNS} FROM bars WHERE ticker = %s AND interval = %s "
                    "ORDER BY start DESC LIMIT %s",
                    (ticker, interval, newest),
                ),
            ]
        )
        return (
            KeptQuote(*quote[0]) if quote else None,
            [kept_bar(r) for r in reversed(rows)],
        )

    async def seed(self, ticker: str) -> tuple[KeptQuote | None, dict[str, KeptBar]]:
        reads: list[tuple[str, tuple[Any, ...]]] = [
            ("SELECT ticker, seq, epoch, time_ms, body FROM quotes WHERE ticker = %s", (ticker,))
        ]
        for interval in INTERVALS:
            reads.append(
                (
                    f"SELECT {BAR_COLUMNS} FROM bars WHERE ticker = %s AND interval = %s "
                    "AND origin = 'built' ORDER BY start DESC LIMIT 1",
                    (ticker, interval),
                )
            )
        quote, *per_interval = await self._snapshot(reads)
        bars = {
            i: kept_bar(rows[0]) for i, rows in zip(INTERVALS, per_interval, strict=True) if rows
        }
        return (KeptQuote(*quote[0]) if quote else None), bars

    async def spans(self, ticker: str, interval: str, start: int, end: int) -> list[Span]:
        rows = await self._query(
            'SELECT ticker, interval, start, "end", origin FROM spans WHERE ticker = %s '
            'AND interval IN (%s, %s) AND "end" > %s AND start < %s ORDER BY start',
            (ticker, interval, ALL_INTERVALS, start, end),
        )
        return [Span(*r) for r in rows]

    async def ticks(
        self,
        start_us: int,
        end_us: int,
        *,
        tickers: frozenset[str] | None = None,
        after: tuple[int, str, int] | None = None,
        limit: int = 5000,
    ) -> list[KeptTick]:
        sql = f"SELECT {TICK_COLUMNS} FROM ticks WHERE time_us >= %s AND time_us < %s"
        args: list[Any] = [start_us, end_us]
        if after is not None:
            sql += " AND (time_us, ticker, seq) > (%s, %s, %s)"
            args += list(after)
        if tickers is not None:
            sql += " AND ticker = ANY(%s)"
            args.append(sorted(tickers))
        sql += " ORDER BY time_us, ticker, seq LIMIT %s"
        args.append(limit)
        rows = await self._query(sql, tuple(args))
        return [kept_tick(r) for r in rows]
