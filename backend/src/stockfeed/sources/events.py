"""What a source emits: the kinds of event market-data vendors send, as vendors send them.

A vendor stream is not a series of quotes. It carries trades (each print, with its size),
quotes (best bid and ask with their sizes), bars (which the vendor revises: a minute bar
again when a late trade changes it, a day bar every minute), status changes (a halt, a
resumption, a limit-up-limit-down band) and, between them, news about the connection
itself. Each kind is its own event here, and the per-ticker last price the updater
publishes (`price_update`) is derived from them (sources/last_price.py), never emitted
directly by a vendor plugin.

Summarising sources (the simulator, Yahoo, a replay) already hold the whole picture of a
ticker (price and the day's figures) and emit a `Tick` (stockfeed.models), the summary
event: it replaces the day's figures it carries.

Rules every plugin follows at its edge:

- Times are integers, epoch nanoseconds (`ts_ns`), parsed where the frame is read
  (sources/wire_values.py): never a float, never a string downstream.
- Prices and sizes are `Decimal`, built from the vendor's own digits (a JSON number or a
  decimal string): nothing is rounded before the wire encoder, and a crypto size of
  29.205707815 stays what it was.
- Tickers are stockfeed's (canonical, as the ticker rule spells them: `BTC-USD`, `BRK-B`),
  mapped from the vendor's spelling by the plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from stockfeed.models import Tick

EventKind = Literal["trade", "quote", "bar", "status", "summary", "state", "gap"]


@dataclass(frozen=True, slots=True)
class Trade:
    """One print."""

    ticker: str
    price: Decimal
    size: Decimal | None  # shares or coins of this trade (never a day's total)
    ts_ns: int  # when it traded, as the vendor stamped it
    venue: str | None = None
    conditions: tuple[str, ...] = ()
    trade_id: str | None = None
    taker_side: str | None = None  # "buy"/"sell" where the vendor says (crypto)


@dataclass(frozen=True, slots=True)
class Quote:
    """Best bid and ask. A quote is not a trade: it never moves the last price."""

    ticker: str
    bid: Decimal | None
    bid_size: Decimal | None
    ask: Decimal | None
    ask_size: Decimal | None
    ts_ns: int


@dataclass(frozen=True, slots=True)
class VendorBar:
    """An OHLCV bar as the vendor built it. Bars are upserts keyed by (ticker, interval,
    start): the same key again is a revision (a late trade, the forming day bar), and
    `revision` counts them (0: the first seen). `final` says the vendor will not send this
    bar again in the normal course (a minute bar after its minute); a final bar can still
    be revised by a correction, as Alpaca's `updatedBars` do."""

    ticker: str
    interval: str  # one of sources.base.INTERVALS
    start_ns: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal | None  # traded within the bar
    final: bool
    vwap: Decimal | None = None
    trades: int | None = None
    revision: int = 0

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.ticker, self.interval, self.start_ns)


StatusKind = Literal["halted", "resumed", "luld", "other"]


@dataclass(frozen=True, slots=True)
class Status:
    """A trading status change of one ticker: a halt, its end, a price band."""

    ticker: str
    kind: StatusKind
    ts_ns: int
    code: str | None = None  # the vendor's status code (e.g. Alpaca `sc`)
    reason: str | None = None  # its words for it
    limit_up: Decimal | None = None  # LULD bands
    limit_down: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """A vendor's own figures for a ticker that are not a trade: a rolling 24 h volume, a
    cumulative day volume from a field documented as such, the previous close. Fields the
    vendor does not give stay None. `price` is set only where the vendor's summary is the
    last trade price and no trade stream carries it."""

    ticker: str
    ts_ns: int
    price: Decimal | None = None
    day_volume: Decimal | None = None  # cumulative over the session, documented as such
    volume_24h: Decimal | None = None  # rolling 24 h window: never a day volume
    open: Decimal | None = None  # the session's
    high: Decimal | None = None
    low: Decimal | None = None
    prev_close: Decimal | None = None  # the previous regular session's close
    price_decimals: int | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    """The source's own state, emitted whenever it changes.

    `limited`: tickers left out (a symbol limit), with the reason in `message`; `stale`:
    subscribed tickers silent while their market is open (mute socket detection);
    `fatal`: a configuration error (bad key, a plan without this feed) that disabled the
    source: no retry until restarted."""

    connected: bool
    authorised: bool
    limited: frozenset[str] = frozenset()
    stale: frozenset[str] = frozenset()
    fatal: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Gap:
    """Data the source may have missed: from `since_ns` (the last frame before the break)
    to `until_ns` (when the data resumed), for these tickers, and why. Reported after a
    reconnect, a counter jump (Coinbase heartbeats) or a slow-client close."""

    tickers: frozenset[str]
    since_ns: int
    until_ns: int
    reason: str


Event = Trade | Quote | VendorBar | Status | Summary | SourceState | Gap | Tick


def ticker_of(event: Event) -> str | None:
    """The ticker an event is about (None: the source as a whole)."""
    if isinstance(event, SourceState | Gap):
        return None
    return event.ticker
