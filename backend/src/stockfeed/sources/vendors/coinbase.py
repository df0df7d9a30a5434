"""Coinbase Advanced Trade market data: keyless, 24/7 crypto (`--source coinbase`).

The socket (docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/):

- One `subscribe` per channel: `{"type":"subscribe","product_ids":[...],"channel":...}`,
  sent within 5 s of connecting (else the socket is closed). No key: the `jwt` field is
  only sent by the official client when it has one (coinbase-advanced-py
  websocket_base.py `_build_subscription_message`). Unauthenticated messages are limited
  to 8 a second per IP, so subscribes are spaced.
- Channels used: `ticker` (best bid and ask, the 24 h volume), `market_trades` (every
  trade, batched over 250 ms: the last price comes from these) and `heartbeats`, whose
  `heartbeat_counter` goes up by one a second: a jump is a gap in what we received.
  "Most channels close within 60-90 seconds if no updates are sent": heartbeats keep a
  quiet socket open.
- Every message is an envelope `{channel, client_id, timestamp, sequence_num, events}`.
  The official AsyncAPI file (verified against production, it says) has no `client_id`
  and gives `heartbeat_counter` as an integer, the prose examples a string: both are read.
- Prices and sizes are decimal strings: kept exact. Times are RFC 3339 with nanoseconds.
- Volume: `volume_24_h` is a rolling 24 h window, so it goes in `volume_24h`, never in the
  day's `volume` (Coinbase documents no cumulative day volume).

REST (public, keyless): `GET /api/v3/brokerage/market/products` (the directory) and
`.../market/products/{id}/candles` (history; at most 350 candles an answer).

Symbols: stockfeed's crypto tickers are Coinbase's product ids (`BTC-USD`), both ways.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection

from stockfeed.client.backoff import Backoff
from stockfeed.config import Settings
from stockfeed.market_hours import MarketClock
from stockfeed.models import Bar
from stockfeed.sources.base import INTERVAL_SECONDS, RANGE_DAYS, UnknownTicker
from stockfeed.sources.capabilities import Capabilities
from stockfeed.sources.events import Event, Gap, Quote, Summary, Trade
from stockfeed.sources.symbols import SymbolInfo
from stockfeed.sources.vendors.connection import Dialect, VendorConnection
from stockfeed.sources.vendors.errors import Transient
from stockfeed.sources.vendors.http import HttpError, get_json, url_with
from stockfeed.sources.vendors.plugin import VendorSource
from stockfeed.sources.wire_values import (
    NS_PER_S,
    BadValue,
    decimal,
    epoch_ns,
    loads,
    optional_decimal,
    rfc3339_ns,
)
from stockfeed.tickers import asset_class

log = logging.getLogger(__name__)

CHANNELS = ("ticker", "market_trades")
# Unauthenticated messages: 8 a second per IP (websocket-rate-limits): one every 0.15 s.
SEND_SPACING = 0.15
CANDLES_PER_ANSWER = 350
# History answers of more candles than this are cut (oldest first): 21 pages of 1m.
MAX_PAGES = 21
GRANULARITY = {
    "1m": "ONE_MINUTE",
    "5m": "FIVE_MINUTE",
    "15m": "FIFTEEN_MINUTE",
    "1h": "ONE_HOUR",
    "1d": "ONE_DAY",
}
_PRODUCT = re.compile(r"^[A-Z0-9]{1,10}-[A-Z0-9]{1,6}$")
# Trade ids remembered per product, so a reconnect's snapshot is not published twice.
_SEEN_TRADES = 256

CAPABILITIES = Capabilities(
    needs_key=False,
    connections_per_key=None,  # keyless: limits are per IP (8 connections/s)
    asset_classes=frozenset({"crypto"}),
    event_kinds=frozenset({"trade", "quote", "summary", "state", "gap"}),
    redistribution="unknown",
    heartbeat_s=1.0,
    history=True,
    directory=True,
)


def serves(ticker: str) -> bool:
    return asset_class(ticker) == "crypto" and _PRODUCT.match(ticker) is not None


class CoinbaseDialect(Dialect):
    label = "coinbase"

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._heartbeat: tuple[int, int] | None = None  # (counter, when ns)
        self._seen: dict[str, dict[str, None]] = {}  # product -> recent trade ids
        self._newest: dict[str, int] = {}  # product -> newest trade time (ns)
        self._asked: set[str] = set()  # the products asked for on this connection

    def url(self) -> str:
        return self._url

    def serves(self, ticker: str) -> bool:
        return serves(ticker)

    async def open(self, ws: ClientConnection) -> None:
        # No welcome: the server waits for subscribes. Heartbeats first: they keep the
        # socket open while the products are quiet.
        await ws.send(json.dumps({"type": "subscribe", "channel": "heartbeats"}))

    def reset(self) -> None:
        super().reset()
        self._heartbeat = None
        self._asked.clear()

    async def sync(self, ws: ClientConnection, wanted: frozenset[str]) -> None:
        for ticker in [t for t in self.limited if t not in wanted]:
            del self.limited[ticker]  # asked for again later, it is tried again
        want = {t for t in wanted if t not in self.limited}
        add = sorted(want - self.subscribed)
        drop = sorted(self.subscribed - want)
        for kind, products in (("subscribe", add), ("unsubscribe", drop)):
            if not products:
                continue
            for channel in CHANNELS:
                await asyncio.sleep(SEND_SPACING)
                message = {"type": kind, "product_ids": products, "channel": channel}
                await ws.send(json.dumps(message))
        # Confirmed by the `subscriptions` message; until then what was asked counts.
        self.subscribed = (self.subscribed | set(add)) - set(drop)
        self._asked |= set(add)

    def read(self, frame: str | bytes) -> list[Event]:
        try:
            message = loads(frame)
        except ValueError:
            log.warning("coinbase: a frame that is not JSON (%d bytes)", len(frame))
            return []
        if not isinstance(message, dict):
            return []
        if message.get("type") == "error":
            # {"type":"error","message":...} (docs.cdp.coinbase.com/exchange/websocket-feed/
            # errors.md; the Advanced Trade pages show the same type). The text is free:
            # one naming products we just asked for refuses those (left out, the rest
            # subscribed again); any other is a reconnect, never a silent carry-on.
            text = str(message.get("message"))[:300]
            named = {t for t in self._asked if t in text}
            if named:
                for ticker in named:
                    self.limited[ticker] = f"coinbase refused it: {text}"
                self.subscribed -= named
                self.resync = True
                return []
            raise Transient(f"coinbase error: {text}")
        channel = message.get("channel")
        events = message.get("events")
        if not isinstance(events, list):
            return []
        try:
            if channel == "market_trades":
                return self._trades(events)
            if channel == "ticker":
                return self._tickers(message, events)
            if channel == "heartbeats":
                return self._heartbeats(events)
            if channel == "subscriptions":
                self._subscriptions(events)
        except (BadValue, KeyError, TypeError) as exc:
            log.warning("coinbase: a %s frame not as documented (%s)", channel, exc)
        return []

    def _trades(self, events: list[Any]) -> list[Event]:
        trades: list[Trade] = []
        for event in events:
            for raw in event.get("trades") or ():
                ticker = str(raw["product_id"])
                if not serves(ticker):
                    continue
                trade_id = str(raw.get("trade_id"))
                seen = self._seen.setdefault(ticker, {})
                if trade_id in seen:
                    continue  # a reconnect's snapshot repeats trades already published
                side = raw.get("side")
                trades.append(
                    Trade(
                        ticker,
                        decimal(raw["price"]),
                        optional_decimal(raw.get("size")),
                        rfc3339_ns(raw["time"]),
                        venue="coinbase",
                        trade_id=trade_id,
                        taker_side=str(side).lower() if isinstance(side, str) else None,
                    )
                )
                seen[trade_id] = None
                if len(seen) > _SEEN_TRADES:
                    del seen[next(iter(seen))]
        # A batch (and a snapshot) may list the newest first: publish in time order, and
        # nothing older than what was published already (a reconnect's snapshot).
        trades.sort(key=lambda t: t.ts_ns)
        out: list[Event] = []
        for trade in trades:
            if trade.ts_ns < self._newest.get(trade.ticker, 0):
                continue
            self._newest[trade.ticker] = trade.ts_ns
            out.append(trade)
        return out

    def _tickers(self, message: dict[str, Any], events: list[Any]) -> list[Event]:
        when = rfc3339_ns(message["timestamp"])
        out: list[Event] = []
        for event in events:
            for raw in event.get("tickers") or ():
                ticker = str(raw["product_id"])
                if not serves(ticker):
                    continue
                out.append(
                    Quote(
                        ticker,
                        optional_decimal(raw.get("best_bid")),
                        optional_decimal(raw.get("best_bid_quantity")),
                        optional_decimal(raw.get("best_ask")),
                        optional_decimal(raw.get("best_ask_quantity")),
                        when,
                    )
                )
                volume = optional_decimal(raw.get("volume_24_h"))
                if volume is not None:
                    out.append(Summary(ticker, when, volume_24h=volume))
        return out

    def _heartbeats(self, events: list[Any]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            counter = int(event["heartbeat_counter"])  # a string in the prose docs
            now = time.time_ns()
            before = self._heartbeat
            self._heartbeat = (counter, now)
            if before is not None and counter > before[0] + 1 and self.subscribed:
                missed = counter - before[0] - 1
                out.append(
                    Gap(
                        frozenset(self.subscribed),
                        before[1],
                        now,
                        f"coinbase heartbeat counter jumped {before[0]} -> {counter} "
                        f"({missed} missed)",
                    )
                )
        return out

    def _subscriptions(self, events: list[Any]) -> None:
        for event in events:
            subscriptions = event.get("subscriptions")
            if not isinstance(subscriptions, dict):
                continue
            products = [set(subscriptions.get(channel) or ()) for channel in CHANNELS]
            self.subscribed = {str(p) for p in set.intersection(*products) if serves(str(p))}


class CoinbaseSource(VendorSource):
    name = "coinbase"
    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        url: str,
        rest_url: str,
        clock: MarketClock,
        mute_after: float = 60.0,
        reconnect_max: float = 60.0,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.rest_url = rest_url
        self.dialect = CoinbaseDialect(url)
        self.connections = [
            VendorConnection(
                self.dialect,
                clock=clock,
                mute_after=mute_after,
                backoff=Backoff(initial=1.0, maximum=reconnect_max),
            )
        ]

    def fetch_directory(self) -> list[SymbolInfo]:
        answer = get_json(
            url_with(self.rest_url, "/api/v3/brokerage/market/products", {"product_type": "SPOT"})
        )
        out: list[SymbolInfo] = []
        for product in answer.get("products") or ():
            info = product_info(product)
            if info is not None:
                out.append(info)
        return out

    def fetch_history(self, ticker: str, interval: str, range_: str) -> list[Bar]:
        if not serves(ticker):
            raise UnknownTicker(f"Coinbase has no product {ticker}")
        step = INTERVAL_SECONDS[interval]
        end = int(time.time())
        start = end - RANGE_DAYS[range_] * 86400
        # Pages of at most 350 candles, newest first, the oldest cut past MAX_PAGES.
        start = max(start, end - MAX_PAGES * CANDLES_PER_ANSWER * step)
        bars: dict[int, Bar] = {}
        page_end = end
        while page_end > start:
            page_start = max(start, page_end - CANDLES_PER_ANSWER * step)
            try:
                answer = get_json(
                    url_with(
                        self.rest_url,
                        f"/api/v3/brokerage/market/products/{ticker}/candles",
                        {
                            "start": page_start,
                            "end": page_end,
                            "granularity": GRANULARITY[interval],
                            "limit": CANDLES_PER_ANSWER,
                        },
                    )
                )
            except HttpError as exc:
                if exc.status in (400, 404):
                    raise UnknownTicker(f"Coinbase has no product {ticker}") from None
                raise
            for candle in answer.get("candles") or ():
                bar = candle_bar(candle)
                if bar is not None:
                    bars[bar.time] = bar
            page_end = page_start
        return [bars[t] for t in sorted(bars)]

    def fetch_prev_close(self, ticker: str) -> Decimal | None:
        """Crypto's session is the UTC day: the previous one's close is yesterday's candle."""
        today = int(time.time()) // 86400 * 86400
        answer = get_json(
            url_with(
                self.rest_url,
                f"/api/v3/brokerage/market/products/{ticker}/candles",
                {"start": today - 3 * 86400, "end": today, "granularity": "ONE_DAY"},
            )
        )
        closes = {
            epoch_ns(c["start"], "s") // NS_PER_S: decimal(c["close"])
            for c in answer.get("candles") or ()
            if isinstance(c, dict) and "start" in c and "close" in c
        }
        return closes.get(today - 86400)


def product_info(product: object) -> SymbolInfo | None:
    """One entry of the products list, as /api/symbols shows it (None: not streamable)."""
    if not isinstance(product, dict):
        return None
    ticker = str(product.get("product_id", ""))
    if not serves(ticker) or product.get("trading_disabled") or product.get("is_disabled"):
        return None
    base = product.get("base_name") or product.get("base_display_symbol") or ticker
    quote = product.get("quote_currency_id") or ticker.rsplit("-", 1)[-1]
    return SymbolInfo(
        symbol=ticker,
        name=f"{base} {quote}",
        exchange="Coinbase",
        type="crypto",
        currency=str(quote),
        price_decimals=_decimals(product.get("quote_increment")),
    )


def candle_bar(candle: object) -> Bar | None:
    if not isinstance(candle, dict):
        return None
    try:
        volume = decimal(candle["volume"])
        return Bar(
            time=epoch_ns(candle["start"], "s") // NS_PER_S,
            open=float(decimal(candle["open"])),
            high=float(decimal(candle["high"])),
            low=float(decimal(candle["low"])),
            close=float(decimal(candle["close"])),
            volume=int(volume) if volume == volume.to_integral_value() else float(volume),
        )
    except (BadValue, KeyError):
        return None


def _decimals(increment: object) -> int | None:
    """`quote_increment` "0.01" -> 2 decimals."""
    try:
        step = decimal(increment)
    except BadValue:
        return None
    if step <= 0:
        return None
    return max(0, -math.floor(math.log10(float(step))))


def check(settings: Settings) -> str | None:
    return None  # keyless


def build(settings: Settings, clock: MarketClock) -> CoinbaseSource:
    return CoinbaseSource(
        url=settings.coinbase_url,
        rest_url=settings.coinbase_rest_url,
        clock=clock,
        mute_after=settings.source_mute_after,
        reconnect_max=settings.source_reconnect_max,
    )
