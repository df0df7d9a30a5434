"""Finnhub: US stock trades over one socket per key (`--source finnhub`), a second stock
source for failover (`--source alpaca,finnhub`).

The stream (finnhub.io/docs/api/websocket-trades; Finnhub's generated clients'
docs, e.g. Finnhub-Stock-API/finnhub-js docs/*.md; users' reports in finnhubio/
Finnhub-API issues):

- `wss://ws.finnhub.io?token=KEY`: the key is in the URL. Every place stockfeed shows a
  URL or an error masks `token=` (logs.redact), and the key never leaves this module
  otherwise.
- "One API key supports one open connection at a time": a connection whose token is
  already in use is dropped at once, before anything is sent (#158, the user's own
  diagnosis: "my token was in use"). A socket closed before its first frame is read here
  as that (capacity: wait for the one connection, never a storm of attempts).
- `{"type":"subscribe","symbol":"AAPL"}` / `unsubscribe`, one symbol a message, no ack.
- Frames: `{"data":[{"p","s","t","v","c"}],"type":"trade"}` (`t` UNIX ms, `v` volume,
  `c` trade conditions; "a price update is sent with v = 0" where an exchange streams no
  trades), `{"type":"ping"}` (liveness only: at night and on holidays a subscribed
  symbol gets pings and nothing else, #252), `{"type":"error","msg":...}` ("Subscribing
  to too many symbols" is seen in users' code only: it lowers the symbol count to what
  was held before the refused subscribe).
- Trades only: no quotes, no bars, no day volume (`v` is a trade's size, never summed).

REST (`https://finnhub.io/api/v1`, the key in the `X-Finnhub-Token` header): the
directory from `/stock/symbol?exchange=US`, history from `/stock/candle` (a premium
endpoint on current plans: a free key gets 403, said as such), the previous close from
`/quote` (`pc`; `c` when the quote is the last session's close, before today's open).

Symbols: stockfeed's `BRK-B` is Finnhub's `BRK.B`; US stocks and ETFs only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection

from stockfeed.client.backoff import Backoff
from stockfeed.config import Settings
from stockfeed.market_hours import MarketClock
from stockfeed.models import Bar
from stockfeed.sources.base import RANGE_DAYS, SourceError, UnknownTicker
from stockfeed.sources.capabilities import Capabilities
from stockfeed.sources.events import Event, Trade
from stockfeed.sources.symbols import SymbolInfo
from stockfeed.sources.vendors.connection import Dialect, VendorConnection
from stockfeed.sources.vendors.errors import Capacity, FatalConfig, Transient, VendorError
from stockfeed.sources.vendors.http import HttpError, get_json, url_with
from stockfeed.sources.vendors.plugin import VendorSource
from stockfeed.sources.vendors.rest_bars import rest_bar
from stockfeed.sources.wire_values import (
    NS_PER_S,
    BadValue,
    decimal,
    epoch_ns,
    loads,
    optional_decimal,
)
from stockfeed.tickers import InvalidTicker, asset_class, normalize_ticker

log = logging.getLogger(__name__)

RESOLUTION = {"1m": "1", "5m": "5", "15m": "15", "1h": "60", "1d": "D"}
TOO_MANY = "too many symbols"


def stock_symbol(ticker: str) -> str | None:
    if asset_class(ticker) != "equity" or "^" in ticker or "=" in ticker:
        return None
    return ticker.replace("-", ".")


def canonical(symbol: str) -> str | None:
    try:
        return normalize_ticker(symbol.replace(".", "-"))
    except InvalidTicker:
        return None


class FinnhubDialect(Dialect):
    label = "finnhub"

    def __init__(self, *, url: str, key: str) -> None:
        super().__init__()
        joiner = "&" if "?" in url else "?"
        self._url = f"{url}{joiner}token={key}"
        self.symbol_limit: int | None = None  # set by a "too many symbols" refusal
        self._order: dict[str, None] = {}  # tickers in the order they were first wanted
        self._last_added: list[str] = []

    def url(self) -> str:
        return self._url

    def serves(self, ticker: str) -> bool:
        return stock_symbol(ticker) is not None

    async def open(self, ws: ClientConnection) -> None:
        pass  # no welcome, no auth message: the key was in the URL

    async def sync(self, ws: ClientConnection, wanted: frozenset[str]) -> None:
        for ticker in list(self._order):
            if ticker not in wanted:
                del self._order[ticker]
        for ticker in sorted(wanted - self._order.keys()):
            self._order[ticker] = None
        ordered = list(self._order)
        limit = self.symbol_limit
        held = ordered if limit is None else ordered[:limit]
        reason = f"Finnhub refused more than {limit} symbols on this key"
        self.limited = {t: reason for t in ordered if t not in held}
        add = [t for t in held if t not in self.subscribed]
        drop = sorted(self.subscribed - set(held))
        for ticker in drop:
            await ws.send(json.dumps({"type": "unsubscribe", "symbol": stock_symbol(ticker)}))
        for ticker in add:
            await ws.send(json.dumps({"type": "subscribe", "symbol": stock_symbol(ticker)}))
        self._last_added = add
        self.subscribed = (self.subscribed - set(drop)) | set(add)

    def read(self, frame: str | bytes) -> list[Event]:
        try:
            message = loads(frame)
        except ValueError:
            log.warning("finnhub: a frame that is not JSON (%d bytes)", len(frame))
            return []
        if not isinstance(message, dict):
            return []
        kind = message.get("type")
        if kind == "error":
            text = str(message.get("msg", ""))[:200]
            if TOO_MANY in text.lower():
                # The subscribes before the last batch were accepted: that many it is.
                self.symbol_limit = max(0, len(self.subscribed) - len(self._last_added))
                log.warning("finnhub: %s: keeping %d symbols", text, self.symbol_limit)
                self.resync = True
                return []
            raise Transient(f"finnhub error: {text}")
        if kind != "trade":
            return []  # ping: the transport is up, nothing more
        out: list[Event] = []
        for raw in message.get("data") or ():
            try:
                trade = self._trade(raw)
            except (BadValue, KeyError, TypeError) as exc:
                log.warning("finnhub: a trade not as documented (%s)", exc)
                continue
            if trade is not None:
                out.append(trade)
        out.sort(key=lambda t: t.ts_ns if isinstance(t, Trade) else 0)
        return out

    def _trade(self, raw: dict[str, Any]) -> Trade | None:
        ticker = canonical(str(raw["s"]))
        if ticker is None or not self.serves(ticker):
            return None
        return Trade(
            ticker,
            decimal(raw["p"]),
            optional_decimal(raw.get("v")),
            epoch_ns(raw["t"], "ms"),
            conditions=tuple(str(c) for c in raw.get("c") or ()),
        )

    def closed(self, code: int, reason: str, frames: int) -> VendorError | None:
        if frames == 0:
            return Capacity(
                "Finnhub closed the socket before sending anything: another connection "
                "holds this key (Finnhub allows one per key)"
            )
        return None

    def http_error(self, status: int, retry_after: float | None) -> VendorError:
        if status in (401, 403):
            return FatalConfig(f"Finnhub refused the key (HTTP {status}): check FINNHUB_API_KEY")
        return super().http_error(status, retry_after)


class FinnhubSource(VendorSource):
    name = "finnhub"
    capabilities = Capabilities(
        needs_key=True,
        key_variables=("FINNHUB_API_KEY",),
        connections_per_key=1,
        asset_classes=frozenset({"equity", "etf"}),
        event_kinds=frozenset({"trade", "state", "gap"}),
        redistribution="unknown",
        history=True,
        directory=True,
    )

    def __init__(
        self,
        *,
        key: str,
        url: str,
        rest_url: str,
        clock: MarketClock,
        mute_after: float = 60.0,
        reconnect_max: float = 60.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._key = key
        self.clock = clock
        self._now = now  # the wall clock the current trading day is read from
        self.rest_url = rest_url
        self.dialect = FinnhubDialect(url=url, key=key)
        self.connections = [
            VendorConnection(
                self.dialect,
                clock=clock,
                mute_after=mute_after,
                backoff=Backoff(initial=1.0, maximum=reconnect_max),
            )
        ]

    def _get(self, path: str, params: dict[str, object]) -> Any:
        return get_json(url_with(self.rest_url, path, params), {"X-Finnhub-Token": self._key})

    def fetch_directory(self) -> list[SymbolInfo]:
        out: list[SymbolInfo] = []
        for item in self._get("/stock/symbol", {"exchange": "US"}) or ():
            info = symbol_info(item)
            if info is not None:
                out.append(info)
        return out

    def fetch_history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        symbol = stock_symbol(ticker)
        if symbol is None:
            raise UnknownTicker(f"Finnhub has no US stock {ticker}")
        end = int(time.time())
        start = end - RANGE_DAYS[range_] * 86400
        try:
            answer = self._get(
                "/stock/candle",
                {"symbol": symbol, "resolution": RESOLUTION[interval], "from": start, "to": end},
            )
        except HttpError as exc:
            if exc.status == 403:
                raise SourceError(
                    "Finnhub's candles need a plan that includes them (HTTP 403)"
                ) from None
            raise
        if not isinstance(answer, dict) or answer.get("s") != "ok":
            return []  # "no_data"
        bars: list[Bar] = []
        columns = [answer.get(k) or [] for k in ("t", "o", "h", "l", "c", "v")]
        for t, o, h, low, c, v in zip(*columns, strict=False):
            try:
                raw = {"o": o, "h": h, "l": low, "c": c, "v": v}
                bars.append(rest_bar(ticker, interval, epoch_ns(t, "s"), raw))
            except (BadValue, KeyError) as exc:
                log.warning("finnhub: a candle of %s not as documented (%s)", ticker, exc)
        return bars

    def fetch_prev_close(self, ticker: str) -> Decimal | None:
        """The regular close of the session before the current one. `/quote` gives a
        price `c` with its time `t` and `pc`, "Previous close price", the close before
        `c`'s day. Once today's session has opened, that is `pc`. Before it, `c` is the
        previous close only if it was stamped within that session's regular hours: an
        after-hours `c` is no close, and then Finnhub says nothing usable (None: the
        server uses the regular close it saw itself)."""
        symbol = stock_symbol(ticker)
        if symbol is None:
            return None
        answer = self._get("/quote", {"symbol": symbol})
        if not isinstance(answer, dict):
            return None
        price, previous = optional_decimal(answer.get("c")), optional_decimal(answer.get("pc"))
        try:
            when = epoch_ns(answer.get("t"), "s") // NS_PER_S
        except BadValue:
            return None
        clock = self.clock
        assert clock is not None  # set by __init__
        schedule = clock.schedule(ticker)
        today = clock.current_day(schedule, self._now())
        if today is None or when >= today.open:
            return previous if previous else None
        day = clock.current_day(schedule, when)
        if day is not None and day.open <= when <= day.close and price:
            return price
        return None


def symbol_info(item: object) -> SymbolInfo | None:
    """One entry of /stock/symbol as /api/symbols shows it."""
    if not isinstance(item, dict):
        return None
    symbol = canonical(str(item.get("symbol", "")))
    if symbol is None or stock_symbol(symbol) is None:
        return None
    kind = str(item.get("type") or "")
    return SymbolInfo(
        symbol=symbol,
        name=str(item.get("description") or symbol),
        exchange=str(item.get("mic") or ""),
        type="etf" if kind in ("ETP", "ETF") else "equity",
        currency=str(item.get("currency") or "USD"),
        price_decimals=2,
    )


def check(settings: Settings) -> str | None:
    if settings.finnhub_api_key is None:
        return "finnhub needs a Finnhub API key: set FINNHUB_API_KEY (finnhub.io, dashboard)"
    return None


def build(settings: Settings, clock: MarketClock) -> FinnhubSource:
    problem = check(settings)
    if problem:
        raise ValueError(problem)
    assert settings.finnhub_api_key is not None
    return FinnhubSource(
        key=settings.finnhub_api_key.get_secret_value(),
        url=settings.finnhub_url,
        rest_url=settings.finnhub_rest_url,
        clock=clock,
        mute_after=settings.source_mute_after,
        reconnect_max=settings.source_reconnect_max,
    )
