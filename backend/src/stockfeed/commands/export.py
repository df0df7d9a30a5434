"""`stockfeed export`: what the market-data store kept, as CSV or Parquet, for notebooks.

    stockfeed export --ticker AAPL --interval 1m --from 2026-12-01 --to 2026-12-02 \\
        --format csv --out aapl-1m.csv
    stockfeed export --ticker AAPL --ticks --from 2026-12-01T14:30Z --format parquet --out t.parquet

Bars (`--interval`): time (epoch s, the bar's start as on the wire), time_utc, open, high,
low, close, volume, final, revision, origin. Ticks (`--ticks`, kept with `--keep-ticks`):
time_us, time_utc, ticker, seq, price, volume, market_time, open, high, low, prev_close,
price_decimals, source. The store is the server's (`--store`, `--data-dir`, or the same
STOCKFEED_* variables); it is only read. Parquet needs pyarrow (`pip install
'stockfeed[parquet]'`). Progress goes to stderr; CSV goes to stdout without `--out`.
Exit status: 0 done, 1 the store cannot be read, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from stockfeed.kept import KeptStore, KeptUnavailable, times
from stockfeed.kept import urls as kept_urls
from stockfeed.kept.base import wire_volume
from stockfeed.sources.base import INTERVALS
from stockfeed.tickers import InvalidTicker, normalize_ticker

BAR_FIELDS = ["time", "time_utc", "open", "high", "low", "close", "volume", "final",
              "revision", "origin"]  # fmt: skip
TICK_FIELDS = ["time_us", "time_utc", "ticker", "seq", "price", "volume", "market_time",
               "open", "high", "low", "prev_close", "price_decimals", "source"]  # fmt: skip
PAGE = 20_000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write kept bars or ticks as CSV or Parquet",
        description="Write what the market-data store kept (bars, or ticks) as CSV or Parquet.",
    )
    parser.add_argument("--ticker", required=True, help="the ticker (AAPL, BTC-USD...)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--interval", choices=INTERVALS, help="bars of this interval")
    what.add_argument("--ticks", action="store_true", help="every kept update instead")
    parser.add_argument("--from", dest="since", default=None, help="ISO time or epoch s")
    parser.add_argument("--to", dest="until", default=None, help="ISO time or epoch s (excl.)")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--out", default=None, help="file to write (CSV: default stdout)")
    parser.add_argument("--store", default=None, help="the store's URL (as stockfeed serve)")
    parser.add_argument("--data-dir", default=None, help="the SQLite store's directory")
    parser.set_defaults(run=run)


def parse_time(value: str | None, default: float) -> float:
    return default if value is None else times.parse_time(value)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


def run(args: argparse.Namespace) -> None:
    try:
        ticker = normalize_ticker(args.ticker)
        since = parse_time(args.since, 0.0)
        until = parse_time(args.until, 2**62)
    except (InvalidTicker, ValueError) as exc:
        print(f"stockfeed export: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.format == "parquet" and not args.out:
        print("stockfeed export: --format parquet needs --out FILE", file=sys.stderr)
        raise SystemExit(2)
    from stockfeed.cli import load_settings

    overrides: dict[str, object] = {}
    if args.store is not None:
        overrides["store"] = args.store
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    settings = load_settings(overrides)
    store = kept_urls.build(settings)
    if store is None:
        print("stockfeed export: the store is off (--store none): nothing kept", file=sys.stderr)
        raise SystemExit(2)
    try:
        rows = asyncio.run(_read(store, ticker, args.interval, since, until))
    except KeptUnavailable as exc:
        print(f"stockfeed export: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    fields = TICK_FIELDS if args.ticks else BAR_FIELDS
    if args.format == "parquet":
        _write_parquet(Path(args.out), fields, rows)
    elif args.out:
        with Path(args.out).open("w", newline="") as out:
            _write_csv(out, fields, rows)
    else:
        _write_csv(sys.stdout, fields, rows)
    what = "ticks" if args.ticks else f"{args.interval} bars"
    where = args.out or "stdout"
    print(f"stockfeed export: {len(rows):,} {what} of {ticker} to {where}", file=sys.stderr)


async def _read(
    store: KeptStore, ticker: str, interval: str | None, since: float, until: float
) -> list[list[Any]]:
    await store.open()
    try:
        if interval is not None:
            bars = await store.bars(ticker, interval, int(since), int(min(until, 2**62)))
            return [
                [
                    b.start,
                    _iso(b.start),
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    wire_volume(b.volume),
                    b.final,
                    b.revision,
                    b.origin,
                ]
                for b in bars
            ]
        out: list[list[Any]] = []
        after = None
        start_us, end_us = int(since * 1e6), int(min(until * 1e6, 2**62))
        while True:
            page = await store.ticks(
                start_us, end_us, tickers=frozenset({ticker}), after=after, limit=PAGE
            )
            for t in page:
                out.append([t.time_us, _iso(t.time_us / 1e6), *t[1:]])
            if len(page) < PAGE:
                return out
            last = page[-1]
            after = (last.time_us, last.ticker, last.seq)
            print(f"stockfeed export: {len(out):,} ticks...", file=sys.stderr)
    finally:
        await store.close()


def _write_csv(out: TextIO, fields: list[str], rows: list[list[Any]]) -> None:
    writer = csv.writer(out)
    writer.writerow(fields)
    writer.writerows(["" if v is None else v for v in row] for row in rows)


def _write_parquet(path: Path, fields: list[str], rows: list[list[Any]]) -> None:
    try:
        import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        print(
            "stockfeed export: Parquet needs pyarrow: pip install 'stockfeed[parquet]' "
            "(or --format csv)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    columns = {name: [row[i] for row in rows] for i, name in enumerate(fields)}
    if "volume" in columns:  # one type per column: whole shares and coins alike as float
        columns["volume"] = [None if v is None else float(v) for v in columns["volume"]]
    pq.write_table(pa.table(columns), path)
