"""Massive (formerly Polygon.io) stocks: real time or 15 minutes delayed (`--source massive`).

The stream (massive.com/docs/websocket/stocks/*; massive-com/client-python
.massive/websocket.json, massive/websocket/__init__.py, test_websocket/mock_server.py):

- `wss://socket.massive.com/stocks` (real time) or `wss://delayed.massive.com/stocks`
  (15 minutes delayed): "Each account comes with access to one simultaneous WebSocket
  connection per cluster", and a new connection evicts the older one with a
  `max_connections` status. Only the elected updater holds it.
- Frames are JSON arrays of `{"ev": ...}` messages. On connect a status `connected`
  (the mock server's word; websocket.json's example says `success`: both are read), then
  `{"action":"auth","params":KEY}` and `auth_success`, `auth_failed` or `auth_timeout`.
- Subscriptions: `{"action":"subscribe","params":"T.AAPL,Q.AAPL"}` (and `unsubscribe`),
  each answered `subscribed to: T.AAPL`. No symbol cap.
- Channels used: `T` trades (`t` the SIP time in ms, `s` the size, `ds` a fractional size
  as a string where the page lists it), `Q` quotes (NBBO; `bs`/`as` are round lots:
  "A bid size of 2 means there are 200 shares"; real time only: websocket.json allows
  Q no delayed timeframe, so the delayed feed does not ask for it), `A` second and `AM`
  minute aggregates: `v` the window's volume, `av` "Today's accumulated volume" (the
  day's cumulative volume, pre-market included) and `op` "Today's official opening
  price", `s`/`e` the window's bounds in ms.
- Disconnect statuses (websocket.json): `max_connections` (another holder of the key's
  one connection: wait for it, never fight it), `force_disconnect` and `slow_consumer`
  (reconnect). `auth_failed` is fatal: retrying a refused key changes nothing.
- Times are ms in every schema and example, whatever the overview page's "seconds since
  epoch" says; a second-aggregate or trade time is read as ms.

REST (`https://api.massive.com`, `Authorization: Bearer KEY` as the official client
sends it): history from `/v2/aggs/ticker/{T}/range/{n}/{span}/{from}/{to}`, the
directory from `/v3/reference/tickers` (paged by `next_url`), the previous regular
close from `/v1/open-close/{T}/{date}` (its `close`, apart from `afterHours`).

Symbols: stockfeed's `BRK-B` is Massive's `BRK.B`; US stocks and ETFs only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection

from stockfeed.client.backoff import Backoff
from stockfeed.config import Settings
from stockfeed.market_hours import MarketClock
from stockfeed.models import Bar
from stockfeed.sources.base import RANGE_DAYS, UnknownTicker
from stockfeed.sources.capabilities import Capabilities
from stockfeed.sources.events import Event, EventKind, Quote, Summary, Trade, VendorBar
from stockfeed.sources.symbols import SymbolInfo
from stockfeed.sources.vendors.connection import Dialect, VendorConnection
from stockfeed.sources.vendors.errors import Capacity, FatalConfig, Transient, VendorError
from stockfeed.sources.vendors.http import HttpError, get_json, url_with
from stockfeed.sources.vendors.plugin import VendorSource
from stockfeed.sources.vendors.rest_bars import rest_bar
from stockfeed.sources.wire_values import (
    NS_PER_MS,
    BadValue,
    decimal,
    epoch_ns,
    loads,
    optional_decimal,
)
from stockfeed.tickers import InvalidTicker, asset_class, normalize_ticker

log = logging.getLogger(__name__)

Feed = Literal["realtime", "delayed"]
URLS: dict[str, str] = {
    "realtime": "wss://socket.massive.com/stocks",
    "delayed": "wss://delayed.massive.com/stocks",
}
REST_URL = "https://api.massive.com"
ROUND_LOT = Decimal(100)  # quote sizes are round lots of 100 shares
TIMESPAN = {
    "1m": (1, "minute"),
    "5m": (5, "minute"),
    "15m": (15, "minute"),
    "1h": (1, "hour"),
    "1d": (1, "day"),
}
DIRECTORY_PAGES = 20  # 1000 tickers a page
# Statuses that end the connection, by class (websocket.json's DisconnectEvent and
# AuthEvent enums).
_TRANSIENT = frozenset({"force_disconnect", "slow_consumer", "auth_timeout"})


def stock_symbol(ticker: str) -> str | None:
    if asset_class(ticker) != "equity" or "^" in ticker or "=" in ticker:
        return None
    return ticker.replace("-", ".")


def canonical(symbol: str) -> str | None:
    try:
        return normalize_ticker(symbol.replace(".", "-"))
    except InvalidTicker:
        return None


def status_error(status: str, message: str) -> VendorError:
    """A status that ends the connection, as one of the three classes."""
    if status == "auth_failed":
        return FatalConfig(f"Massive refused the key ({message}): check MASSIVE_API_KEY")
    if status == "max_connections":
        return Capacity(
            f"another connection holds this key's one Massive stream ({message}): waiting for it"
        )
    return Transient(f"massive {status}: {message}")


class MassiveDialect(Dialect):
    def __init__(self, *, url: str, key: str, feed: Feed) -> None:
        super().__init__()
        self.label = f"massive {feed}"
        self._url = url
        self._key = key
        # The delayed feed has no quotes (websocket.json: Q is "realtime" only).
        self.channels = ("T", "A", "AM") if feed == "delayed" else ("T", "Q", "A", "AM")

    def url(self) -> str:
        return self._url

    def serves(self, ticker: str) -> bool:
        return stock_symbol(ticker) is not None

    async def open(self, ws: ClientConnection) -> None:
        welcome = self._statuses(await ws.recv())
        if not any(s in ("connected", "success") for s, _ in welcome):
            problem = next(((s, m) for s, m in welcome if s in _TRANSIENT), None)
            if problem is not None:
                raise status_error(*problem)
            raise Transient(f"massive: unexpected welcome {welcome!r:.100}")
        await ws.send(json.dumps({"action": "auth", "params": self._key}))
        for status, message in self._statuses(await ws.recv()):
            if status == "auth_success":
                return
            if status in ("auth_failed", "auth_timeout", "max_connections", *_TRANSIENT):
                raise status_error(status, message)
        raise Transient("massive: no answer to auth")

    def _statuses(self, frame: str | bytes) -> list[tuple[str, str]]:
        try:
            messages = loads(frame)
        except ValueError:
            raise Transient("massive: a frame that is not JSON") from None
        if not isinstance(messages, list):
            raise Transient("massive: a frame that is not an array of messages")
        return [
            (str(m.get("status")), str(m.get("message", ""))[:200])
            for m in messages
            if isinstance(m, dict) and m.get("ev") == "status"
        ]

    def _params(self, tickers: list[str]) -> str:
        return ",".join(
            f"{channel}.{stock_symbol(t)}" for t in tickers for channel in self.channels
        )

    async def sync(self, ws: ClientConnection, wanted: frozenset[str]) -> None:
        add = sorted(wanted - self.subscribed)
        drop = sorted(self.subscribed - wanted)
        if drop:
            await ws.send(json.dumps({"action": "unsubscribe", "params": self._params(drop)}))
        if add:
            await ws.send(json.dumps({"action": "subscribe", "params": self._params(add)}))
        # Massive acknowledges each param; what was asked counts meanwhile (no symbol cap).
        self.subscribed = (self.subscribed | set(add)) - set(drop)

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
            kind = message.get("ev")
            if kind == "status":
                self._status(message)
                continue
            if kind not in ("T", "Q", "A", "AM"):
                continue
            try:
                out.extend(self._data(str(kind), message))
            except (BadValue, KeyError, TypeError) as exc:
                log.warning("%s: a %r message not as documented (%s)", self.label, kind, exc)
        return out

    def _status(self, message: dict[str, Any]) -> None:
        status = str(message.get("status"))
        text = str(message.get("message", ""))[:200]
        if status in ("auth_failed", "max_connections", *_TRANSIENT):
            raise status_error(status, text)
        if status == "error":
            # A refused subscription (SubscribeEvent's `error`): the tickers it names are
            # left out and said so, the rest go on.
            named = {t for t in self.subscribed if f".{stock_symbol(t)}" in text}
            for ticker in named:
                self.limited[ticker] = f"massive refused it: {text}"
            self.subscribed -= named
            log.warning("%s: %s", self.label, text)

    def _data(self, kind: str, m: dict[str, Any]) -> list[Event]:
        ticker = canonical(str(m["sym"]))
        if ticker is None:
            return []
        if kind == "T":
            size = optional_decimal(m.get("ds")) if "ds" in m else optional_decimal(m.get("s"))
            return [
                Trade(
                    ticker,
                    decimal(m["p"]),
                    size,
                    epoch_ns(m["t"], "ms"),
                    venue=str(m["x"]) if "x" in m else None,
                    conditions=tuple(str(c) for c in m.get("c") or ()),
                    trade_id=str(m["i"]) if "i" in m else None,
                )
            ]
        if kind == "Q":
            bid_lots, ask_lots = optional_decimal(m.get("bs")), optional_decimal(m.get("as"))
            return [
                Quote(
                    ticker,
                    optional_decimal(m.get("bp")),
                    None if bid_lots is None else bid_lots * ROUND_LOT,
                    optional_decimal(m.get("ap")),
                    None if ask_lots is None else ask_lots * ROUND_LOT,
                    epoch_ns(m["t"], "ms"),
                )
            ]
        start = epoch_ns(m["s"], "ms")
        official_open = optional_decimal(m.get("op"))
        out: list[Event] = []
        if kind == "AM":
            out.append(
                VendorBar(
                    ticker,
                    "1m",
                    start,
                    decimal(m["o"]),
                    decimal(m["h"]),
                    decimal(m["l"]),
                    decimal(m["c"]),
                    optional_decimal(m.get("v")),
                    final=True,  # "no bar is emitted" for a minute without trades
                    vwap=optional_decimal(m.get("vw")),
                )
            )
        # The day's figures documented as such: the accumulated volume and the official
        # open (absent or 0 before the open: not an open). Placed at the window's end.
        end = epoch_ns(m["e"], "ms") - NS_PER_MS if "e" in m else start
        out.append(
            Summary(
                ticker,
                end,
                day_volume=optional_decimal(m.get("av")),
                open=official_open if official_open and official_open > 0 else None,
            )
        )
        return out


class MassiveSource(VendorSource):
    name = "massive"

    def __init__(
        self,
        *,
        key: str,
        feed: Feed,
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
        self.feed = feed
        self.delayed = 900 if feed == "delayed" else 0
        self.rest_url = rest_url
        kinds: set[EventKind] = {"trade", "bar", "summary", "state", "gap"}
        if feed == "realtime":
            kinds.add("quote")
        self.capabilities = Capabilities(
            needs_key=True,
            key_variables=("MASSIVE_API_KEY",),
            connections_per_key=1,  # "one simultaneous WebSocket connection per cluster"
            asset_classes=frozenset({"equity", "etf"}),
            delayed_s=self.delayed,
            event_kinds=frozenset(kinds),
            redistribution="self-only",
            history=True,
            directory=True,
        )
        self.dialect = MassiveDialect(url=url, key=key, feed=feed)
        self.connections = [
            VendorConnection(
                self.dialect,
                clock=clock,
                mute_after=mute_after,
                backoff=Backoff(initial=1.0, maximum=reconnect_max),
            )
        ]

    # -- REST ------------------------------------------------------------------------------

    def _get(self, path_or_url: str, params: dict[str, object] | None = None) -> Any:
        url = path_or_url if "://" in path_or_url else url_with(self.rest_url, path_or_url)
        if params:
            url = url_with(url, "", params)
        return get_json(url, {"Authorization": f"Bearer {self._key}"})

    def fetch_directory(self) -> list[SymbolInfo]:
        out: list[SymbolInfo] = []
        url: str | None = "/v3/reference/tickers"
        params: dict[str, object] | None = {"market": "stocks", "active": "true", "limit": 1000}
        for _ in range(DIRECTORY_PAGES):
            if url is None:
                break
            answer = self._get(url, params)
            for item in answer.get("results") or ():
                info = ticker_info(item)
                if info is not None:
                    out.append(info)
            next_url = answer.get("next_url")
            # `next_url` carries the cursor and no key: the header still goes with it.
            url, params = (str(next_url), None) if next_url else (None, None)
        return out

    def _aggs(self, ticker: str, interval: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        symbol = stock_symbol(ticker)
        if symbol is None:
            raise UnknownTicker(f"Massive has no US stock {ticker}")
        multiplier, span = TIMESPAN[interval]
        try:
            answer = self._get(
                f"/v2/aggs/ticker/{symbol}/range/{multiplier}/{span}/{start_ms}/{end_ms}",
                {"adjusted": "false", "sort": "asc", "limit": 50000},
            )
        except HttpError as exc:
            if exc.status in (400, 404):
                raise UnknownTicker(f"Massive has no symbol {ticker}") from None
            raise
        return [r for r in answer.get("results") or () if isinstance(r, dict)]

    def fetch_history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        end_ms = int(time.time() * 1000)
        start_ms = end_ms - RANGE_DAYS[range_] * 86_400_000
        bars: list[Bar] = []
        for raw in self._aggs(ticker, interval, start_ms, end_ms):
            try:
                bars.append(rest_bar(ticker, interval, epoch_ns(raw["t"], "ms"), raw))
            except (BadValue, KeyError) as exc:
                log.warning("massive: a bar of %s not as documented (%s)", ticker, exc)
        return bars

    def fetch_prev_close(self, ticker: str) -> Decimal | None:
        """The regular close of the session before the current one (the day in progress,
        or the last one at night): Massive's daily open/close gives it apart from the
        after-hours price."""
        symbol = stock_symbol(ticker)
        if symbol is None:
            return None
        clock = self.clock
        assert clock is not None  # set by __init__
        schedule = clock.schedule(ticker)
        today = clock.current_day(schedule, self._now())
        if today is None:
            return None
        before = clock.previous_day(schedule, today)
        try:
            answer = self._get(f"/v1/open-close/{symbol}/{before.date.isoformat()}")
        except HttpError as exc:
            if exc.status == 404:
                return None  # no trades that day
            raise
        return optional_decimal(answer.get("close"))


def ticker_info(item: object) -> SymbolInfo | None:
    """One entry of /v3/reference/tickers as /api/symbols shows it."""
    if not isinstance(item, dict) or item.get("active") is False:
        return None
    if item.get("market") not in (None, "stocks"):
        return None
    symbol = canonical(str(item.get("ticker", "")))
    if symbol is None or stock_symbol(symbol) is None:
        return None
    kind = str(item.get("type") or "")
    return SymbolInfo(
        symbol=symbol,
        name=str(item.get("name") or symbol),
        exchange=str(item.get("primary_exchange") or ""),
        type="etf" if kind in ("ETF", "ETN", "ETV", "ETS") else "equity",
        currency=str(item.get("currency_name") or "usd").upper(),
        price_decimals=2,
    )


def check(settings: Settings) -> str | None:
    if settings.massive_api_key is None:
        return "massive needs a Massive API key: set MASSIVE_API_KEY (massive.com, dashboard)"
    return None


def build(settings: Settings, clock: MarketClock) -> MassiveSource:
    problem = check(settings)
    if problem:
        raise ValueError(problem)
    assert settings.massive_api_key is not None
    return MassiveSource(
        key=settings.massive_api_key.get_secret_value(),
        feed=settings.massive_feed,
        url=settings.massive_url or URLS[settings.massive_feed],
        rest_url=settings.massive_rest_url,
        clock=clock,
        mute_after=settings.source_mute_after,
        reconnect_max=settings.source_reconnect_max,
    )
