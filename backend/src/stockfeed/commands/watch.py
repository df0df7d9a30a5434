"""`stockfeed watch AAPL MSFT ...`: live prices in the terminal.

A table of the tickers (price, change, volume, day range, seq, age of the last update);
a price that moves flashes green (up) or red (down) for a moment. The footer shows the
connection state (connected / reconnecting in N s and why), the ping round trip, the
message rate, each market's session, and the last notable event (a gap, a server
shutdown, a refused ticker). `--json` prints every message as received, one per line,
for scripts (`stockfeed watch --json AAPL | jq .data.price`).

Without tickers it watches the server's default watchlist. A server that cannot be
reached at start gives one line on stderr and exit status 1 (a wrong URL shows at once);
once connected, a lost connection is retried for ever, with the state in the footer (or
nothing printed in `--json` mode, where only messages go to stdout). Ctrl-C exits 0.

Against a deployment split into ticker groups (`--url` its load balancer), the client
follows the servers' `wrong_group` refusals to a connection per group; the footer lists
those connections (`+route KEY`), and the state is the worst of them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from stockfeed.client import (
    ConnectionState,
    ErrorMessage,
    MarketStatus,
    Message,
    PriceUpdate,
    ServerShutdown,
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

FLASH_S = 0.7  # how long a moved price stays highlighted
NOTE_S = 15.0  # how long an event stays in the footer
REFRESH_S = 0.125


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="live prices in the terminal",
        description="Watch live prices in a terminal table (or --json for raw messages).",
    )
    parser.add_argument(
        "tickers", nargs="*", help="tickers, e.g. AAPL MSFT (default: the server's watchlist)"
    )
    add_connection_args(parser)
    parser.add_argument(
        "--json", action="store_true", help="print each message as one JSON line instead"
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> None:
    run_command("watch", _watch(args))


@dataclass(slots=True)
class Row:
    ticker: str
    price: float | None = None
    change: float | None = None
    change_percent: float | None = None
    volume: int | float | None = None  # fractional for crypto
    low: float | None = None
    high: float | None = None
    seq: int | None = None
    published_ms: float | None = None  # the update's timestamp
    stale: bool = False
    moved: int = 0  # +1 up, -1 down, 0 unchanged (last move)
    flash_until: float = 0.0
    error: str | None = None


class WatchView:
    """The state the table is drawn from; `apply` every message, `render` any time."""

    def __init__(self, client: StockfeedClient, tickers: list[str]) -> None:
        self.client = client
        self.rows: dict[str, Row] = {t: Row(t) for t in tickers}
        self.markets: dict[str, MarketStatus] = {}
        self.epochs: dict[str, str] = {}  # to tell a lost history from a plain gap
        self.notes: deque[tuple[float, str]] = deque(maxlen=3)
        self.arrivals: deque[float] = deque()  # monotonic times of the last 5 s of updates

    def apply(self, msg: Message, now: float) -> None:
        if isinstance(msg, PriceUpdate | Snapshot):
            self._price(msg, now)
        elif isinstance(msg, MarketStatus):
            self.markets[msg.market] = msg
        elif isinstance(msg, ErrorMessage):
            if msg.ticker and msg.ticker in self.rows:
                self.rows[msg.ticker].error = f"{msg.code}: {msg.message}"
            self.note(now, f"error {msg.code}: {msg.message}")
        elif isinstance(msg, ServerShutdown):
            self.note(now, f"server shutting down; back in {msg.retry_after_ms / 1000:.1f} s")

    def note(self, now: float, text: str) -> None:
        self.notes.append((now, text))

    def _price(self, msg: PriceUpdate | Snapshot, now: float) -> None:
        row = self.rows.setdefault(msg.ticker, Row(msg.ticker))
        data = msg.data
        if row.price is not None and data.price != row.price:
            row.moved = 1 if data.price > row.price else -1
            row.flash_until = now + FLASH_S
        row.price = data.price
        row.change, row.change_percent = data.change, data.change_percent
        row.volume, row.low, row.high = data.volume, data.low, data.high
        row.seq = msg.seq
        row.published_ms = msg.timestamp
        row.stale = isinstance(msg, Snapshot) and msg.stale
        row.error = None
        if isinstance(msg, Snapshot):
            previous = self.epochs.get(msg.ticker)
            self.epochs[msg.ticker] = msg.epoch
            if msg.gap and previous is not None and previous != msg.epoch:
                self.note(now, f"{msg.ticker}: the server lost its history; new seq from {msg.seq}")
            elif msg.gap:
                self.note(now, f"{msg.ticker}: gap: updates were lost before seq {msg.seq}")
        self.arrivals.append(now)

    def render(self, now: float, wall_ms: float) -> RenderableType:
        while self.arrivals and now - self.arrivals[0] > 5.0:
            self.arrivals.popleft()
        table = Table(expand=False, pad_edge=False, header_style="bold")
        for name, justify in [
            ("Ticker", "left"),
            ("Price", "right"),
            ("Change", "right"),
            ("Chg %", "right"),
            ("Volume", "right"),
            ("Low", "right"),
            ("High", "right"),
            ("Seq", "right"),
            ("Age", "right"),
        ]:
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in self.rows.values():
            table.add_row(*self._cells(row, now, wall_ms))
        return Group(table, self._footer(now))

    def _cells(self, row: Row, now: float, wall_ms: float) -> list[RenderableType]:
        if row.error is not None:
            return [Text(row.ticker, style="bold"), Text(row.error, style="red")]
        if row.price is None:
            return [Text(row.ticker, style="bold"), Text("waiting…", style="dim")]
        trend = "green" if (row.change or 0) > 0 else "red" if (row.change or 0) < 0 else ""
        arrow = {1: " ▲", -1: " ▼"}.get(row.moved, "  ")
        if now < row.flash_until:
            style = "bold white on green4" if row.moved > 0 else "bold white on red3"
        else:
            style = f"bold {trend}".strip()
        age = (wall_ms - row.published_ms) / 1000 if row.published_ms is not None else None
        age_text = _age(age) + (" stale" if row.stale else "")
        dim = "dim" if row.stale else ""
        return [
            Text(row.ticker, style="bold"),
            Text(f"{row.price:,.2f}{arrow}", style=style),
            Text(_signed(row.change, "{:+,.2f}"), style=trend),
            Text(_signed(row.change_percent, "{:+.2f}%"), style=trend),
            Text(f"{row.volume:,}" if row.volume is not None else "—", style=dim),
            Text(f"{row.low:,.2f}" if row.low is not None else "—", style=dim),
            Text(f"{row.high:,.2f}" if row.high is not None else "—", style=dim),
            Text(str(row.seq), style="dim"),
            Text(age_text, style="yellow" if row.stale else "dim"),
        ]

    def _footer(self, now: float) -> Text:
        client = self.client
        state = client.state
        line = Text()
        if state == ConnectionState.CONNECTED:
            line.append("● connected", style="bold green")
        elif state == ConnectionState.CLOSED:
            line.append("● closed", style="bold red")
        else:
            line.append(f"◌ {state}", style="bold yellow")
            if client.retry_in is not None:
                line.append(f" in {client.retry_in:.1f} s", style="yellow")
            if client.last_error:
                line.append(f" — {client.last_error}", style="yellow")
        line.append(f"  {client.url}", style="dim")
        # A deployment split into ticker groups: the connections to the other groups.
        for route in client.routes():
            line.append(f"  +route {route.key} ({len(route.tickers)} tickers)", style="dim")
            if route.state != ConnectionState.CONNECTED:
                line.append(f" {route.state}", style="yellow")
        latency = "—"
        if client.latency_ms is not None and state == ConnectionState.CONNECTED:
            latency = f"{client.latency_ms:.1f} ms"
        line.append(f"  latency {latency}")
        line.append(f"  {len(self.arrivals) / 5:.1f} updates/s")
        if client.reconnects:
            line.append(f"  reconnects {client.reconnects}")
        for market in self.markets.values():
            line.append(f"\n{market.market} {market.session}")
            upcoming = market.next_close if market.is_open else market.next_open
            if upcoming:
                line.append(f", {'closes' if market.is_open else 'opens'} {upcoming}")
            if market.stale:
                line.append(" (source stale)", style="yellow")
        for at, text in self.notes:
            if now - at < NOTE_S:
                line.append(f"\n{text}", style="magenta")
        return line


def _signed(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


async def _watch(args: argparse.Namespace) -> int:
    url = check_url(args.url)
    tickers = parse_tickers(args.tickers) or await server_watchlist(url, args.token)
    # Ping more often than the SDK default: the footer's latency should look alive.
    client = StockfeedClient(url, tickers, token=args.token, ping_interval=2.0)
    try:
        await client.start()
    except StockfeedError as exc:
        raise CommandError(str(exc)) from None
    try:
        if args.json:
            await _stream_json(client)
        else:
            await _live_table(client, tickers)
    except StockfeedError as exc:  # gave up, or the token was refused
        raise CommandError(str(exc)) from None
    finally:
        await client.close()
    return 0


async def _stream_json(client: StockfeedClient) -> None:
    out = sys.stdout
    async for msg in client:
        out.write(msg.raw + "\n")
        out.flush()
        _check_refused(client, msg)


def _check_refused(client: StockfeedClient, msg: Message) -> None:
    if isinstance(msg, ErrorMessage) and msg.ticker and not client.tickers:
        raise CommandError(f"the server refused every ticker (last: {msg.message})")


async def _live_table(client: StockfeedClient, tickers: list[str]) -> None:
    view = WatchView(client, tickers)
    console = Console()

    def frame() -> RenderableType:
        return view.render(time.monotonic(), time.time() * 1000)

    # Refreshed from this event loop (not rich's thread), so `render` never races `apply`.
    with Live(frame(), console=console, auto_refresh=False, transient=False) as live:

        async def repaint() -> None:
            while True:
                live.update(frame(), refresh=True)
                await asyncio.sleep(REFRESH_S)

        painter = asyncio.create_task(repaint())
        try:
            async for msg in client:
                view.apply(msg, time.monotonic())
                _check_refused(client, msg)
        finally:
            painter.cancel()
            live.update(frame(), refresh=True)
