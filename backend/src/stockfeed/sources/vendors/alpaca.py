"""Alpaca Market Data: US stocks (`iex`, `sip`, `delayed_sip`) and crypto (`--source alpaca`).

The stream (docs.alpaca.markets/docs/streaming-market-data, .../real-time-stock-pricing-
data, .../real-time-crypto-pricing-data; the archived alpacahq/alpaca-docs
content/api-references/market-data-api/*/realtime.md; alpacahq/alpaca-py
alpaca/data/live/websocket.py):

- `wss://stream.data.alpaca.markets/v2/{feed}` for stocks, `.../v1beta3/crypto/us` for
  crypto: two endpoints, one socket each. "The number of connections to a single endpoint
  from a user is limited ... in most subscriptions (including Algo Trader Plus) this limit
  is 1": a second one is refused with 406. Only the elected updater holds them.
- Frames are JSON arrays: `[{"T": type, ...}, ...]`; control messages come alone.
  `[{"T":"success","msg":"connected"}]`, then `{"action":"auth","key","secret"}` within
  10 s, then `[{"T":"success","msg":"authenticated"}]`.
- Subscriptions are additive (`{"action":"subscribe","trades":[...],...}`) and every
  change is answered with the whole current set (`{"T":"subscription",...}`). Channels:
  trades, quotes, bars (final minute bars), updatedBars (a minute bar recomputed after a
  late trade, same timestamp), dailyBars (the day so far: its `v` is the day's
  cumulative volume on that feed), statuses (halts, resumptions, LULD; stocks only).
- The free plan allows 30 symbols for trades and quotes, bars without limit. So the
  first 30 tickers asked for get trades and quotes, the rest minute bars only (their
  price moves once a minute, from each bar's close) and are reported as limited. A 405
  ("symbol limit exceeded": subscriptions stay as they were) lowers that number to what
  the vendor confirmed.
- Errors (the same pages' list), by class: 402 auth failed, 408 v2 not enabled, 409
  insufficient subscription, 400 invalid syntax: fatal (retrying the same changes
  nothing). 405 symbol limit: capacity, shrink. 406 connection limit: capacity, wait for
  the one connection. 401 not authenticated, 404 auth timeout, 407 slow client, 500
  internal error: transient, reconnect. 403 already authenticated: ignored.
- JSON text, not msgpack (the official client's choice): numbers are read with their
  digits kept, RFC 3339 times to the nanosecond.

REST: history from `data.alpaca.markets/v2/stocks/bars` and `/v1beta3/crypto/us/bars`
(paged by `next_page_token`); the directory from the trading API's `/v2/assets`. Keys
come from APCA_API_KEY_ID / APCA_API_SECRET_KEY (Alpaca's own variables) and are sent as
the `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` headers or in the auth message, never shown.

Symbols: stocks as stockfeed writes them with the share class after `-` (`BRK-B`, Alpaca
`BRK.B`), crypto `BTC-USD` (Alpaca `BTC/USD`).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection

from stockfeed.client.backoff import Backoff
from stockfeed.config import Settings
from stockfeed.market_hours import MarketClock
from stockfeed.models import Bar
from stockfeed.sources.base import RANGE_DAYS, Provenance, UnknownTicker
from stockfeed.sources.capabilities import Capabilities
from stockfeed.sources.events import Event, Quote, Status, StatusKind, Summary, Trade, VendorBar
from stockfeed.sources.symbols import SymbolInfo
from stockfeed.sources.vendors.connection import Dialect, VendorConnection
from stockfeed.sources.vendors.errors import Capacity, FatalConfig, Transient, VendorError
from stockfeed.sources.vendors.http import HttpError, get_json, url_with
from stockfeed.sources.vendors.plugin import VendorSource
from stockfeed.sources.vendors.rest_bars import rest_bar, session_date
from stockfeed.sources.wire_values import (
    NS_PER_MS,
    NS_PER_S,
    BadValue,
    decimal,
    loads,
    optional_decimal,
    rfc3339_ns,
)
from stockfeed.tickers import InvalidTicker, asset_class, normalize_ticker

log = logging.getLogger(__name__)

STREAM = "wss://stream.data.alpaca.markets"
FEEDS = ("iex", "sip", "delayed_sip")
TRADING_URLS = ("https://api.alpaca.markets", "https://paper-api.alpaca.markets")
# The free plan's trades-and-quotes limit ("Websocket subscriptions: 30 symbols"); Algo
# Trader Plus (sip) has none. STOCKFEED_ALPACA_SYMBOL_LIMIT overrides (plans can differ:
# "default values but can be configured upon request").
FREE_SYMBOLS = 30
STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses")
CRYPTO_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars")
FULL = frozenset({"trades", "quotes"})  # the channels under the symbol limit
TIMEFRAME = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "1h": "1Hour", "1d": "1Day"}
MAX_PAGES = 10
_NS_MINUTE = 60 * NS_PER_S
_NS_HALF_DAY = 12 * 3600 * NS_PER_S

# Status codes (the stock page's tables): UTDF (tape C) and CTS (tapes A, B).
_HALTED = frozenset({"H", "P", "2"})
_RESUMED = frozenset({"T", "3"})
_LULD = frozenset({"F"})

FATAL_CODES = {
    400: "Alpaca could not read a message stockfeed sent (400 invalid syntax)",
    402: "Alpaca refused the key (402 auth failed): check APCA_API_KEY_ID and APCA_API_SECRET_KEY",
    408: "the account has no access to Alpaca's market data v2 (408)",
    409: "the Alpaca plan does not include this feed (409 insufficient subscription): "
    "try STOCKFEED_ALPACA_FEED=iex",
}
TRANSIENT_CODES = {401, 404, 407, 500}


def error_for(code: object, msg: object) -> VendorError:
    """An Alpaca error frame as one of the three classes."""
    text = f"alpaca error {code}: {msg}"
    if isinstance(code, int) and code in FATAL_CODES:
        return FatalConfig(FATAL_CODES[code])
    if code == 406:
        return Capacity("another connection holds this key's one Alpaca stream (406)")
    if code == 405:
        return Capacity("symbol limit exceeded (405)")
    return Transient(text)


def stock_symbol(ticker: str) -> str | None:
    """stockfeed's `BRK-B` is Alpaca's `BRK.B`; indices, FX, futures and crypto are not
    Alpaca stocks."""
    if asset_class(ticker) != "equity" or "^" in ticker or "=" in ticker:
        return None
    return ticker.replace("-", ".")


def crypto_symbol(ticker: str) -> str | None:
    if asset_class(ticker) != "crypto" or ticker.count("-") != 1:
        return None
    return ticker.replace("-", "/")


def canonical(symbol: str) -> str | None:
    try:
        return normalize_ticker(symbol.replace("/", "-").replace(".", "-"))
    except InvalidTicker:
        return None


def _key_headers(key_id: str, secret: str) -> dict[str, str]:
    return {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}


class AlpacaDialect(Dialect):
    def __init__(
        self,
        *,
        label: str,
        url: str,
        key_id: str,
        secret: str,
        crypto: bool,
        symbol_limit: int | None,
    ) -> None:
        super().__init__()
        self.label = label
        self._url = url
        self._key = (key_id, secret)
        self.crypto = crypto
        self.channels_used = CRYPTO_CHANNELS if crypto else STOCK_CHANNELS
        self.symbol_limit = symbol_limit
        # What the vendor confirmed, per channel (vendor symbols), and what was asked.
        self.confirmed: dict[str, set[str]] = {c: set() for c in self.channels_used}
        self._order: dict[str, None] = {}  # tickers in the order they were first wanted
        self._full: frozenset[str] = frozenset()  # tickers given trades and quotes
        self._revisions: dict[tuple[str, str, int], int] = {}

    def url(self) -> str:
        return self._url

    def serves(self, ticker: str) -> bool:
        return (crypto_symbol(ticker) if self.crypto else stock_symbol(ticker)) is not None

    def vendor(self, ticker: str) -> str:
        symbol = crypto_symbol(ticker) if self.crypto else stock_symbol(ticker)
        assert symbol is not None
        return symbol

    def reset(self) -> None:
        super().reset()
        self.confirmed = {c: set() for c in self.channels_used}

    async def open(self, ws: ClientConnection) -> None:
        welcome = self._control(await ws.recv())
        if welcome.get("T") == "error":
            raise error_for(welcome.get("code"), welcome.get("msg"))
        if (welcome.get("T"), welcome.get("msg")) != ("success", "connected"):
            raise Transient(f"alpaca: unexpected welcome {str(welcome)[:100]}")
        key, secret = self._key
        await ws.send(json.dumps({"action": "auth", "key": key, "secret": secret}))
        answer = self._control(await ws.recv())
        if answer.get("T") == "error":
            raise error_for(answer.get("code"), answer.get("msg"))
        if (answer.get("T"), answer.get("msg")) != ("success", "authenticated"):
            raise Transient(f"alpaca: unexpected answer to auth {str(answer)[:100]}")

    def _control(self, frame: str | bytes) -> dict[str, Any]:
        try:
            message = loads(frame)
        except ValueError:
            raise Transient("alpaca: a frame that is not JSON") from None
        if not isinstance(message, list) or not message or not isinstance(message[0], dict):
            raise Transient("alpaca: a frame that is not an array of messages")
        first: dict[str, Any] = message[0]
        return first

    async def sync(self, ws: ClientConnection, wanted: frozenset[str]) -> None:
        for ticker in list(self._order):
            if ticker not in wanted:
                del self._order[ticker]
        for ticker in sorted(wanted - self._order.keys()):
            self._order[ticker] = None
        ordered = list(self._order)
        limit = self.symbol_limit
        full = frozenset(ordered if limit is None else ordered[:limit])
        self._full = full
        reason = (
            f"Alpaca allows trades and quotes for {limit} symbols on this plan: minute bars only"
        )
        self.limited = {t: reason for t in ordered if t not in full}
        desired = {
            channel: {self.vendor(t) for t in (full if channel in FULL else ordered)}
            for channel in self.channels_used
        }
        drop = {c: sorted(self.confirmed[c] - desired[c]) for c in self.channels_used}
        add = {c: sorted(desired[c] - self.confirmed[c]) for c in self.channels_used}
        if any(drop.values()):
            await ws.send(json.dumps({"action": "unsubscribe", **drop}))
        if any(add.values()):
            await ws.send(json.dumps({"action": "subscribe", **add}))

    def read(self, frame: str | bytes) -> list[Event]:
        try:
            messages = loads(frame)
        except ValueError:
            log.warning("%s: a frame that is not JSON (%d bytes)", self.label, len(frame))
            return []
        if not isinstance(messages, list):
            log.warning("%s: a frame that is not an array", self.label)
            return []
        out: list[Event] = []
        for message in messages:
            if not isinstance(message, dict):
                continue
            kind = message.get("T")
            if kind == "error":
                self._error(message)
            elif kind == "subscription":
                self._subscription(message)
            elif kind in ("t", "q", "b", "u", "d", "s"):
                try:
                    out.extend(self._data(kind, message))
                except (BadValue, KeyError, TypeError) as exc:
                    log.warning("%s: a %r message not as documented (%s)", self.label, kind, exc)
        return out

    def _error(self, message: dict[str, Any]) -> None:
        code = message.get("code")
        if code == 403:
            return  # already authenticated: nothing to do
        if code == 405:
            # Subscriptions stay as they were: the limit is what is confirmed now (when
            # nothing is, the first ask was refused whole: try fewer, the plan's usual 30
            # at most, one fewer each refusal).
            held = len(self.confirmed.get("trades", ()))
            tried = len(self._full)
            self.symbol_limit = held or max(0, min(FREE_SYMBOLS, tried - 1))
            log.warning(
                "%s: symbol limit exceeded (405): trades and quotes for %d symbols, "
                "the others minute bars only",
                self.label,
                self.symbol_limit,
            )
            self.resync = True
            return
        raise error_for(code, message.get("msg"))

    def _subscription(self, message: dict[str, Any]) -> None:
        for channel in self.channels_used:
            self.confirmed[channel] = {str(s) for s in message.get(channel) or ()}
        self.subscribed = {
            t
            for t in self._order
            if self.vendor(t) in self.confirmed.get("bars", set())
            or self.vendor(t) in self.confirmed.get("trades", set())
        }

    def _data(self, kind: str, m: dict[str, Any]) -> list[Event]:
        ticker = canonical(str(m["S"]))
        if ticker is None:
            return []
        if kind == "t":
            conditions = tuple(str(c) for c in m.get("c") or ())
            return [
                Trade(
                    ticker,
                    decimal(m["p"]),
                    optional_decimal(m.get("s")),
                    rfc3339_ns(m["t"]),
                    venue=str(m["x"]) if "x" in m else None,
                    conditions=conditions,
                    trade_id=str(m["i"]) if "i" in m else None,
                    taker_side={"B": "buy", "S": "sell"}.get(str(m.get("tks", ""))),
                )
            ]
        if kind == "q":
            return [
                Quote(
                    ticker,
                    optional_decimal(m.get("bp")),
                    optional_decimal(m.get("bs")),
                    optional_decimal(m.get("ap")),
                    optional_decimal(m.get("as")),
                    rfc3339_ns(m["t"]),
                )
            ]
        if kind == "s":
            code = str(m.get("sc", ""))
            status: StatusKind = (
                "halted"
                if code in _HALTED
                else "resumed"
                if code in _RESUMED
                else "luld"
                if code in _LULD
                else "other"
            )
            return [Status(ticker, status, rfc3339_ns(m["t"]), code, m.get("sm") or m.get("rm"))]
        interval = "1d" if kind == "d" else "1m"
        start = rfc3339_ns(m["t"])
        key = (ticker, interval, start)
        revision = self._revisions.get(key, -1) + 1
        self._revisions[key] = revision
        if len(self._revisions) > 20_000:
            self._revisions.clear()
        bar = VendorBar(
            ticker,
            interval,
            start,
            decimal(m["o"]),
            decimal(m["h"]),
            decimal(m["l"]),
            decimal(m["c"]),
            optional_decimal(m.get("v")),
            final=kind != "d",  # the day bar is the day so far
            vwap=optional_decimal(m.get("vw")),
            trades=int(m["n"]) if isinstance(m.get("n"), int) else None,
            revision=revision,
        )
        out: list[Event] = [bar]
        if kind == "d":
            # "A partial bar up to the current time": its volume is the day's cumulative
            # volume on this feed, its o/h/l the day's. Placed at the session's midday so
            # that its date is the session's whatever its `t` (00:00 New York, or 04:00Z).
            out.append(
                Summary(
                    ticker,
                    start + _NS_HALF_DAY,
                    day_volume=bar.volume,
                    open=bar.open,
                    high=bar.high,
                    low=bar.low,
                )
            )
        elif kind == "b" and ticker not in self._full:
            # Minute bars are all this ticker gets: its close is its last price, at the end
            # of the minute (the bar's own bucket).
            out.append(Summary(ticker, start + _NS_MINUTE - NS_PER_MS, price=bar.close))
        return out


class AlpacaSource(VendorSource):
    name = "alpaca"

    def __init__(
        self,
        *,
        key_id: str,
        secret: str,
        feed: str,
        url: str,
        crypto_url: str,
        rest_url: str,
        trading_urls: tuple[str, ...],
        symbol_limit: int | None,
        clock: MarketClock,
        mute_after: float = 60.0,
        reconnect_max: float = 60.0,
    ) -> None:
        super().__init__()
        self._key = (key_id, secret)
        self.clock = clock
        self.feed = feed
        self.delayed = 900 if feed == "delayed_sip" else 0
        self.rest_url = rest_url
        self.trading_urls = trading_urls
        limit = (
            symbol_limit if symbol_limit is not None else (None if feed == "sip" else FREE_SYMBOLS)
        )
        self.capabilities = Capabilities(
            needs_key=True,
            key_variables=("APCA_API_KEY_ID", "APCA_API_SECRET_KEY"),
            connections_per_key=1,
            symbols_per_kind={"trade": limit, "quote": limit, "bar": None},
            asset_classes=frozenset({"equity", "etf", "crypto"}),
            delayed_s=self.delayed,
            event_kinds=frozenset({"trade", "quote", "bar", "status", "summary", "state", "gap"}),
            redistribution="self-only",
            history=True,
            directory=True,
        )
        self.stocks = AlpacaDialect(
            label=f"alpaca {feed}",
            url=url,
            key_id=key_id,
            secret=secret,
            crypto=False,
            symbol_limit=limit,
        )
        self.crypto = AlpacaDialect(
            label="alpaca crypto",
            url=crypto_url,
            key_id=key_id,
            secret=secret,
            crypto=True,
            symbol_limit=symbol_limit if symbol_limit is not None else FREE_SYMBOLS,
        )
        self.connections = [
            VendorConnection(
                dialect,
                clock=clock,
                mute_after=mute_after,
                backoff=Backoff(initial=1.0, maximum=reconnect_max),
            )
            for dialect in (self.stocks, self.crypto)
        ]

    def provenance_of(self, conn: VendorConnection) -> Provenance:
        if conn.dialect is self.crypto:
            return Provenance(self.name, "us", 0)  # Alpaca's crypto location: real time
        return self.provenance

    # -- REST ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return _key_headers(*self._key)

    def fetch_directory(self) -> list[SymbolInfo]:
        last: HttpError | None = None
        for base in self.trading_urls:
            try:
                assets = get_json(
                    url_with(base, "/v2/assets", {"status": "active"}), self._headers()
                )
            except HttpError as exc:
                last = exc
                if exc.status in (401, 403):
                    continue  # a paper key on the live API (or the other way round)
                raise
            return [info for info in map(asset_info, assets or ()) if info is not None]
        assert last is not None
        raise last

    def _bars_path(self, ticker: str) -> tuple[str, str, dict[str, object]]:
        if crypto_symbol(ticker) is not None:
            return "/v1beta3/crypto/us/bars", str(crypto_symbol(ticker)), {}
        symbol = stock_symbol(ticker)
        if symbol is None:
            raise UnknownTicker(f"Alpaca has no stock or crypto pair {ticker}")
        feed = "iex" if self.feed == "iex" else "sip"
        return "/v2/stocks/bars", symbol, {"feed": feed, "adjustment": "raw"}

    def _bars(
        self, ticker: str, timeframe: str, start_s: int, end_s: int
    ) -> list[tuple[int, dict[str, Any]]]:
        path, symbol, extra = self._bars_path(ticker)
        out: list[tuple[int, dict[str, Any]]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, object] = {
                "symbols": symbol,
                "timeframe": timeframe,
                "start": _iso(start_s),
                "end": _iso(end_s),
                "limit": 10000,
                "sort": "asc",
                "page_token": token,
                **extra,
            }
            try:
                answer = get_json(url_with(self.rest_url, path, params), self._headers())
            except HttpError as exc:
                if exc.status in (400, 404, 422):
                    raise UnknownTicker(f"Alpaca has no symbol {ticker}") from None
                raise
            for raw in (answer.get("bars") or {}).get(symbol) or ():
                out.append((rfc3339_ns(raw["t"]), raw))
            token = answer.get("next_page_token")
            if not token:
                break
        return out

    def fetch_history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        end = int(time.time())
        start = end - RANGE_DAYS[range_] * 86400
        bars: list[Bar] = []
        for start_ns, raw in self._bars(ticker, TIMEFRAME[interval], start, end):
            try:
                bars.append(rest_bar(ticker, interval, start_ns, raw))
            except (BadValue, KeyError) as exc:
                log.warning("alpaca: a bar of %s not as documented (%s)", ticker, exc)
        return bars

    def fetch_prev_close(self, ticker: str) -> Decimal | None:
        """The close of the last daily bar before the current trading day (at 02:00 on a
        Tuesday, Monday is still the current day: Friday's close)."""
        now = time.time()
        today = self.trading_date(ticker, now)
        closes = [
            (session_date(ticker, start), decimal(raw["c"]))
            for start, raw in self._bars(ticker, "1Day", int(now) - 10 * 86400, int(now))
        ]
        before = [close for day, close in closes if day < today]
        return before[-1] if before else None


def asset_info(asset: object) -> SymbolInfo | None:
    """One asset of /v2/assets as /api/symbols shows it (None: not one we stream)."""
    if not isinstance(asset, dict) or asset.get("status") not in (None, "active"):
        return None
    symbol = canonical(str(asset.get("symbol", "")))
    if symbol is None:
        return None
    crypto = asset.get("class") == "crypto"
    if crypto and crypto_symbol(symbol) is None:
        return None
    if not crypto and stock_symbol(symbol) is None:
        return None
    return SymbolInfo(
        symbol=symbol,
        name=str(asset.get("name") or symbol),
        exchange=str(asset.get("exchange") or ("CRYPTO" if crypto else "")),
        type="crypto" if crypto else "equity",
        currency=symbol.rsplit("-", 1)[-1] if crypto else "USD",
        price_decimals=None if crypto else 2,
    )


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _feed_of(url: str, configured: str) -> str:
    """The feed a stocks URL names (`.../v2/sip`, the test stream `.../v2/test`), else the
    configured one (a proxy's URL says nothing)."""
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return last if last in (*FEEDS, "test") else configured


def check(settings: Settings) -> str | None:
    if settings.alpaca_key_id is None or settings.alpaca_secret_key is None:
        return (
            "alpaca needs an Alpaca key: set APCA_API_KEY_ID and APCA_API_SECRET_KEY "
            "(app.alpaca.markets, API keys; the free plan streams IEX)"
        )
    return None


def build(settings: Settings, clock: MarketClock) -> AlpacaSource:
    problem = check(settings)
    if problem:
        raise ValueError(problem)
    assert settings.alpaca_key_id is not None and settings.alpaca_secret_key is not None
    url = settings.alpaca_url or f"{STREAM}/v2/{settings.alpaca_feed}"
    trading = (settings.alpaca_trading_url,) if settings.alpaca_trading_url else TRADING_URLS
    return AlpacaSource(
        key_id=settings.alpaca_key_id.get_secret_value(),
        secret=settings.alpaca_secret_key.get_secret_value(),
        feed=_feed_of(url, settings.alpaca_feed),
        url=url,
        crypto_url=settings.alpaca_crypto_url,
        rest_url=settings.alpaca_rest_url,
        trading_urls=trading,
        symbol_limit=settings.alpaca_symbol_limit,
        clock=clock,
        mute_after=settings.source_mute_after,
        reconnect_max=settings.source_reconnect_max,
    )
