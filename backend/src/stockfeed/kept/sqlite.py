"""The embedded market-data store: one SQLite file in WAL mode, no setup.

WAL lets every process of the host read while the elected updater writes ("readers do not
block writers and a writer does not block readers", sqlite.org/wal.html). The writer
commits a batch at a time with `synchronous=NORMAL`: a commit survives the process being
killed (it is in the WAL the moment the commit returns); only a power cut can take the
last ones. Reads run on two threads of their own, each with its own connection, so the
event loop never waits for the disk.

`auto_vacuum=INCREMENTAL` (set when the file is created) lets the retention job give the
pages of deleted ticks back to the file system.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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
from stockfeed.kept.schema import CHUNK_SECONDS, LATEST, SQLITE_MIGRATIONS
from stockfeed.sources.base import INTERVALS

T = TypeVar("T")

READ_THREADS = 2
BUSY_TIMEOUT_S = 5.0

BAR_COLUMNS = "ticker, interval, start, open, high, low, close, volume, final, revision, origin"
TICK_COLUMNS = (
    "time_us, ticker, seq, price, volume, market_time, open, high, low, prev_close, "
    "price_decimals, source"
)

# A built bar replaces what is kept (a final one that changes is a correction: its
# revision goes up), but a forming bar never replaces a final one: a writer that lost the
# lead and wrote late must not undo what the new one made final.
UPSERT_BAR = """
INSERT INTO bars (ticker, interval, start, open, high, low, close, volume, final, revision,
                  origin, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
ON CONFLICT (ticker, interval, start) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, final = excluded.final, origin = excluded.origin,
    body = excluded.body,
    revision = bars.revision + (bars.final AND bars.body <> excluded.body)
WHERE (bars.body <> excluded.body OR bars.final <> excluded.final
       OR bars.origin <> excluded.origin)
  AND (excluded.final OR NOT bars.final)
"""
# The source's history only fills holes: over a kept bar it writes nothing, but over its
# own bar that was still forming when it was kept.
INSERT_SOURCE_BAR = """
INSERT INTO bars (ticker, interval, start, open, high, low, close, volume, final, revision,
                  origin, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
ON CONFLICT (ticker, interval, start) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, final = excluded.final, body = excluded.body
WHERE bars.origin = 'source' AND NOT bars.final
"""
UPSERT_QUOTE = """
INSERT INTO quotes (ticker, seq, epoch, time_ms, body) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (ticker) DO UPDATE SET
    seq = excluded.seq, epoch = excluded.epoch, time_ms = excluded.time_ms, body = excluded.body
"""
INSERT_TICK = f"""
INSERT INTO ticks ({TICK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""
REBUILD_CHUNK = """
INSERT OR REPLACE INTO bar_chunks (ticker, interval, start, bars, body)
SELECT ?, ?, ?, count(*), coalesce(group_concat(body, ','), '') FROM (
    SELECT body FROM bars WHERE ticker = ? AND interval = ? AND start >= ? AND start < ?
    ORDER BY start)
"""
UPSERT_SPAN = """
INSERT INTO spans (ticker, interval, start, "end", origin) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (ticker, interval, start) DO UPDATE SET "end" = max("end", excluded."end")
"""


def bar_row(bar: KeptBar) -> tuple[Any, ...]:
    return (
        bar.ticker,
        bar.interval,
        bar.start,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume,
        bool(bar.final),
        bar.origin,
        bar.rest_text(),
    )


def tick_row(tick: KeptTick) -> tuple[Any, ...]:
    return tick  # a KeptTick is the row, in column order


def kept_bar(row: tuple[Any, ...]) -> KeptBar:
    ticker, interval, start, open_, high, low, close, volume, final, revision, origin = row
    return KeptBar(
        ticker, interval, start, open_, high, low, close, volume, bool(final), revision, origin
    )


def kept_tick(row: tuple[Any, ...]) -> KeptTick:
    return KeptTick(*row)


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are begun explicitly)."""
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise KeptUnavailable(f"cannot open {path}: {exc}") from None
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def migrate(path: Path) -> int:
    """Create or bring the file up to the latest schema; the version it had before."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        # Only takes effect on a new file: it must come before the first table.
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise KeptUnavailable(f"{path}: cannot use WAL mode (got {mode})")
        before = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if before >= LATEST:
            return before
        conn.execute("BEGIN IMMEDIATE")  # processes starting together: one migrates
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            for number, statements in SQLITE_MIGRATIONS:
                if number > version:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return before
    except sqlite3.Error as exc:
        raise KeptUnavailable(f"cannot prepare {path}: {exc}") from None
    finally:
        conn.close()


class SqliteWriter(BatchWriter):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)

    def write(self, batch: Batch) -> None:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if batch.bars:
                    conn.executemany(UPSERT_BAR, [bar_row(b) for b in batch.bars])
                if batch.source_bars:
                    conn.executemany(INSERT_SOURCE_BAR, [bar_row(b) for b in batch.source_bars])
                for ticker, interval, first in closed_chunks(
                    batch.bars + batch.source_bars, time.time()
                ):
                    after = first + CHUNK_SECONDS[interval]
                    conn.execute(
                        REBUILD_CHUNK, (ticker, interval, first, ticker, interval, first, after)
                    )
                if batch.quotes:
                    conn.executemany(
                        UPSERT_QUOTE,
                        [(q.ticker, q.seq, q.epoch, q.time_ms, q.body) for q in batch.quotes],
                    )
                if batch.ticks:
                    conn.executemany(INSERT_TICK, [tick_row(t) for t in batch.ticks])
                if batch.spans:
                    conn.executemany(
                        UPSERT_SPAN,
                        [(s.ticker, s.interval, s.start, s.end, s.origin) for s in batch.spans],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise KeptUnavailable(f"cannot write {self.path}: {exc}") from None

    def drop_ticks_before(self, time_us: int) -> int:
        try:
            cursor = self.conn.execute("DELETE FROM ticks WHERE time_us < ?", (time_us,))
        except sqlite3.Error as exc:
            raise KeptUnavailable(str(exc)) from None
        return cursor.rowcount

    def oldest_tick_us(self) -> int | None:
        row = self.conn.execute("SELECT min(time_us) FROM ticks").fetchone()
        return None if row[0] is None else int(row[0])

    def size_bytes(self) -> int:
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def compact(self) -> None:
        self.conn.execute("PRAGMA incremental_vacuum")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.conn.close()


class SqliteStore(KeptStore):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return str(self.path)

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="kept-read")
        await self._run(lambda: migrate(self.path))

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def open_writer(self) -> BatchWriter:
        return SqliteWriter(self.path)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _run(self, work: Callable[[], T]) -> T:
        if self._pool is None:
            raise KeptUnavailable("the store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        except sqlite3.Error as exc:
            raise KeptUnavailable(f"{self.path}: {exc}") from None

    async def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._run(lambda: self._conn().execute(sql, args).fetchall())

    # -- reads ---------------------------------------------------------------------------

    async def history_pieces(self, ticker: str, interval: str, start: int, end: int) -> list[bytes]:
        def read() -> list[bytes]:
            conn = self._conn()
            conn.text_factory = bytes  # the texts as stored (UTF-8): no decoding
            conn.execute("BEGIN")  # the chunks and the bars between them: one snapshot
            try:
                chunks = conn.execute(
                    "SELECT start, body FROM bar_chunks WHERE ticker = ? AND interval = ? "
                    "AND start >= ? AND start < ? ORDER BY start",
                    (ticker, interval, start, end),
                ).fetchall()
                pieces: list[bytes] = []
                for part in join_chunks(interval, start, end, chunks):
                    if isinstance(part, bytes):
                        pieces.append(part)
                        continue
                    (text,) = conn.execute(
                        "SELECT group_concat(body, ',') FROM (SELECT body FROM bars "
                        "WHERE ticker = ? AND interval = ? AND start >= ? AND start < ? "
                        "ORDER BY start)",
                        (ticker, interval, *part),
                    ).fetchone()
                    if text:
                        pieces.append(text)
            finally:
                conn.execute("COMMIT")
                conn.text_factory = str
            return pieces

        return await self._run(read)

    async def bars(
        self, ticker: str, interval: str, start: int, end: int, *, newest: int | None = None
    ) -> list[KeptBar]:
        sql = (
            f"SELECT {BAR_COLUMNS} FROM bars WHERE ticker = ? AND interval = ? "
            "AND start >= ? AND start < ?"
        )
        if newest is None:
            rows = await self._query(sql + " ORDER BY start", (ticker, interval, start, end))
            return [kept_bar(r) for r in rows]
        rows = await self._query(
            sql + " ORDER BY start DESC LIMIT ?", (ticker, interval, start, end, newest)
        )
        return [kept_bar(r) for r in reversed(rows)]

    async def last_quote(self, ticker: str) -> KeptQuote | None:
        rows = await self._query(
            "SELECT ticker, seq, epoch, time_ms, body FROM quotes WHERE ticker = ?", (ticker,)
        )
        return KeptQuote(*rows[0]) if rows else None

    async def quote_seqs(self) -> dict[str, int]:
        rows = await self._query("SELECT ticker, seq FROM quotes", ())
        return {str(t): int(s) for t, s in rows}

    async def tickers(self) -> list[str]:
        rows = await self._query("SELECT ticker FROM quotes ORDER BY ticker", ())
        return [str(r[0]) for r in rows]

    async def book_state(
        self, ticker: str, interval: str, newest: int
    ) -> tuple[KeptQuote | None, list[KeptBar]]:
        def read() -> tuple[KeptQuote | None, list[KeptBar]]:
            conn = self._conn()
            conn.execute("BEGIN")  # one snapshot of the WAL for both reads
            try:
                quote = conn.execute(
                    "SELECT ticker, seq, epoch, time_ms, body FROM quotes WHERE ticker = ?",
                    (ticker,),
                ).fetchone()
                rows = conn.execute(
                    f"SELECT {BAR_COLUMNS} FROM bars WHERE ticker = ? AND interval = ? "
                    "ORDER BY start DESC LIMIT ?",
                    (ticker, interval, newest),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return (
                KeptQuote(*quote) if quote else None,
                [kept_bar(r) for r in reversed(rows)],
            )

        return await self._run(read)

    async def seed(self, ticker: str) -> tuple[KeptQuote | None, dict[str, KeptBar]]:
        def read() -> tuple[KeptQuote | None, dict[str, KeptBar]]:
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                quote = conn.execute(
                    "SELECT ticker, seq, epoch, time_ms, body FROM quotes WHERE ticker = ?",
                    (ticker,),
                ).fetchone()
                bars: dict[str, KeptBar] = {}
                for interval in INTERVALS:
                    row = conn.execute(
                        f"SELECT {BAR_COLUMNS} FROM bars WHERE ticker = ? AND interval = ? "
                        "AND origin = 'built' ORDER BY start DESC LIMIT 1",
                        (ticker, interval),
                    ).fetchone()
                    if row is not None:
                        bars[interval] = kept_bar(row)
            finally:
                conn.execute("COMMIT")
            return (KeptQuote(*quote) if quote else None), bars

        return await self._run(read)

    async def spans(self, ticker: str, interval: str, start: int, end: int) -> list[Span]:
        rows = await self._query(
            'SELECT ticker, interval, start, "end", origin FROM spans WHERE ticker = ? '
            'AND interval IN (?, ?) AND "end" > ? AND start < ? ORDER BY start',
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
        sql = f"SELECT {TICK_COLUMNS} FROM ticks WHERE time_us >= ? AND time_us < ?"
        args: list[Any] = [start_us, end_us]
        if after is not None:
            sql += " AND (time_us, ticker, seq) > (?, ?, ?)"
            args += list(after)
        if tickers is not None:
            sql += f" AND ticker IN ({','.join('?' * len(tickers))})"
            args += sorted(tickers)
        sql += " ORDER BY time_us, ticker, seq LIMIT ?"
        args.append(limit)
        rows = await self._query(sql, tuple(args))
        return [kept_tick(r) for r in rows]
