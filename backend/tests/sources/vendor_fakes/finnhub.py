"""A fake Finnhub trades socket and the REST endpoints stockfeed reads, as documented.

Sources (read 2026-12):

- The socket `wss://ws.finnhub.io?token=KEY`, `{"type":"subscribe","symbol":"AAPL"}` and
  `unsubscribe`, no acknowledgement: finnhub.io/docs/api/websocket-trades.
- The trade frame: that page's example `{"data":[{"p":7296.89,"s":"BINANCE:BTCUSDT",
  "t":1575526691134,"v":0.011467}],"type":"trade"}`, with `c` (the list of trade
  conditions the page documents) as a captured US-stock batch has it (tspannhw/
  FLiPN-Py-Stocks README, third-party): `{"c":["1","8","24","12"],"p":122.1,"s":"TSLA",
  "t":1672348887195,"v":1}`. Only the values of these fields change here.
- `{"type":"ping"}` (finnhubio/Finnhub-API#109); at night a subscribed symbol gets pings
  and nothing else (#252).
- One connection per key: a second connection with a token in use is dropped right after
  it opens, before anything is sent (#158: "after less than second of connecting it
  disconnected ... my token was in use"). How it is dropped is not documented: the TCP
  connection is cut here.
- `{"msg":"Subscribing to too many symbols","type":"error"}`: seen in users' code only
  (e.g. a C++ client's comment quoting it), as is a symbol cap; `symbol_limit` enables it.
- A token Finnhub does not know: not documented for the socket; the upgrade is refused
  with 401 here, as Finnhub's REST answers an unknown token.
- REST (`/api/v1`, the key as `token=` or the `X-Finnhub-Token` header): `/stock/symbol`
  (Finnhub-Stock-API/finnhub-js docs/StockSymbol.md's fields), `/quote` (the quote
  example `{"c":261.74,"h":263.31,"l":260.68,"o":261.07,"pc":259.45,"t":1582641000}`),
  `/stock/candle` (docs/StockCandles.md: arrays `o h l c v t` and `s` "ok" or
  "no_data"; 403 for a key whose plan lacks it, `candles_allowed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from .base import FakeVendor

# finnhub.io/docs/api/websocket-trades, the trade example's entry, and `c` as captured.
TRADE_ENTRY: dict[str, Any] = {
    "c": ["1", "8", "24", "12"],
    "p": 7296.89,
    "s": "BINANCE:BTCUSDT",
    "t": 1575526691134,
    "v": 0.011467,
}
PING = {"type": "ping"}
TOO_MANY = {"msg": "Subscribing to too many symbols", "type": "error"}
QUOTE_EXAMPLE: dict[str, Any] = {
    "c": 261.74,
    "h": 263.31,
    "l": 260.68,
    "o": 261.07,
    "pc": 259.45,
    "t": 1582641000,
}
# finnhub-js docs/StockSymbol.md's fields (values of a listing).
SYMBOL_FIELDS = ("currency", "description", "displaySymbol", "figi", "mic", "symbol", "type")
RESOLUTION_S = {"1": 60, "5": 300, "15": 900, "60": 3600, "D": 86400}
NEW_YORK = ZoneInfo("America/New_York")


def number(text: str) -> Any:
    return json.loads(text)


@dataclass
class FakeTrade:
    symbol: str
    price: str
    size: str
    ns: int


@dataclass
class Session:
    ws: ServerConnection
    token: str
    symbols: set[str] = field(default_factory=set)


class FakeFinnhub(FakeVendor):
    def __init__(
        self,
        *,
        tokens: tuple[str, ...] = ("fhkey123",),
        ping_interval: float = 1.0,
        symbol_limit: int | None = None,
        candles_allowed: bool = True,
        symbols: list[tuple[str, str, str, str]] | None = None,
    ) -> None:
        """`symbols`: (symbol, description, type, mic) for /stock/symbol."""
        super().__init__()
        self.tokens = tokens
        self.ping_interval = ping_interval
        self.symbol_limit = symbol_limit
        self.candles_allowed = candles_allowed
        self.symbols = symbols or [
            ("AAPL", "APPLE INC", "Common Stock", "XNAS"),
            ("MSFT", "MICROSOFT CORP", "Common Stock", "XNAS"),
            ("BRK.B", "BERKSHIRE HATHAWAY INC-CL B", "Common Stock", "XNYS"),
            ("SPY", "SPDR S&P 500 ETF TRUST", "ETP", "ARCX"),
        ]
        self.sessions: list[Session] = []
        self.dropped = 0  # connections dropped because their token was in use
        self.trades: list[FakeTrade] = []
        self.ws_paths: list[str] = []  # the upgrade requests' targets (the token in them)
        self.rest_tokens: list[str] = []
        self.routes = {
            "/api/v1/stock/symbol": self._symbols,
            "/api/v1/quote": self._quote,
            "/api/v1/stock/candle": self._candle,
        }

    def subscribed(self) -> set[str]:
        out: set[str] = set()
        for session in self.sessions:
            out |= session.symbols
        return out

    async def trade(
        self, symbol: str, price: str, size: str = "100", *, at_ns: int | None = None
    ) -> FakeTrade:
        trade = FakeTrade(symbol, price, size, at_ns or time.time_ns())
        self.trades.append(trade)
        if not self.muted:
            await self.send_trades([trade])
        return trade

    async def send_trades(self, trades: list[FakeTrade]) -> None:
        """One frame with every trade a session holds the symbol of (a batch)."""
        for session in list(self.sessions):
            rows = []
            for trade in trades:
                if trade.symbol in session.symbols:
                    row = dict(TRADE_ENTRY)
                    row.update(
                        s=trade.symbol,
                        p=number(trade.price),
                        v=number(trade.size),
                        t=trade.ns // 1_000_000,
                    )
                    rows.append(row)
            if rows:
                await self.send(session.ws, {"data": rows, "type": "trade"})

    # -- the socket ------------------------------------------------------------------------

    def upgrade(self, path: str, headers: Headers) -> Response | None:
        self.ws_paths.append(path)
        token = parse_qs(urlsplit(path).query).get("token", [""])[0]
        if token not in self.tokens:
            body = b'{"error":"Invalid API key"}'
            return Response(401, "Unauthorized", Headers([]), body)
        return None

    async def session(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        token = parse_qs(urlsplit(path).query).get("token", [""])[0]
        if any(s.token == token for s in self.sessions):
            self.dropped += 1
            ws.transport.abort()  # the token is in use: dropped at once
            return
        session = Session(ws, token)
        self.sessions.append(session)
        pings = asyncio.create_task(self._pings(ws))
        try:
            async for raw in ws:
                message = json.loads(raw)
                self.received.append(message)
                symbol = str(message.get("symbol", ""))
                if message.get("type") == "subscribe":
                    if self.symbol_limit is not None and len(session.symbols) >= self.symbol_limit:
                        await self.send(ws, TOO_MANY)
                        continue
                    session.symbols.add(symbol)
                elif message.get("type") == "unsubscribe":
                    session.symbols.discard(symbol)
        except Exception:
            return
        finally:
            pings.cancel()
            self.sessions.remove(session)

    async def _pings(self, ws: ServerConnection) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            await self.send(ws, PING)

    # -- REST ------------------------------------------------------------------------------

    def _token(self, query: dict[str, list[str]], headers: Headers) -> bool:
        token = headers.get("X-Finnhub-Token") or query.get("token", [""])[0]
        self.rest_tokens.append(token)
        return token in self.tokens

    def _symbols(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        if not self._token(query, headers):
            return 401, {"error": "Invalid API key"}
        rows = []
        for i, (symbol, description, kind, mic) in enumerate(self.symbols):
            figi = f"BBG{i:09d}"
            values = ("USD", description, symbol, figi, mic, symbol, kind)
            rows.append(dict(zip(SYMBOL_FIELDS, values, strict=True)))
        return 200, rows

    def day_of(self, symbol: str, day_start: int) -> list[FakeTrade]:
        return [
            t
            for t in self.trades
            if t.symbol == symbol and day_start <= t.ns // 10**9 < day_start + 86400
        ]

    def _quote(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        """`c` the last trade before now, `t` its time, `pc` the last regular-session trade
        (09:30-16:00 New York) of the trading day before `c`'s."""
        if not self._token(query, headers):
            return 401, {"error": "Invalid API key"}
        symbol = query.get("symbol", [""])[0]
        mine = sorted((t for t in self.trades if t.symbol == symbol), key=lambda t: t.ns)
        answer = dict(QUOTE_EXAMPLE)
        if not mine:
            return 200, {k: 0 for k in answer}  # Finnhub answers zeros for what it lacks
        last = mine[-1]
        last_day = datetime.fromtimestamp(last.ns // 10**9, NEW_YORK).date()
        earlier = [
            t
            for t in mine
            if datetime.fromtimestamp(t.ns // 10**9, NEW_YORK).date() < last_day
            and _regular(t.ns // 10**9)
        ]
        answer.update(
            c=number(last.price),
            t=last.ns // 10**9,
            pc=number(earlier[-1].price) if earlier else 0,
        )
        return 200, answer

    def _candle(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        if not self._token(query, headers):
            return 401, {"error": "Invalid API key"}
        if not self.candles_allowed:
            return 403, {"error": "You don't have access to this resource."}
        symbol = query.get("symbol", [""])[0]
        step = RESOLUTION_S[query.get("resolution", ["1"])[0]]
        start, end = int(query["from"][0]), int(query["to"][0])
        buckets: dict[int, list[FakeTrade]] = {}
        for trade in sorted(self.trades, key=lambda t: t.ns):
            second = trade.ns // 10**9
            if trade.symbol == symbol and start <= second <= end:
                buckets.setdefault(second // step * step, []).append(trade)
        if not buckets:
            return 200, {"s": "no_data"}
        out: dict[str, Any] = {k: [] for k in ("c", "h", "l", "o", "t", "v")}
        for bucket in sorted(buckets):
            trades = buckets[bucket]
            prices = [Decimal(t.price) for t in trades]
            out["o"].append(number(trades[0].price))
            out["h"].append(number(str(max(prices))))
            out["l"].append(number(str(min(prices))))
            out["c"].append(number(trades[-1].price))
            out["v"].append(number(str(sum((Decimal(t.size) for t in trades), Decimal(0)))))
            out["t"].append(bucket)
        out["s"] = "ok"
        return 200, out

    async def drop_all(self) -> None:
        for session in list(self.sessions):
            with contextlib.suppress(Exception):
                session.ws.transport.abort()


def _regular(second: int) -> bool:
    local = datetime.fromtimestamp(second, NEW_YORK)
    minutes = local.hour * 60 + local.minute
    return 9 * 60 + 30 <= minutes < 16 * 60
