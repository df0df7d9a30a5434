"""The last-price view per ticker, derived from a source's events: what `price_update`s say.

The updater folds every event it gets into this view; an event that changes what the
wire shows (a trade, a summary with news) yields the `Tick` to publish, the rest (a quote,
a vendor's bar, a status) only update the view. The rules:

- A trade sets the price and `market_time` (its own time, in ms). A quote never does:
  the best bid or ask is not a trade.
- A summary (`Tick` from a summarising source, `Summary` from a vendor) sets the fields it
  carries. A vendor's bar never sets the price: its plugin says so with a `Summary` when
  the bar is all it has for that ticker (Alpaca's free plan past 30 symbols).
- The day's figures (open, high, low and the cumulative day volume) belong to one source
  per session day: the first that gave them. Another source's day figures are ignored,
  and its updates carry `volume: null`, so a failover never mixes two sources' counts
  (the fan-out's bars take a volume's differences between updates: a jump from IEX's
  count to Yahoo's consolidated one would be a bar of phantom volume). The owner's
  updates carry its count again when it comes back.
- A rolling 24 h volume is `volume_24h`, never `volume`.
- Every update says where it came from (`source`, `feed`, `delayed`).

Prices stay `Decimal` here; the `Tick` made for the wire is where they become floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from stockfeed.models import Tick
from stockfeed.sources.base import Provenance
from stockfeed.sources.events import Event, Quote, Status, Summary, Trade
from stockfeed.sources.wire_values import NS_PER_MS, NS_PER_S
from stockfeed.tickers import asset_class

Number = Decimal | float | int
_NEW_YORK = ZoneInfo("America/New_York")
_FX_ROLL_S = 7 * 3600  # FX's day starts at 17:00 New York: shift by 7 h to its date


def day_span(ticker: str, epoch_s: float) -> tuple[str, float, float]:
    """The session date a moment belongs to (New York's date for US equities, FX's day
    rolling at 17:00 New York, the UTC date for crypto), and that day's [start, end) in
    epoch seconds."""
    kind = asset_class(ticker)
    if kind == "crypto":
        start = epoch_s // 86400 * 86400
        return datetime.fromtimestamp(start, UTC).date().isoformat(), start, start + 86400
    shift = _FX_ROLL_S if kind == "fx" else 0
    local = datetime.fromtimestamp(epoch_s + shift, _NEW_YORK)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    after = (midnight + timedelta(hours=36)).replace(hour=0)  # the next midnight (DST-safe)
    start = midnight.timestamp() - shift
    end = datetime(after.year, after.month, after.day, tzinfo=_NEW_YORK).timestamp() - shift
    return local.date().isoformat(), start, end


def day_key(ticker: str, epoch_s: float) -> str:
    return day_span(ticker, epoch_s)[0]


@dataclass(slots=True)
class _Day:
    """The session's figures, and the source they belong to."""

    key: str
    owner: str
    open: Number | None = None
    high: Number | None = None
    low: Number | None = None
    volume: Number | None = None


@dataclass(slots=True)
class _State:
    price: Number | None = None
    market_time: int | None = None  # ms
    day: _Day | None = None
    prev_close: Number | None = None
    change: float | None = None  # a summarising source's own, when it has no prev_close
    change_percent: float | None = None
    price_decimals: int | None = None
    volume_24h: Number | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    halted: bool = False
    status: str | None = None
    provenance: Provenance | None = None
    span: tuple[str, float, float] = ("", 0.0, 0.0)  # the last day_span seen (a cache)
    extra: dict[str, object] = field(default_factory=dict)


def _f(value: Number | None) -> float | None:
    return None if value is None else float(value)


def _volume(value: Number | None) -> int | float | None:
    """A count for the wire: whole numbers as ints (shares), fractions as floats (coins)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return float(value)


class LastPriceView:
    def __init__(self) -> None:
        self._states: dict[str, _State] = {}

    def __len__(self) -> int:
        return len(self._states)

    def forget(self, keep: frozenset[str]) -> None:
        """Drop the state of tickers nobody wants any more."""
        self._states = {t: s for t, s in self._states.items() if t in keep}

    def state(self, ticker: str) -> _State | None:
        return self._states.get(ticker)

    def apply(self, provenance: Provenance, event: Event) -> Tick | None:
        """Fold one event; the update to publish, or None when the wire shows nothing new."""
        if isinstance(event, Tick):
            return self._summary_tick(provenance, event)
        if isinstance(event, Trade):
            return self._trade(provenance, event)
        if isinstance(event, Summary):
            return self._summary(provenance, event)
        if isinstance(event, Quote):
            state = self._states.setdefault(event.ticker, _State())
            state.bid, state.ask = event.bid, event.ask
            state.bid_size, state.ask_size = event.bid_size, event.ask_size
            return None
        if isinstance(event, Status):
            state = self._states.setdefault(event.ticker, _State())
            if event.kind == "halted":
                state.halted = True
            elif event.kind == "resumed":
                state.halted = False
            state.status = event.reason or event.code
            return None
        return None  # VendorBar, SourceState, Gap: not the last price

    # -- the kinds that move the wire ---------------------------------------------------

    def _trade(self, provenance: Provenance, trade: Trade) -> Tick:
        state = self._states.setdefault(trade.ticker, _State())
        state.price = trade.price
        state.market_time = trade.ts_ns // NS_PER_MS
        day = self._day_for(trade.ticker, state, trade.ts_ns / NS_PER_S)
        if day is not None and day.owner == provenance.source:
            # The day's range from the same source's later trades (its day bar lags).
            if day.high is not None and trade.price > day.high:
                day.high = trade.price
            if day.low is not None and trade.price < day.low:
                day.low = trade.price
        state.provenance = provenance
        return self._tick(trade.ticker, state)

    def _summary(self, provenance: Provenance, summary: Summary) -> Tick | None:
        state = self._states.setdefault(summary.ticker, _State())
        before = self._tick(summary.ticker, state) if state.price is not None else None
        if summary.price is not None:
            state.price = summary.price
            state.market_time = summary.ts_ns // NS_PER_MS
        if summary.prev_close is not None:
            state.prev_close = summary.prev_close
            state.change = state.change_percent = None
        if summary.volume_24h is not None:
            state.volume_24h = summary.volume_24h
        if summary.price_decimals is not None:
            state.price_decimals = summary.price_decimals
        if any(
            v is not None for v in (summary.day_volume, summary.open, summary.high, summary.low)
        ):
            day = self._own_day(summary.ticker, state, provenance, summary.ts_ns / NS_PER_S)
            if day is not None:
                day.open = summary.open if summary.open is not None else day.open
                day.high = summary.high if summary.high is not None else day.high
                day.low = summary.low if summary.low is not None else day.low
                if summary.day_volume is not None:
                    day.volume = summary.day_volume
        if state.price is None:
            return None  # nothing to show yet: a price comes first
        if state.provenance is None or summary.price is not None:
            state.provenance = provenance
        after = self._tick(summary.ticker, state)
        if before is not None and _same(before, after):
            return None
        return after

    def _summary_tick(self, provenance: Provenance, tick: Tick) -> Tick:
        """A summarising source's whole quote: its fields replace the view's. The tick is
        the source's to give away (each is a new one): when the day's figures are its
        source's, it is published itself, provenance added (the simulator's every-second
        rounds go this way, at the cost of a few attribute writes)."""
        state = self._states.setdefault(tick.ticker, _State())
        state.price = tick.price
        state.market_time = tick.market_time
        state.prev_close = tick.prev_close
        state.change, state.change_percent = tick.change, tick.change_percent
        state.price_decimals = tick.price_decimals
        state.volume_24h = tick.volume_24h
        state.provenance = provenance
        when = tick.market_time / 1000 if tick.market_time is not None else None
        if when is None:
            # No time to place it in a session: the tick's own figures, unowned.
            state.day = _Day("", provenance.source, tick.open, tick.high, tick.low, tick.volume)
        elif (
            tick.volume is not None
            or tick.open is not None
            or tick.high is not None
            or tick.low is not None
        ):
            day = self._own_day(tick.ticker, state, provenance, when)
            if day is None:
                return self._tick(tick.ticker, state)  # another source's day: not its volume
            day.open, day.high, day.low = tick.open, tick.high, tick.low
            day.volume = tick.volume
        tick.source, tick.feed, tick.delayed = (
            provenance.source,
            provenance.feed,
            provenance.delayed,
        )
        return tick

    # -- the day's figures --------------------------------------------------------------

    def _key(self, ticker: str, state: _State, epoch_s: float) -> str:
        key, start, end = state.span
        if not start <= epoch_s < end:  # a new day (or the first): work it out once
            key, start, end = state.span = day_span(ticker, epoch_s)
        return key

    def _day_for(self, ticker: str, state: _State, epoch_s: float) -> _Day | None:
        """The day's figures if they are of the session `epoch_s` is in (else forgotten:
        yesterday's open is not today's)."""
        day = state.day
        if day is not None and day.key and day.key != self._key(ticker, state, epoch_s):
            state.day = day = None
        return day

    def _own_day(
        self, ticker: str, state: _State, provenance: Provenance, epoch_s: float
    ) -> _Day | None:
        """The day's figures if `provenance` owns them (or may take them: none yet)."""
        day = self._day_for(ticker, state, epoch_s)
        if day is None:
            day = state.day = _Day(self._key(ticker, state, epoch_s), provenance.source)
        return day if day.owner == provenance.source else None

    # -- the wire's view ----------------------------------------------------------------

    def _tick(self, ticker: str, state: _State) -> Tick:
        assert state.price is not None
        provenance = state.provenance
        day = state.day
        owned = day is not None and provenance is not None and day.owner == provenance.source
        return Tick(
            ticker=ticker,
            price=float(state.price),
            market_time=state.market_time,
            volume=_volume(day.volume) if owned and day is not None else None,
            open=_f(day.open) if day is not None else None,
            high=_f(day.high) if day is not None else None,
            low=_f(day.low) if day is not None else None,
            prev_close=_f(state.prev_close),
            change=state.change,
            change_percent=state.change_percent,
            price_decimals=state.price_decimals,
            volume_24h=_f(state.volume_24h),
            source=provenance.source if provenance is not None else None,
            feed=provenance.feed if provenance is not None else None,
            delayed=provenance.delayed if provenance is not None else None,
        )


def _same(a: Tick, b: Tick) -> bool:
    """Whether two updates show the same thing. A rolling 24 h volume alone is no news:
    it rides along with the next trade (Coinbase's ticker follows every trade anyway)."""
    return (
        a.price,
        a.market_time,
        a.volume,
        a.open,
        a.high,
        a.low,
        a.prev_close,
        a.source,
    ) == (b.price, b.market_time, b.volume, b.open, b.high, b.low, b.prev_close, b.source)
