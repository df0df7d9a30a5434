"""A fake Alpaca market-data stream (stocks feeds and crypto) and its REST, as documented.

Sources (ADOC = alpacahq/alpaca-docs@2080c5e0efbbd812c48eef9209a7a9962de67d2a:
content/api-references/market-data-api/stock-pricing-data/realtime.md, and .../crypto-
pricing-data/realtime.md; APY = alpacahq/alpaca-py@bd1fa9ea2fc3194914be9d47f7f5822a18a05b5f;
DOCS = docs.alpaca.markets/docs/streaming-market-data, read 2026-12):

- Handshake: `[{"T":"success","msg":"connected"}]` on connect, the auth message, then
  `[{"T":"success","msg":"authenticated"}]` (ADOC). "You have a few seconds to
  authenticate": 10 s (DOCS: "within the 10-second window"), else error 404 and a close.
- Every error frame is ADOC's list verbatim (400 invalid syntax ... 500 internal error).
  The close codes after an error are not documented (1008 here).
- One connection per key and endpoint; a second is refused with 406 (DOCS: "If you try to
  open a second connection, you'll get this error").
- 30 symbols for trades and quotes on the free plan, bars without limit; past it 405 and
  "your symbol subscriptions are the same as they were before" (ADOC).
- Subscription answers list the whole current set (ADOC: "You will always receive your
  entire list of subscriptions").
- Data frames from ADOC's examples (trade, quote, minute bar, daily bar, status), with the
  minute bar's `n`/`vw` fields as APY tests/data/test_websockets.py has them; updated bars
  are minute bars with `T` "u" (APY alpaca/data/live/websocket.py channel_types); the
  crypto trade from DOCS' real-time-crypto-pricing-data page (quoted in
  shared/research/vendor-sources.md §2): its fractional size and `tks`.
- REST: /v2/stocks/bars and /v1beta3/crypto/us/bars answer `{"bars":{SYM:[...]},
  "next_page_token"}` (APY tests/data/test_historical_stock_data.py, ..._crypto_data.py);
  /v2/assets a list of APY tests/trading/trading_client/test_asset_routes.py's asset.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from .base import FakeVendor

# ADOC, Trade Schema example (verbatim).
TRADE_EXAMPLE = {
    "T": "t",
    "i": 96921,
    "S": "AAPL",
    "x": "D",
    "p": 126.55,
    "s": 1,
    "t": "2021-02-22T15:51:44.208Z",
    "c": ["@", "I"],
    "z": "C",
}
# DOCS real-time-crypto-pricing-data, a crypto trade (verbatim).
CRYPTO_TRADE_EXAMPLE = {
    "T": "t",
    "S": "AVAX/USD",
    "p": 47.299,
    "s": 29.205707815,
    "t": "2024-03-12T10:27:48.858228144Z",
    "i": 3447222699101865076,
    "tks": "S",
}
# ADOC, Quote Schema example (verbatim).
QUOTE_EXAMPLE = {
    "T": "q",
    "S": "AMD",
    "bx": "U",
    "bp": 87.66,
    "bs": 1,
    "ax": "Q",
    "ap": 87.68,
    "as": 4,
    "t": "2021-02-22T15:51:45.335689322Z",
    "c": ["R"],
    "z": "C",
}
# ADOC, Minute Bar Schema example (verbatim), with APY's `n` and `vw` (test_cast).
BAR_EXAMPLE = {
    "T": "b",
    "S": "SPY",
    "o": 388.985,
    "h": 389.13,
    "l": 388.975,
    "c": 389.12,
    "v": 49378,
    "t": "2021-02-22T19:15:00Z",
    "n": 66,
    "vw": 177.987562,
}
# ADOC, Daily Bar Schema example (verbatim).
DAILY_BAR_EXAMPLE = {
    "T": "d",
    "S": "SPY",
    "o": 388.985,
    "h": 389.13,
    "l": 388.975,
    "c": 389.12,
    "v": 749378,
    "t": "2021-02-16T04:00:00Z",
}
# ADOC, Status Schema example (verbatim).
STATUS_EXAMPLE = {
    "T": "s",
    "S": "AAPL",
    "sc": "H",
    "sm": "Trading Halt",
    "rc": "T12",
    "rm": "Trading Halted; For information requested by NASDAQ",
    "t": "2021-02-22T19:15:00Z",
    "z": "C",
}
# ADOC, Errors (verbatim messages).
ERRORS = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    408: "v2 not enabled",
    409: "insufficient subscription",
    500: "internal error",
}
# APY test_asset_routes.py, the asset (verbatim but for the values the fake varies).
ASSET_EXAMPLE = {
    "id": "904837e3-3b76-47ec-b432-046db621571b",
    "class": "us_equity",
    "exchange": "NASDAQ",
    "symbol": "AAPL",
    "name": "Apple Inc. Common Stock",
    "status": "active",
    "tradable": True,
    "marginable": True,
    "shortable": True,
    "easy_to_borrow": True,
    "fractionable": True,
    "last_close_pct_change": "string",
    "last_price": "string",
    "attributes": ["attribute1", "attribute2"],
}
STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses")
CRYPTO_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "orderbooks")
TIMEFRAME_S = {"1Min": 60, "5Min": 300, "15Min": 900, "1Hour": 3600, "1Day": 86400}
NEW_YORK = ZoneInfo("America/New_York")


def rfc3339(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def number(text: str) -> Any:
    """A JSON number with exactly these digits (json.dumps of a Decimal would be a string)."""
    return json.loads(text)


@dataclass
class FakeTrade:
    symbol: str
    price: str
    size: str
    ns: int
    trade_id: int


@dataclass
class Session:
    ws: ServerConnection
    endpoint: str  # "iex", "sip", "delayed_sip", "test", "crypto"
    key: str | None = None
    channels: dict[str, set[str]] = field(default_factory=dict)

    @property
    def crypto(self) -> bool:
        return self.endpoint == "crypto"


class FakeAlpaca(FakeVendor):
    def __init__(
        self,
        *,
        keys: dict[str, str] | None = None,
        feeds: tuple[str, ...] = ("iex", "test"),
        symbol_limit: int | None = 30,
        auth_timeout: float = 10.0,
        assets: list[tuple[str, str, str, str]] | None = None,
    ) -> None:
        """`keys`: key id -> secret; `feeds`: what the plan includes (others: 409);
        `assets`: (symbol, name, class, exchange)."""
        super().__init__()
        self.keys = keys or {"PKTEST": "s3cret"}
        self.feeds = feeds
        self.symbol_limit = symbol_limit
        self.auth_timeout = auth_timeout
        self.assets = assets or [
            ("AAPL", "Apple Inc. Common Stock", "us_equity", "NASDAQ"),
            ("MSFT", "Microsoft Corporation Common Stock", "us_equity", "NASDAQ"),
            ("BRK.B", "Berkshire Hathaway Inc. Class B", "us_equity", "NYSE"),
            ("FAKEPACA", "Alpaca's test symbol", "us_equity", "NASDAQ"),
            ("BTC/USD", "Bitcoin / US Dollar", "crypto", "CRYPTO"),
        ]
        self.sessions: list[Session] = []
        self.trades: list[FakeTrade] = []
        self.auth_messages: list[dict[str, Any]] = []
        self._trade_id = 96921
        self.routes = {
            "/v2/stocks/bars": self._stock_bars,
            "/v1beta3/crypto/us/bars": self._crypto_bars,
            "/v2/assets": self._assets,
        }

    # -- what tests look at -----------------------------------------------------------

    def subscribed(self, channel: str, endpoint: str | None = None) -> set[str]:
        out: set[str] = set()
        for session in self.sessions:
            if endpoint is None or session.endpoint == endpoint:
                out |= session.channels.get(channel, set())
        return out

    def authenticated(self) -> list[Session]:
        return [s for s in self.sessions if s.key is not None]

    # -- what tests make the vendor do ----------------------------------------------------

    async def trade(
        self, symbol: str, price: str, size: str = "100", *, at_ns: int | None = None
    ) -> FakeTrade:
        self._trade_id += 1
        trade = FakeTrade(symbol, price, size, at_ns or time.time_ns(), self._trade_id)
        self.trades.append(trade)
        if self.muted:
            return trade
        crypto = "/" in symbol
        msg = dict(CRYPTO_TRADE_EXAMPLE if crypto else TRADE_EXAMPLE)
        msg.update(S=symbol, p=number(price), s=number(size), t=rfc3339(trade.ns), i=trade.trade_id)
        await self._publish("trades", symbol, [msg])
        return trade

    async def quote(self, symbol: str, bid: str, ask: str, at_ns: int | None = None) -> None:
        msg = dict(QUOTE_EXAMPLE)
        msg.update(S=symbol, bp=number(bid), ap=number(ask), t=rfc3339(at_ns or time.time_ns()))
        if not self.muted:
            await self._publish("quotes", symbol, [msg])

    def bar_of(self, symbol: str, start_s: int, seconds: int) -> dict[str, Any] | None:
        trades = [
            t
            for t in self.trades
            if t.symbol == symbol and start_s <= t.ns // 10**9 < start_s + seconds
        ]
        if not trades:
            return None  # "bars are only generated when there are 'valid' trades"
        prices = [Decimal(t.price) for t in trades]
        volume = sum((Decimal(t.size) for t in trades), Decimal(0))
        vwap = sum((Decimal(t.price) * Decimal(t.size) for t in trades), Decimal(0)) / volume
        bar = dict(BAR_EXAMPLE)
        bar.update(
            S=symbol,
            o=number(trades[0].price),
            h=number(str(max(prices))),
            l=number(str(min(prices))),
            c=number(trades[-1].price),
            v=number(str(volume)),
            t=rfc3339(start_s * 10**9).replace(".000000000Z", "Z"),
            n=len(trades),
            vw=number(str(round(vwap, 6))),
        )
        return bar

    async def minute_bar(
        self, symbol: str, start_s: int, *, updated: bool = False
    ) -> dict[str, Any] | None:
        """The bar of the minute from this fake's trades ("b"; "u" when `updated`)."""
        bar = self.bar_of(symbol, start_s, 60)
        if bar is not None and not self.muted:
            if updated:
                bar["T"] = "u"
            await self._publish("updatedBars" if updated else "bars", symbol, [bar])
        return bar

    async def daily_bar(self, symbol: str, day_start_s: int) -> dict[str, Any] | None:
        """The day so far ("d"): its `v` is the day's cumulative volume."""
        bar = self.bar_of(symbol, day_start_s, 86400)
        if bar is None:
            return None
        daily = dict(DAILY_BAR_EXAMPLE)
        daily.update({k: bar[k] for k in ("S", "o", "h", "l", "c", "v")})
        daily["t"] = rfc3339(day_start_s * 10**9).replace(".000000000Z", "Z")
        if not self.muted:
            await self._publish("dailyBars", symbol, [daily])
        return daily

    async def status(self, symbol: str, sc: str, sm: str, rc: str, rm: str) -> None:
        msg = dict(STATUS_EXAMPLE)
        msg.update(S=symbol, sc=sc, sm=sm, rc=rc, rm=rm, t=rfc3339(time.time_ns()))
        await self._publish("statuses", symbol, [msg])

    async def error(self, code: int, *, close: bool = False) -> None:
        """Send an error frame to every authenticated session; `close` ends them too
        (407 slow client: "not guaranteed to arrive before you are disconnected")."""
        for session in list(self.authenticated()):
            await self.send(session.ws, [{"T": "error", "code": code, "msg": ERRORS[code]}])
            if close:
                with contextlib.suppress(Exception):
                    await session.ws.close(1008, ERRORS[code])

    async def _publish(self, channel: str, symbol: str, messages: list[dict[str, Any]]) -> None:
        for session in list(self.sessions):
            held = session.channels.get(channel, set())
            if symbol in held or "*" in held:
                await self.send(session.ws, messages)

    # -- the socket ------------------------------------------------------------------------

    def upgrade(self, path: str, headers: Headers) -> Response | None:
        if path.rstrip("/") in ("/v1beta3/crypto/us",) or path.startswith("/v2/"):
            return None
        return Response(404, "Not Found", Headers([]), b'{"message":"not found"}')

    async def session(self, ws: ServerConnection) -> None:
        path = ws.request.path.rstrip("/") if ws.request is not None else ""
        endpoint = "crypto" if path.endswith("/crypto/us") else path.rsplit("/", 1)[-1]
        session = Session(ws, endpoint)
        self.sessions.append(session)
        try:
            await self.send(ws, [{"T": "success", "msg": "connected"}])
            try:
                async with asyncio.timeout(self.auth_timeout):
                    first = await ws.recv()
            except TimeoutError:
                await self.send(ws, [{"T": "error", "code": 404, "msg": ERRORS[404]}])
                await ws.close(1008, ERRORS[404])
                return
            if not await self._auth(session, first):
                return
            async for raw in ws:
                await self._on_message(session, raw)
        except Exception:
            return
        finally:
            self.sessions.remove(session)

    async def _auth(self, session: Session, raw: str | bytes) -> bool:
        ws = session.ws
        try:
            message = json.loads(raw)
        except ValueError:
            await self.send(ws, [{"T": "error", "code": 400, "msg": ERRORS[400]}])
            return await self._auth(session, await ws.recv())
        self.received.append(message)
        if message.get("action") != "auth":
            await self.send(ws, [{"T": "error", "code": 401, "msg": ERRORS[401]}])
            return await self._auth(session, await ws.recv())
        self.auth_messages.append(message)
        key, secret = message.get("key"), message.get("secret")
        if self.keys.get(str(key)) != secret:
            await self.send(ws, [{"T": "error", "code": 402, "msg": ERRORS[402]}])
            await ws.close(1008, ERRORS[402])
            return False
        if session.endpoint != "crypto" and session.endpoint not in self.feeds:
            await self.send(ws, [{"T": "error", "code": 409, "msg": ERRORS[409]}])
            await ws.close(1008, ERRORS[409])
            return False
        if any(s.key == key and s.endpoint == session.endpoint for s in self.sessions):
            await self.send(ws, [{"T": "error", "code": 406, "msg": ERRORS[406]}])
            await ws.close(1008, ERRORS[406])
            return False
        session.key = str(key)
        await self.send(ws, [{"T": "success", "msg": "authenticated"}])
        return True

    async def _on_message(self, session: Session, raw: str | bytes) -> None:
        ws = session.ws
        try:
            message = json.loads(raw)
        except ValueError:
            await self.send(ws, [{"T": "error", "code": 400, "msg": ERRORS[400]}])
            return
        self.received.append(message)
        action = message.get("action")
        if action == "auth":
            await self.send(ws, [{"T": "error", "code": 403, "msg": ERRORS[403]}])
            return
        if action not in ("subscribe", "unsubscribe"):
            await self.send(ws, [{"T": "error", "code": 400, "msg": ERRORS[400]}])
            return
        allowed = CRYPTO_CHANNELS if session.crypto else STOCK_CHANNELS
        after = {c: set(session.channels.get(c, set())) for c in allowed}
        for channel, symbols in message.items():
            if channel == "action":
                continue
            if channel not in allowed or not isinstance(symbols, list):
                await self.send(ws, [{"T": "error", "code": 400, "msg": ERRORS[400]}])
                return
            if action == "subscribe":
                after[channel] |= set(symbols)
            else:
                after[channel] -= set(symbols)
        if self.symbol_limit is not None and any(
            len(after[c]) > self.symbol_limit for c in ("trades", "quotes")
        ):
            # "your symbol subscriptions are the same as they were before"
            await self.send(ws, [{"T": "error", "code": 405, "msg": ERRORS[405]}])
            return
        session.channels = after
        ack: dict[str, Any] = {"T": "subscription"}
        ack.update({c: sorted(after[c]) for c in allowed})
        await self.send(ws, [ack])

    # -- REST ------------------------------------------------------------------------------

    def _key_ok(self, headers: Headers) -> bool:
        return self.keys.get(headers.get("APCA-API-KEY-ID", "")) == headers.get(
            "APCA-API-SECRET-KEY"
        )

    def _bars(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        if not self._key_ok(headers):
            return 401, {"message": "unauthorized."}
        symbols = query.get("symbols", [""])[0].split(",")
        step = TIMEFRAME_S.get(query.get("timeframe", [""])[0])
        if step is None:
            return 400, {"message": "invalid timeframe"}
        start = _epoch(query["start"][0])
        end = _epoch(query["end"][0])
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol in symbols:
            rows = []
            buckets = sorted(
                {self._bucket(t.ns // 10**9, step) for t in self.trades if t.symbol == symbol}
            )
            for bucket in buckets:
                if not start <= bucket < end:
                    continue
                seconds = 86400 if step == 86400 else step
                bar = self.bar_of(
                    symbol, bucket, seconds if step != 86400 else self._day_length(bucket)
                )
                if bar is None:
                    continue
                rows.append({k: bar[k] for k in ("t", "o", "h", "l", "c", "v", "n", "vw")})
            if rows:
                bars[symbol] = rows
        return 200, {"bars": bars, "next_page_token": None}

    def _bucket(self, second: int, step: int) -> int:
        if step != 86400:
            return second // step * step
        day = datetime.fromtimestamp(second, NEW_YORK).date()
        return int(datetime(day.year, day.month, day.day, tzinfo=NEW_YORK).timestamp())

    def _day_length(self, start: int) -> int:
        return self._bucket(start + 90000, 86400) - start

    def _stock_bars(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        return self._bars(query, headers)

    def _crypto_bars(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        return self._bars(query, headers)

    def _assets(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        if not self._key_ok(headers):
            return 401, {"message": "unauthorized."}
        out = []
        for symbol, name, kind, exchange in self.assets:
            asset = dict(ASSET_EXAMPLE)
            asset.update(symbol=symbol, name=name, exchange=exchange, **{"class": kind})
            out.append(asset)
        return 200, out


def _epoch(text: str) -> int:
    return calendar.timegm(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").timetuple())
