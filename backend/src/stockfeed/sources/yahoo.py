"""Real Yahoo Finance data through yfinance: live streaming, polling as a fallback, history.

Live ticks come from Yahoo's streamer through yfinance's own ``AsyncWebSocket`` client.
Where the streamer is silent for a ticker that is trading (or streaming is off), the
source polls quotes instead. Every yfinance call other than the websocket blocks, so it
runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar

import pandas as pd
import yfinance as yf
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError, YFTzMissingError

from stockfeed.models import Bar, Tick
from stockfeed.sources.base import Emit, Source, SourceError, UnknownTicker, Wanted
from stockfeed.sources.budget import UpstreamBudget
from stockfeed.sources.capabilities import Capabilities
from stockfeed.sources.symbols import SymbolInfo, symbol_from_yahoo
from stockfeed.tickers import InvalidTicker, normalize_ticker

log = logging.getLogger(__name__)

STREAMER_URL = "wss://streamer.finance.yahoo.com/?version=2"
PROBE_TICKER = "AAPL"
_BAR_COLUMNS = ("Open", "High", "Low", "Close", "Volume")
# A definitive can_quote answer is reused this long: symbols rarely appear or vanish,
# and every lookup is a request against Yahoo's rate limit.
_CAN_QUOTE_TTL_S = 3600.0
# Answers kept at most (oldest forgotten first): lookups of made-up tickers must not grow
# the dict for ever.
_MAX_KNOWN = 16_384

QuoteFetcher = Callable[[list[str]], dict[str, Tick]]
HistoryFetcher = Callable[[str, str, str], pd.DataFrame]
SearchFetcher = Callable[[str, int], list[dict[str, Any]]]
# How long a symbol search may take (yfinance's own request timeout is the same).
_SEARCH_TIMEOUT_S = 10.0
IsTrading = Callable[[str], bool]
MessageHandler = Callable[[dict[str, Any]], Awaitable[None]]


# --- parsing: pure functions, tested on recorded Yahoo data --------------------------------


def _number(value: object) -> float | None:
    """A finite float from a JSON/protobuf value (64-bit fields arrive as strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _price(value: object) -> float | None:
    # Protobuf leaves unset fields at 0 and a price of 0 is never a real quote.
    number = _number(value)
    return number if number is not None and number > 0 else None


def _integer(value: object) -> int | None:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    number = _number(value)
    return int(number) if number is not None else None


def tick_from_message(message: Mapping[str, Any]) -> Tick | None:
    """Turn one message decoded by yfinance's streamer client into a Tick.

    Returns None for messages that carry no usable quote (decode errors, no price, a
    symbol outside the ticker rules). Absent fields stay None: protobuf omits fields at
    their default, so absence means "Yahoo did not say", not zero.
    """
    try:
        ticker = normalize_ticker(message.get("id"))
    except InvalidTicker:
        return None
    price = _price(message.get("price"))
    if price is None:
        return None
    change = _number(message.get("change"))
    # Yahoo's own previous close where a frame carries it (PricingData field 16), else
    # the one its change was measured from.
    prev_close: float | None = _price(message.get("previous_close"))
    if prev_close is None and change is not None:
        prev_close = price - change
        # `change` is a float32 on the wire; rounding to the quote's own precision
        # (price_hint decimals) recovers the close Yahoo derived it from.
        hint = _integer(message.get("price_hint"))
        if hint is not None and 0 <= hint <= 10:
            prev_close = round(prev_close, hint)
    market_time = _integer(message.get("time"))
    return Tick(
        ticker=ticker,
        price=price,
        market_time=market_time if market_time else None,
        volume=_integer(message.get("day_volume")),
        open=_price(message.get("open_price")),
        high=_price(message.get("day_high")),
        low=_price(message.get("day_low")),
        prev_close=prev_close,
        change=change,
        change_percent=_number(message.get("change_percent")),
        price_decimals=_decimals(message.get("price_hint")),
    )


def _decimals(hint: object) -> int | None:
    """Yahoo's `price_hint` / `priceHint`: the decimals the instrument quotes in."""
    value = _integer(hint)
    return value if value is not None and 0 <= value <= 10 else None


def _epoch_seconds(index: pd.Index) -> list[int]:
    stamps = pd.DatetimeIndex(index)
    if stamps.tz is None:
        # yfinance always returns exchange-local aware stamps; a naive index is UTC.
        stamps = stamps.tz_localize("UTC")
    # Timedelta division works whatever the index resolution (pandas 3 parses to "us").
    deltas = stamps.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")
    return [int(delta // pd.Timedelta(seconds=1)) for delta in deltas]


def bars_from_frame(frame: pd.DataFrame) -> list[Bar]:
    """Map a frame shaped like ``yf.Ticker(t).history()`` returns it to bars, oldest first.

    `time` is the bucket start as the index gives it, in epoch seconds. Rows with a
    missing value are skipped rather than filled: a bar is never invented.
    """
    missing = [column for column in _BAR_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"history frame lacks the columns {', '.join(missing)}")
    if frame.empty:
        return []
    rows = frame.loc[:, list(_BAR_COLUMNS)].to_numpy(dtype=float)
    by_time: dict[int, Bar] = {}
    for time_s, (open_, high, low, close, volume) in zip(
        _epoch_seconds(frame.index), rows, strict=True
    ):
        values = (open_, high, low, close, volume)
        if not all(math.isfinite(value) for value in values):
            continue
        # Yahoo sometimes repeats the live bar at the end; the later row is the newer one.
        by_time[time_s] = Bar(
            time=time_s,
            open=float(open_),
            high=float(high),
            low=float(low),
            close=float(close),
            volume=round(volume),
        )
    return [by_time[time_s] for time_s in sorted(by_time)]


def _meta_epoch_ms(value: object) -> int | None:
    # yfinance formats metadata times into Timestamps once it has the exchange timezone.
    if isinstance(value, pd.Timestamp):
        return round(value.timestamp() * 1000)
    seconds = _integer(value)
    return seconds * 1000 if seconds else None


def quote_from_chart(ticker: str, frame: pd.DataFrame, meta: Mapping[str, Any]) -> Tick | None:
    """Build a Tick from one day of 1-minute bars (pre/post included) and the chart metadata.

    The newest of the two wins: the metadata's regular-market price carries the exact
    quote time, while the last bar also covers pre- and post-market trades (its time is
    then the minute's start, the closest real time Yahoo gives).
    """
    bars = bars_from_frame(frame) if not frame.empty else []
    price = _price(meta.get("regularMarketPrice"))
    market_time = _meta_epoch_ms(meta.get("regularMarketTime"))
    if bars and (price is None or market_time is None or bars[-1].time * 1000 > market_time):
        price, market_time = bars[-1].close, bars[-1].time * 1000
    if price is None:
        return None
    # The day's open is the first bar of today's regular session; the chart metadata has
    # no open field, and without session times it cannot be told apart from pre-market.
    open_: float | None = None
    session = meta.get("currentTradingPeriod")
    regular = session.get("regular") if isinstance(session, Mapping) else None
    start_ms = _meta_epoch_ms(regular.get("start")) if isinstance(regular, Mapping) else None
    end_ms = _meta_epoch_ms(regular.get("end")) if isinstance(regular, Mapping) else None
    if start_ms is not None and end_ms is not None:
        in_session = [bar for bar in bars if start_ms <= bar.time * 1000 < end_ms]
        open_ = in_session[0].open if in_session else None
    # Session-true figures: `regularMarketPrice` is the last regular-session price. Before
    # today's session (pre-market, where currentTradingPeriod is already today's) it is
    # the last session's close, and the previous close is that, not `previousClose`
    # (the close before it). Once the session has ended it is today's close.
    regular_price = _price(meta.get("regularMarketPrice"))
    regular_time = _meta_epoch_ms(meta.get("regularMarketTime"))
    prev_close = _price(meta.get("previousClose")) or _price(meta.get("chartPreviousClose"))
    regular_close: float | None = None
    if regular_price is not None and regular_time is not None and start_ms is not None:
        if regular_time < start_ms:
            prev_close = regular_price
        elif end_ms is not None and regular_time >= end_ms:
            regular_close = regular_price
    return Tick(
        ticker=ticker,
        price=price,
        market_time=market_time,
        volume=_integer(meta.get("regularMarketVolume")),
        open=open_,
        high=_price(meta.get("regularMarketDayHigh")),
        low=_price(meta.get("regularMarketDayLow")),
        prev_close=prev_close,
        price_decimals=_decimals(meta.get("priceHint")),
        regular_close=regular_close,
    )


def _is_unknown_symbol(exc: BaseException) -> bool:
    """Whether an exception means Yahoo has no such symbol (not merely no data now)."""
    if isinstance(exc, (UnknownTicker, YFTzMissingError)):
        return True
    if isinstance(exc, YFPricesMissingError):
        # Only Yahoo's own verdict counts ({"code": "Not Found", "description": "No data
        # found, symbol may be delisted"}); yfinance's "possibly delisted" is a guess.
        reason = str(getattr(exc, "yahoo_reason", None) or "").lower()
        return "no data found" in reason or "delisted" in reason
    return False


# --- default blocking fetchers (the real Yahoo calls) --------------------------------------


def fetch_quotes(tickers: list[str]) -> dict[str, Tick]:
    """Latest quotes from Yahoo's chart endpoint, one request per ticker. Blocking.

    Symbols Yahoo does not know are left out. A rate limit aborts the round (every other
    request would hit it too); when every ticker failed, the first error is raised so the
    caller can report it.
    """
    quotes: dict[str, Tick] = {}
    errors: list[Exception] = []
    for ticker in tickers:
        try:
            handle = yf.Ticker(ticker)
            # raise_errors (deprecated but still honoured in the pinned 1.7.0) makes this
            # call raise instead of logging and returning an empty frame, without flipping
            # yfinance's process-wide hide_exceptions switch.
            frame = handle.history(
                period="1d",
                interval="1m",
                prepost=True,
                auto_adjust=False,
                timeout=10,
                raise_errors=True,
            )
            tick = quote_from_chart(ticker, frame, handle.get_history_metadata())
        except YFRateLimitError:
            raise
        except Exception as exc:
            if _is_unknown_symbol(exc):
                log.info("Yahoo does not know %s: %s", ticker, exc)
            else:
                errors.append(exc)
            continue
        if tick is not None:
            quotes[ticker] = tick
    if not quotes and errors:
        raise errors[0]
    return quotes


def fetch_history(ticker: str, interval: str, range_: str) -> pd.DataFrame:
    """Bars as yfinance returns them. Blocking; raises when Yahoo gives no data."""
    frame: pd.DataFrame = yf.Ticker(ticker).history(
        period=range_,
        interval=interval,
        # Live ticks include pre/post-market trades, so intraday history must too, or the
        # chart would jump where history meets the live candles. Unadjusted prices for the
        # same reason: ticks are never dividend-adjusted.
        prepost=interval != "1d",
        auto_adjust=False,
        timeout=10,
        raise_errors=True,
    )
    return frame


def fetch_search(query: str, limit: int) -> list[dict[str, Any]]:
    """Yahoo's symbol search (`quotes` of /v1/finance/search) through yfinance. Blocking;
    raises when Yahoo fails (no news, lists or research asked for)."""
    found = yf.Search(
        query,
        max_results=limit,
        news_count=0,
        lists_count=0,
        include_cb=False,
        recommended=0,
        timeout=_SEARCH_TIMEOUT_S,
        raise_errors=True,
    )
    return [quote for quote in found.quotes if isinstance(quote, dict)]


# --- streamer client ------------------------------------------------------------------------


class StreamerClosed(ConnectionError):
    """The streamer ended the connection (cleanly or not); the source reconnects."""


class _StreamerClient(yf.AsyncWebSocket):  # type: ignore[misc]
    """yfinance's streamer client with a listen() that ends when the connection does.

    yfinance 1.7.0's own listen() is unusable here: after a clean close it loops on the
    closed connection without ever awaiting (it froze the event loop in a test); with
    hide_exceptions (the default) it never really reconnects after a dropped connection,
    since `_connect()` keeps the dead socket; and it swallows CancelledError. Connecting,
    subscribing, the 15 s subscription heartbeat and the protobuf decoding stay
    yfinance's; only the receive loop is replaced, and it raises when the connection ends
    so that the source's own reconnect loop takes over.
    """

    _heartbeat_task: asyncio.Task[None] | None

    async def listen(self, message_handler: MessageHandler) -> None:
        await self._connect()
        if self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(self._periodic_subscribe())
        connection = self._ws
        async for raw in connection:
            decoded = self._decode(raw)
            if decoded is not None:
                await message_handler(decoded)
        # Reached only on a clean close; an abnormal one raises ConnectionClosedError.
        raise StreamerClosed(f"streamer closed the connection (code {connection.close_code})")

    def _decode(self, raw: str | bytes) -> dict[str, Any] | None:
        try:
            envelope = json.loads(raw)
            if not isinstance(envelope, dict) or envelope.get("type", "pricing") != "pricing":
                return None
            # Raises or returns {"error": ...} depending on YfConfig.debug.hide_exceptions.
            decoded = self._decode_message(envelope.get("message", ""))
        except Exception as exc:
            log.debug("skipping an undecodable streamer message: %s", exc)
            return None
        if not isinstance(decoded, dict) or "error" in decoded:
            log.debug("skipping an undecodable streamer message: %r", decoded)
            return None
        return decoded

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.close()
        heartbeat = self._heartbeat_task
        if heartbeat is not None and heartbeat.done() and not heartbeat.cancelled():
            # Retrieve a heartbeat failure so asyncio does not log it as never retrieved.
            heartbeat.exception()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the source -----------------------------------------------------------------------------


class YahooSource(Source):
    """Yahoo Finance quotes: streamer first, polling where the streamer is silent."""

    name: ClassVar[str] = "yfinance"
    simulated: ClassVar[bool] = False
    capabilities = Capabilities(
        needs_key=False,
        asset_classes=frozenset({"equity", "etf", "index", "crypto", "fx", "future"}),
        event_kinds=frozenset({"summary"}),
        redistribution="unknown",  # Yahoo's unofficial endpoints: personal use
        history=True,
        directory=True,
    )

    def __init__(
        self,
        *,
        poll_interval: float = 15.0,
        streamer_url: str = STREAMER_URL,
        streaming: bool = True,
        is_trading: IsTrading | None = None,
        quote_fetcher: QuoteFetcher | None = None,
        history_fetcher: HistoryFetcher | None = None,
        search_fetcher: SearchFetcher | None = None,
        reconnect_backoff: tuple[float, float] = (1.0, 60.0),
        rate_limit_backoff: tuple[float, float] = (30.0, 600.0),
        check_interval: float = 1.0,
        lookup_timeout: float = 3.0,
        poll_timeout: float = 60.0,
        client_budget: UpstreamBudget | None = None,
    ) -> None:
        """`check_interval` is how often wanted() is re-read (subscriptions re-diffed,
        new tickers polled); `lookup_timeout` bounds a can_quote() lookup; `poll_timeout`
        a polling round (a hung request would otherwise leave the source silent but not
        marked stale). `client_budget` caps the calls made for clients (history,
        lookups: sources/budget.py); the updater's streaming and polling stay outside it."""
        super().__init__()
        self.client_budget = client_budget or UpstreamBudget()
        self._poll_interval = poll_interval
        self._streamer_url = streamer_url
        self._streaming = streaming
        self._is_trading = is_trading
        self._quote_fetcher: QuoteFetcher = quote_fetcher or fetch_quotes
        self._history_fetcher: HistoryFetcher = history_fetcher or fetch_history
        self._search_fetcher: SearchFetcher = search_fetcher or fetch_search
        self._reconnect_min, self._reconnect_max = reconnect_backoff
        self._rate_min, self._rate_max = rate_limit_backoff
        self._check_interval = min(check_interval, poll_interval)
        self._lookup_timeout = lookup_timeout
        self._poll_timeout = poll_timeout

        self._client: _StreamerClient | None = None
        self._closed = False
        # Loop-clock times (monotonic) per ticker.
        self._last_streamed: dict[str, float] = {}
        self._last_polled: dict[str, float] = {}
        self._last_emitted: dict[str, tuple[int | None, float]] = {}
        self._rate_limited_until = 0.0
        self._rate_backoff = 0.0
        self._known: dict[str, tuple[bool, float]] = {}
        self._lookups: dict[str, asyncio.Task[bool | None]] = {}
        self.health.extra["streamer"] = "connecting" if streaming else "off"

    # -- Source API --

    async def stream(self, wanted: Wanted, emit: Emit) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                if self._streaming:
                    tasks.create_task(self._stream_loop(wanted, emit))
                tasks.create_task(self._poll_loop(wanted, emit))
        finally:
            await self._drop_client()

    async def history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        """Raises UpstreamBusy (a SourceError) at once when the client budget is spent or
        Yahoo asked us to back off."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._rate_limited_until:
            raise self.client_budget.refuse(
                "rate limited by Yahoo: history is unavailable for a while",
                self._rate_limited_until - loop.time(),
            )
        job = self.client_budget.start(
            f"history of {ticker}", self._history_fetcher, ticker, interval, range_
        )
        try:
            frame = await job
        except YFRateLimitError as exc:
            raise SourceError(
                "rate limited by Yahoo: history is unavailable for a few minutes"
            ) from exc
        except Exception as exc:
            if _is_unknown_symbol(exc):
                raise UnknownTicker(f"Yahoo has no symbol {ticker}") from exc
            log.warning("history for %s (%s, %s) failed: %s", ticker, interval, range_, exc)
            raise SourceError(
                f"could not get history for {ticker} from Yahoo ({_describe(exc)})"
            ) from exc
        try:
            bars = bars_from_frame(frame)
        except ValueError as exc:
            raise SourceError(f"unexpected history from Yahoo for {ticker}: {exc}") from exc
        if not bars:
            raise SourceError(f"no history from Yahoo for {ticker} ({interval}, {range_})")
        return bars

    async def search_symbols(self, query: str, limit: int) -> list[SymbolInfo]:
        """Yahoo's search, within the client budget (UpstreamBusy at once when it is
        spent or Yahoo asked us to back off); SourceError when Yahoo fails. The caller
        caches answers (api/symbols.py)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._rate_limited_until:
            raise self.client_budget.refuse(
                "rate limited by Yahoo: symbol search is unavailable for a while",
                self._rate_limited_until - loop.time(),
            )
        job = self.client_budget.start(f"search for {query!r}", self._search_fetcher, query, limit)
        try:
            quotes = await asyncio.wait_for(job, _SEARCH_TIMEOUT_S)
        except TimeoutError:
            raise SourceError("Yahoo did not answer the symbol search in time") from None
        except YFRateLimitError as exc:
            raise SourceError("rate limited by Yahoo: symbol search is unavailable") from exc
        except Exception as exc:
            log.warning("symbol search for %r failed: %s", query, _describe(exc))
            raise SourceError(f"could not search Yahoo ({_describe(exc)})") from exc
        found: dict[str, SymbolInfo] = {}
        for quote in quotes:
            info = symbol_from_yahoo(quote)
            if info is not None and info.symbol not in found:
                found[info.symbol] = info
        return list(found.values())[:limit]

    async def can_quote(self, ticker: str) -> bool | None:
        """Raises UpstreamBusy when the answer needs a lookup the client budget cannot
        afford now."""
        try:
            ticker = normalize_ticker(ticker)
        except InvalidTicker:
            return False
        loop = asyncio.get_running_loop()
        known = self._known.get(ticker)
        if known is not None and loop.time() - known[1] < _CAN_QUOTE_TTL_S:
            return known[0]
        if loop.time() < self._rate_limited_until:
            return None  # asking now would only prolong the rate limit
        # Many clients may ask about the same new ticker at once: one lookup serves all,
        # and it is shielded so that one impatient caller cannot cancel it for the rest.
        lookup = self._lookups.get(ticker)
        if lookup is None:
            job = self.client_budget.start(f"lookup of {ticker}", self._quote_fetcher, [ticker])
            lookup = asyncio.create_task(self._lookup(ticker, job))
            self._lookups[ticker] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(ticker, None))
        return await asyncio.shield(lookup)

    async def probe(self, timeout: float) -> bool:  # noqa: ASYNC109 - the auto source's API
        """Whether Yahoo answers with a quote within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                quotes = await asyncio.to_thread(self._quote_fetcher, [PROBE_TICKER])
        except TimeoutError:
            log.info("Yahoo did not answer within %.1f s", timeout)
            return False
        except Exception as exc:
            log.info("Yahoo is not reachable: %s", _describe(exc))
            return False
        return any(tick.price > 0 for tick in quotes.values())

    async def close(self) -> None:
        self._closed = True
        await self._drop_client()
        self.client_budget.close()

    # -- shared helpers --

    def _wanted_now(self, wanted: Wanted) -> set[str]:
        tickers: set[str] = set()
        for raw in wanted():
            try:
                tickers.add(normalize_ticker(raw))
            except InvalidTicker:
                log.debug("ignoring invalid wanted ticker %r", raw)
        return tickers

    def _trading(self, ticker: str) -> bool:
        if self._is_trading is None:
            return True
        try:
            return self._is_trading(ticker)
        except Exception:
            # Better to poll once too often than to go silent on a calendar bug.
            log.exception("is_trading(%s) failed; treating it as trading", ticker)
            return True

    async def _deliver(self, tick: Tick, emit: Emit) -> None:
        now = asyncio.get_running_loop().time()
        self._last_emitted[tick.ticker] = (tick.market_time, tick.price)
        self._remember(tick.ticker, True, now)
        try:
            await emit(tick)
        except Exception:
            # The consumer's failure is not Yahoo's: keep the connection and the feed going.
            log.exception("emitting a %s tick failed", tick.ticker)
        self.health.ok()

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- streaming --

    async def _stream_loop(self, wanted: Wanted, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        delay = self._reconnect_min
        while True:
            tickers = self._wanted_now(wanted)
            if self._closed or not tickers:
                await asyncio.sleep(self._check_interval)
                continue
            client = _StreamerClient(url=self._streamer_url, verbose=False)
            self._client = client
            received = [0]
            started = loop.time()
            try:
                await self._run_connection(client, tickers, wanted, emit, received)
            except Exception as exc:
                # A connection that delivered, or lasted, proved the streamer works:
                # start the backoff over instead of growing it across the day.
                if received[0] or loop.time() - started >= self._reconnect_max:
                    delay = self._reconnect_min
                message = (
                    f"Yahoo streamer connection failed ({_describe(exc)}); "
                    f"reconnecting in {delay:g} s"
                )
                log.warning(message)
                self.health.failed(message, delay)
                self.health.extra["streamer"] = "reconnecting"
            finally:
                if self._client is client:
                    self._client = None
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)

    async def _run_connection(
        self,
        client: _StreamerClient,
        tickers: set[str],
        wanted: Wanted,
        emit: Emit,
        received: list[int],
    ) -> None:
        """Stream one connection until it fails; always ends by raising."""
        loop = asyncio.get_running_loop()
        subscribed = set(tickers)

        async def on_message(message: dict[str, Any]) -> None:
            tick = tick_from_message(message)
            # Yahoo may still send a ticker for a moment after it was unsubscribed.
            if tick is None or tick.ticker not in subscribed:
                return
            received[0] += 1
            self._last_streamed[tick.ticker] = loop.time()
            await self._deliver(tick, emit)

        await client.subscribe(sorted(subscribed))  # connects; raises when refused
        self.health.extra["streamer"] = "connected"
        listener = asyncio.create_task(client.listen(on_message))
        try:
            while True:
                done, _ = await asyncio.wait({listener}, timeout=self._check_interval)
                if done:
                    listener.result()  # raises why the connection ended
                    raise StreamerClosed("streamer listener stopped")
                now = self._wanted_now(wanted)
                added, removed = now - subscribed, subscribed - now
                subscribed.difference_update(removed)
                subscribed.update(added)
                # Unsubscribe first: yfinance's subscribe() resends every subscription
                # it holds, which would otherwise still include the removed tickers.
                if removed:
                    await client.unsubscribe(sorted(removed))
                if added:
                    await client.subscribe(sorted(added))
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    # -- polling --

    async def _poll_loop(self, wanted: Wanted, emit: Emit) -> None:
        while True:
            try:
                await self._poll_round(wanted, emit)
            except Exception as exc:
                # _poll_round handles Yahoo's failures; this only keeps a bug from
                # ending the feed.
                log.exception("polling round failed")
                self.health.failed(f"polling Yahoo failed ({_describe(exc)})")
            await asyncio.sleep(self._check_interval)

    def _poll_due(self, ticker: str, now: float) -> bool:
        if now - self._last_polled.get(ticker, -math.inf) < self._poll_interval:
            return False
        if self._streaming and now - self._last_streamed.get(ticker, -math.inf) < (
            self._poll_interval
        ):
            return False
        return self._trading(ticker)

    async def _poll_round(self, wanted: Wanted, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < self._rate_limited_until:
            return
        due = sorted(ticker for ticker in self._wanted_now(wanted) if self._poll_due(ticker, now))
        if not due:
            return
        for ticker in due:
            self._last_polled[ticker] = now
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the fetch completes, and the polling loop then
            # never stops (seen as a test that hung until its timeout).
            async with asyncio.timeout(self._poll_timeout):
                quotes = await asyncio.to_thread(self._quote_fetcher, due)
        except YFRateLimitError:
            self._rate_backoff = min(max(self._rate_backoff * 2, self._rate_min), self._rate_max)
            self._rate_limited_until = loop.time() + self._rate_backoff
            message = f"rate limited by Yahoo; polling paused for {self._rate_backoff:g} s"
            log.warning(message)
            self.health.failed(message, self._rate_backoff)
            return
        except Exception as exc:
            message = f"polling Yahoo for {', '.join(due)} failed ({_describe(exc)})"
            # One line per round during an outage; the traceback only when debugging.
            log.warning(message)
            log.debug("polling failure", exc_info=True)
            self.health.failed(message)
            return
        self._rate_backoff = 0.0
        ticks = [tick for tick in _normalized(quotes.values()) if tick.ticker in due]
        if not ticks:
            self.health.failed(f"Yahoo returned no quotes for {', '.join(due)}")
            return
        for tick in ticks:
            if self._is_news(tick):
                await self._deliver(tick, emit)
            else:
                self.health.ok()  # Yahoo answered; the quote just has not moved

    def _is_news(self, tick: Tick) -> bool:
        """Whether a polled quote adds anything to what was already emitted.

        A poll can return the quote a streamed tick already beat (older), or the same
        quote as the previous poll when nothing traded; re-emitting either would move
        the price back or burn a sequence number on nothing.
        """
        last = self._last_emitted.get(tick.ticker)
        if last is None or tick.market_time is None or last[0] is None:
            return True
        last_time, last_price = last[0], last[1]
        if tick.market_time < last_time:
            return False
        return not (tick.market_time == last_time and tick.price == last_price)

    def _remember(self, ticker: str, known: bool, now: float) -> None:
        if ticker not in self._known and len(self._known) >= _MAX_KNOWN:
            del self._known[next(iter(self._known))]
        self._known[ticker] = (known, now)

    async def _lookup(self, ticker: str, job: Awaitable[dict[str, Tick]]) -> bool | None:
        loop = asyncio.get_running_loop()
        try:
            quotes = await asyncio.wait_for(job, self._lookup_timeout)
        except TimeoutError:
            log.info("looking up %s on Yahoo timed out", ticker)
            return None
        except Exception as exc:
            if not _is_unknown_symbol(exc):
                log.info("looking up %s on Yahoo failed: %s", ticker, _describe(exc))
                return None
            answer = False
        else:
            answer = any(tick.ticker == ticker for tick in _normalized(quotes.values()))
        self._remember(ticker, answer, loop.time())
        return answer


def _normalized(ticks: Iterable[Tick]) -> list[Tick]:
    """Ticks with upper-cased, valid tickers (a fetcher may echo the caller's spelling)."""
    result: list[Tick] = []
    for tick in ticks:
        try:
            tick.ticker = normalize_ticker(tick.ticker)
        except InvalidTicker:
            continue
        if _price(tick.price) is not None:
            result.append(tick)
    return result
