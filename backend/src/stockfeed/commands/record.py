"""`stockfeed record --out FILE`: record the live stream in the replay format.

Each `price_update` (and `snapshot`) the client passes on becomes one JSON Lines tick of
docs/protocol.md "Replay file format", so `stockfeed serve --source replay --replay-file
FILE` plays the day back. Every line is flushed as it is written: a recording that is
killed keeps everything it got, and the file is valid up to its last line.

The replay format needs lines sorted by `market_time`. Live tickers do not always arrive
in that order (a quiet ticker's last trade can be older than a busy one's), so a tick
older than the line before is written with that line's time (counted as `reordered` in
the summary): prices and their order are kept, only the spacing of playback moves.

Progress (ticks, tickers, elapsed, connection state) goes to stderr, never into the file.
Exit status: 0 when done (limit reached, Ctrl-C or SIGTERM), 1 when the server cannot be
reached or refuses every ticker, 2 for bad arguments (ticker, URL, --out path).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from stockfeed.client import (
    ErrorMessage,
    Message,
    PriceUpdate,
    Snapshot,
    StockfeedClient,
    StockfeedError,
)
from stockfeed.client.cli_support import (
    CommandError,
    add_connection_args,
    check_url,
    parse_tickers,
    run_command,
    server_watchlist,
)
from stockfeed.models import Tick
from stockfeed.sources.replay_format import format_line


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "record",
        help="record the live stream to a replay file",
        description="Record live prices to a JSON Lines file that --source replay plays back.",
    )
    parser.add_argument("--out", required=True, help="file to write (replaced if it exists)")
    add_connection_args(parser)
    parser.add_argument(
        "--tickers", default="", help="comma-separated tickers (default: the server's watchlist)"
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument(
        "--max-messages", type=int, default=None, help="stop after N recorded ticks"
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=5.0,
        help="seconds between progress lines on stderr (default 5; 0: none)",
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> None:
    run_command("record", _record(args))


def _check_out(path: Path) -> None:
    """Refuse an --out we cannot write before connecting (and before truncating it)."""
    if path.is_dir():
        raise CommandError(f"cannot write {path}: it is a directory", code=2)
    parent = path.parent
    if not parent.is_dir():
        raise CommandError(f"cannot write {path}: directory {parent} does not exist", code=2)


def tick_line(msg: PriceUpdate | Snapshot, market_time: int) -> str:
    """One replay-format line (fields the server did not have are left out)."""
    data = msg.data
    return format_line(
        Tick(
            ticker=msg.ticker,
            price=data.price,
            market_time=market_time,
            volume=data.volume,
            open=data.open,
            high=data.high,
            low=data.low,
            prev_close=data.prev_close,
            change=data.change,
            change_percent=data.change_percent,
        )
    )


class Recorder:
    def __init__(self, out: TextIO, path: Path) -> None:
        self.out = out
        self.path = path
        self.ticks = 0
        self.reordered = 0
        self.tickers: set[str] = set()
        self.last_time: int | None = None
        self.started = time.monotonic()

    def write(self, msg: PriceUpdate | Snapshot) -> None:
        if msg.data.price <= 0:
            return  # the replay format cannot hold it; no real quote has it
        when = msg.data.market_time
        if when is None:
            when = int(msg.timestamp)
        if self.last_time is not None and when < self.last_time:
            when = self.last_time
            self.reordered += 1
        self.last_time = when
        self.out.write(tick_line(msg, when))
        self.out.flush()
        self.ticks += 1
        self.tickers.add(msg.ticker)

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        text = (
            f"wrote {self.ticks} ticks of {len(self.tickers)} tickers to {self.path} "
            f"in {elapsed:.1f} s"
        )
        if self.reordered:
            text += f" ({self.reordered} late ticks given the previous line's time)"
        return text


def _elapsed(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


async def _progress(rec: Recorder, client: StockfeedClient, every: float) -> None:
    tty = sys.stderr.isatty()
    while True:
        await asyncio.sleep(every)
        line = (
            f"recording: {rec.ticks} ticks, {len(rec.tickers)} tickers, "
            f"{_elapsed(time.monotonic() - rec.started)} elapsed, {client.state}"
        )
        if tty:
            print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)


async def _record(args: argparse.Namespace) -> int:
    url = check_url(args.url)
    path = Path(args.out)
    _check_out(path)
    if args.duration is not None and args.duration <= 0:
        raise CommandError("--duration must be positive", code=2)
    if args.max_messages is not None and args.max_messages <= 0:
        raise CommandError("--max-messages must be positive", code=2)
    tickers = parse_tickers([args.tickers]) or await server_watchlist(url, args.token)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)

    client = StockfeedClient(url, tickers, token=args.token)
    try:
        await client.start()
    except StockfeedError as exc:
        raise CommandError(str(exc)) from None
    try:
        try:
            out = await asyncio.to_thread(path.open, "w", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}", code=2) from None
        with out:
            started = datetime.now(UTC).isoformat(timespec="seconds")
            out.write(f"# stockfeed record {url} {','.join(tickers)} {started}\n")
            out.flush()
            rec = Recorder(out, path)
            progress = (
                asyncio.create_task(_progress(rec, client, args.progress_every))
                if args.progress_every > 0
                else None
            )
            try:
                await _loop(client, rec, args, stop)
            finally:
                if progress is not None:
                    progress.cancel()
                    if sys.stderr.isatty():
                        print(file=sys.stderr)
                print(f"stockfeed record: {rec.summary()}", file=sys.stderr)
    finally:
        await client.close()
    if rec.ticks == 0:
        print("stockfeed record: nothing was recorded", file=sys.stderr)
        return 1
    return 0


async def _loop(
    client: StockfeedClient, rec: Recorder, args: argparse.Namespace, stop: asyncio.Event
) -> None:
    deadline = None if args.duration is None else time.monotonic() + args.duration
    stopper = asyncio.ensure_future(stop.wait())
    getter: asyncio.Future[Message] | None = None
    try:
        while not stop.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            getter = asyncio.ensure_future(client.recv())
            await asyncio.wait({getter, stopper}, timeout=remaining, return_when="FIRST_COMPLETED")
            if not getter.done():
                getter.cancel()
                continue
            try:
                msg = getter.result()
            except StopAsyncIteration:
                return
            except StockfeedError as exc:  # gave up reconnecting, or the token was refused
                raise CommandError(str(exc)) from None
            if isinstance(msg, PriceUpdate | Snapshot):
                rec.write(msg)
                if isinstance(msg, Snapshot) and msg.gap:
                    # The recording goes on, but the day has a hole: say where.
                    print(
                        f"stockfeed record: gap in {msg.ticker} before seq {msg.seq}",
                        file=sys.stderr,
                    )
                if args.max_messages is not None and rec.ticks >= args.max_messages:
                    return
            elif isinstance(msg, ErrorMessage):
                print(f"stockfeed record: server error {msg.code}: {msg.message}", file=sys.stderr)
                if not client.tickers:
                    raise CommandError("the server refused every ticker: nothing to record")
    finally:
        stopper.cancel()
        if getter is not None:
            # Interrupted while waiting (Ctrl-C): the pending read must not end later,
            # when the client closes, as an exception nobody retrieves.
            getter.cancel()
