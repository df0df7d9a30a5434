"""The market-data store's schema, one for both databases, and its migrations.

Every process applies the migrations it lacks when it opens the store (under a lock, so
processes starting together apply each once): nobody runs them by hand. A migration is
never edited once released; a change is a new one at the end. The version applied is
SQLite's `PRAGMA user_version`, PostgreSQL's `stockfeed_schema.version`.

Tables (docs/store.md describes them for people who query them directly):

- `bars`: one row per (ticker, interval, start), the bar as the wire and /api/history
  show it (`body` is its REST text, so a year of 1m bars is answered without
  re-encoding), `final`, `revision` (+1 each time a final bar was replaced by different
  values: a correction), `origin` (`built` from the update stream, `source` from its
  history).
- `quotes`: each ticker's last update as published (`body`), with its seq and epoch.
- `ticks`: every update when `--keep-ticks` is on, in time order.
- `bar_chunks`: a whole chunk of past bars (a day of 1m bars, CHUNK_SECONDS) as one
  text, their REST texts joined: a year of 1m bars is 252 rows to read, not 98,280. Made
  by the writer when a chunk's time is over, remade when one of its bars changes; only a
  cache of `bars` (a chunk missing is read from `bars`).
- `spans`: the times whose bars are all kept (see kept/base.py `Span`).

PostgreSQL partitions `bars` by month of `start` and `ticks` by day of `time_us`
(partitions are made by the writer as rows need them; retention drops whole days).
"""

from __future__ import annotations

SQLITE_MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE bars (
                ticker   TEXT    NOT NULL,
                interval TEXT    NOT NULL,
                start    INTEGER NOT NULL,
                open     REAL    NOT NULL,
                high     REAL    NOT NULL,
                low      REAL    NOT NULL,
                close    REAL    NOT NULL,
                volume   REAL,
                final    INTEGER NOT NULL,
                revision INTEGER NOT NULL DEFAULT 0,
                origin   TEXT    NOT NULL,
                body     TEXT    NOT NULL,
                PRIMARY KEY (ticker, interval, start)
            ) WITHOUT ROWID""",
            """CREATE TABLE quotes (
                ticker  TEXT    NOT NULL PRIMARY KEY,
                seq     INTEGER NOT NULL,
                epoch   TEXT    NOT NULL,
                time_ms REAL    NOT NULL,
                body    TEXT    NOT NULL
            ) WITHOUT ROWID""",
            """CREATE TABLE ticks (
                time_us        INTEGER NOT NULL,
                ticker         TEXT    NOT NULL,
                seq            INTEGER NOT NULL,
                price          REAL    NOT NULL,
                volume         REAL,
                market_time    INTEGER,
                open           REAL,
                high           REAL,
                low            REAL,
                prev_close     REAL,
                price_decimals INTEGER,
                source         TEXT,
                PRIMARY KEY (time_us, ticker, seq)
            ) WITHOUT ROWID""",
            """CREATE TABLE bar_chunks (
                ticker   TEXT    NOT NULL,
                interval TEXT    NOT NULL,
                start    INTEGER NOT NULL,
                bars     INTEGER NOT NULL,
                body     TEXT    NOT NULL,
                PRIMARY KEY (ticker, interval, start)
            ) WITHOUT ROWID""",
            """CREATE TABLE spans (
                ticker   TEXT    NOT NULL,
                interval TEXT    NOT NULL,
                start    INTEGER NOT NULL,
                "end"    INTEGER NOT NULL,
                origin   TEXT    NOT NULL,
                PRIMARY KEY (ticker, interval, start)
            ) WITHOUT ROWID""",
        ],
    ),
]

POSTGRES_MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE bars (
                ticker   text             NOT NULL,
                interval text             NOT NULL,
                start    bigint           NOT NULL,
                open     double precision NOT NULL,
                high     double precision NOT NULL,
                low      double precision NOT NULL,
                close    double precision NOT NULL,
                volume   double precision,
                final    boolean          NOT NULL,
                revision integer          NOT NULL DEFAULT 0,
                origin   text             NOT NULL,
                body     text             NOT NULL,
                PRIMARY KEY (ticker, interval, start)
            ) PARTITION BY RANGE (start)""",
            """CREATE TABLE quotes (
                ticker  text             NOT NULL PRIMARY KEY,
                seq     bigint           NOT NULL,
                epoch   text             NOT NULL,
                time_ms double precision NOT NULL,
                body    text             NOT NULL
            )""",
            """CREATE TABLE ticks (
                time_us        bigint           NOT NULL,
                ticker         text             NOT NULL,
                seq            bigint           NOT NULL,
                price          double precision NOT NULL,
                volume         double precision,
                market_time    bigint,
                open           double precision,
                high           double precision,
                low            double precision,
                prev_close     double precision,
                price_decimals smallint,
                source         text,
                PRIMARY KEY (time_us, ticker, seq)
            ) PARTITION BY RANGE (time_us)""",
            """CREATE TABLE bar_chunks (
                ticker   text    NOT NULL,
                interval text    NOT NULL,
                start    bigint  NOT NULL,
                bars     integer NOT NULL,
                body     text    NOT NULL,
                PRIMARY KEY (ticker, interval, start)
            )""",
            """CREATE TABLE spans (
                ticker   text   NOT NULL,
                interval text   NOT NULL,
                start    bigint NOT NULL,
                "end"    bigint NOT NULL,
                origin   text   NOT NULL,
                PRIMARY KEY (ticker, interval, start)
            )""",
        ],
    ),
]

LATEST = max(v for v, _ in SQLITE_MIGRATIONS)
assert LATEST == max(v for v, _ in POSTGRES_MIGRATIONS), "both databases share one schema"

# PostgreSQL partitions: a month of bars (by `start`, epoch s), a day of ticks (`time_us`).
BARS_PARTITION = "month"
TICKS_PARTITION_US = 86400 * 1_000_000

# The span of a bar chunk per interval (epoch-aligned): about 1,440 bars each at most.
CHUNK_SECONDS = {"1m": 86400, "5m": 5 * 86400, "15m": 15 * 86400, "1h": 60 * 86400}
