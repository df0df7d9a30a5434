"""A fake Massive (formerly Polygon) stocks socket and its REST, as documented.

Sources (MCP = massive-com/client-python@481e5c270ea85e8eae5e96f8b9fda34e5e2a674a, read
2026-12; MKS = alpacahq/marketstore@98920929595e5c55da11e5cc90b8243767666a00:
contrib/polygon/streaming/client.go, a third-party client whose comment records the
server's status messages; DOCS = massive.com/docs/websocket/stocks/*.md):

- The connect status `{"ev":"status","status":"connected","message":"Connected
  Successfully"}` (MCP test_websocket/mock_server.py, MKS). MCP .massive/websocket.json's
  ConnectEvent example says `"status":"success"` instead: `connect_status` picks one, the
  plugin reads both.
- Auth `{"action":"auth","params":KEY}` answered `auth_success` / "authenticated" (MCP
  websocket.json AuthEvent example, DOCS); a bad key `auth_failed` / "authentication
  failed", no auth in time `auth_timeout` / "No authentication request received." (MKS).
  The close codes after them are not documented (1008 here).
- Subscribe and unsubscribe acks, one array per param: "subscribed to: T.MSFT" and
  "unsubscribed to: T.MSFT" (MCP websocket.json SubscribeEvent / UnsubscribeEvent
  examples, mock_server.py sends one per param).
- One connection per key ("Each account comes with access to one simultaneous WebSocket
  connection per cluster", massive.com knowledge base): a new one evicts the OLDER with
  `{"ev":"status","status":"max_connections","message":"Maximum number of connections
  exceeded."}` (MCP websocket.json DisconnectEvent example; the eviction of the older one
  as massive-com/client-python#860 and alpacahq/alpaca-trade-api-js#51 describe it).
- Data frames: MCP websocket.json's examples for /stocks/T, /stocks/Q, /stocks/A and
  /stocks/AM, verbatim but for the values of documented fields (sym, prices, sizes,
  times, ids, the aggregates' volumes).
- REST: /v2/aggs/ticker/{T}/range/... and /v1/open-close/{T}/{date} answer as MCP
  test_rest/mocks/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04.json and
  test_rest/mocks/v1/open-close/AAPL/2005-04-01&adjusted=true.json do; /v3/reference/
  tickers as test_rest/mocks/v3/reference/tickers.json (paged by `next_url`).

The fake serves the real-time feed at `/stocks` and the delayed one at `/delayed/stocks`
(Massive tells them apart by host name; one fake on one port tells them by path). The
delayed feed refuses quotes: the plan table of the quotes page has no delayed row.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from .base import FakeVendor

# MCP .massive/websocket.json, paths./stocks/T ... example (verbatim).
TRADE_EXAMPLE: dict[str, Any] = {
    "ev": "T",
    "sym": "MSFT",
    "x": 4,
    "i": "12345",
    "z": 3,
    "p": 114.125,
    "s": 100,
    "c": [0, 12],
    "t": 1536036818784,
    "q": 3681328,
}
# Same file, /stocks/Q (verbatim).
QUOTE_EXAMPLE: dict[str, Any] = {
    "ev": "Q",
    "sym": "MSFT",
    "bx": 4,
    "bp": 114.125,
    "bs": 100,
    "ax": 7,
    "ap": 114.128,
    "as": 160,
    "c": 0,
    "i": [604],
    "t": 1536036818784,
    "q": 50385480,
    "z": 3,
}
# Same file, /stocks/A (verbatim).
SECOND_AGG_EXAMPLE: dict[str, Any] = {
    "ev": "A",
    "sym": "SPCE",
    "v": 200,
    "av": 8642007,
    "op": 25.66,
    "vw": 25.3981,
    "o": 25.39,
    "c": 25.39,
    "h": 25.39,
    "l": 25.39,
    "a": 25.3714,
    "z": 50,
    "s": 1610144868000,
    "e": 1610144869000,
}
# Same file, /stocks/AM (verbatim).
MINUTE_AGG_EXAMPLE: dict[str, Any] = {
    "ev": "AM",
    "sym": "GTE",
    "v": 4110,
    "av": 9470157,
    "op": 0.4372,
    "vw": 0.4488,
    "o": 0.4488,
    "c": 0.4486,
    "h": 0.4489,
    "l": 0.4486,
    "a": 0.4352,
    "z": 685,
    "s": 1610144640000,
    "e": 1610144700000,
}
CONNECTED = {"ev": "status", "status": "connected", "message": "Connected Successfully"}
CONNECTED_SPEC = {"ev": "status", "status": "success", "message": "Connected Successfully"}
AUTH_SUCCESS = {"ev": "status", "status": "auth_success", "message": "authenticated"}
AUTH_FAILED = {"ev": "status", "status": "auth_failed", "message": "authentication failed"}
AUTH_TIMEOUT = {
    "ev": "status",
    "status": "auth_timeout",
    "message": "No authentication request received.",
}
MAX_CONNECTIONS = {
    "ev": "status",
    "status": "max_connections",
    "message": "Maximum number of connections exceeded.",
}
# MCP test_rest/mocks/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04.json: the
# envelope and a result's fields.
AGGS_ENVELOPE: dict[str, Any] = {
    "ticker": "AAPL",
    "queryCount": 2,
    "resultsCount": 2,
    "adjusted": True,
    "results": [],
    "status": "OK",
    "request_id": "12afda77aab3b1936c5fb6ef4241ae42",
    "count": 2,
}
AGG_RESULT: dict[str, Any] = {
    "v": 642646396.0,
    "vw": 1.469,
    "o": 1.5032,
    "c": 1.4604,
    "h": 1.5064,
    "l": 1.4489,
    "t": 1112331600000,
    "n": 82132,
}
# MCP test_rest/mocks/v1/open-close/AAPL/2005-04-01&adjusted=true.json (verbatim).
OPEN_CLOSE_EXAMPLE: dict[str, Any] = {
    "status": "OK",
    "from": "2021-04-01",
    "symbol": "AAPL",
    "open": 123.66,
    "high": 124.18,
    "low": 122.49,
    "close": 123,
    "volume": 75089134,
    "afterHours": 123,
    "preMarket": 123.45,
}
# MCP test_rest/mocks/v3/reference/tickers.json, one result (verbatim).
TICKER_EXAMPLE: dict[str, Any] = {
    "ticker": "A",
    "name": "Agilent Technologies Inc.",
    "market": "stocks",
    "locale": "us",
    "primary_exchange": "XNYS",
    "type": "CS",
    "active": True,
    "currency_name": "usd",
    "cik": "0001090872",
    "composite_figi": "BBG000C2V3D6",
    "share_class_figi": "BBG001SCTQY4",
    "last_updated_utc": "2022-04-27T00:00:00Z",
}
CHANNELS = ("T", "Q", "A", "AM")
SPAN_S = {"minute": 60, "hour": 3600, "day": 86400}
NEW_YORK = ZoneInfo("America/New_York")


def number(text: str) -> Any:
    """A JSON number with exactly these digits."""
    return json.loads(text)


def ny_day_start(second: int) -> int:
    day = datetime.fromtimestamp(second, NEW_YORK).date()
    return int(datetime(day.year, day.month, day.day, tzinfo=NEW_YORK).timestamp())


def ohlcv(trades: list[FakeTrade]) -> dict[str, Any]:
    """The aggregate fields of some trades (oldest first), as JSON numbers."""
    prices = [Decimal(t.price) for t in trades]
    volume = sum((Decimal(t.size) for t in trades), Decimal(0))
    vwap = sum((Decimal(t.price) * Decimal(t.size) for t in trades), Decimal(0)) / volume
    return {
        "v": number(str(volume)),
        "vw": number(str(round(vwap, 4))),
        "o": number(trades[0].price),
        "c": number(trades[-1].price),
        "h": number(str(max(prices))),
        "l": number(str(min(prices))),
    }


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
    feed: str  # "realtime" or "delayed"
    key: str | None = None
    params: set[str] = field(default_factory=set)  # "T.AAPL", ...


class FakeMassive(FakeVendor):
    def __init__(
        self,
        *,
        keys: tuple[str, ...] = ("MASSIVEKEY",),
        auth_timeout: float = 10.0,
        connect_status: Literal["connected", "success"] = "connected",
        tickers: list[tuple[str, str, str, str]] | None = None,
    ) -> None:
        """`tickers`: (symbol, name, type, primary exchange) for /v3/reference/tickers."""
        super().__init__()
        self.keys = keys
        self.auth_timeout = auth_timeout
        self.connect_status = connect_status
        self.tickers = tickers or [
            ("AAPL", "Apple Inc.", "CS", "XNAS"),
            ("MSFT", "Microsoft Corp", "CS", "XNAS"),
            ("BRK.B", "Berkshire Hathaway Inc. Class B", "CS", "XNYS"),
            ("SPY", "SPDR S&P 500 ETF Trust", "ETF", "ARCX"),
        ]
        self.sessions: list[Session] = []
        self.evicted = 0  # sessions closed by a newer one with the same key
        self.trades: list[FakeTrade] = []
        self.auth_messages: list[dict[str, Any]] = []
        self.rest_auth: list[str] = []  # Authorization headers of REST calls
        self._trade_id = 12345
        self._sequence = 3681328
        self.routes = {
            "/v2/aggs/ticker/": self._aggs,
            "/v1/open-close/": self._open_close,
            "/v3/reference/tickers": self._reference,
        }

    # -- what tests look at -----------------------------------------------------------

    def subscribed(self, channel: str = "T", feed: str | None = None) -> set[str]:
        out: set[str] = set()
        for session in self.sessions:
            if feed is None or session.feed == feed:
                out |= {p.split(".", 1)[1] for p in session.params if p.startswith(channel + ".")}
        return out

    def authenticated(self) -> list[Session]:
        return [s for s in self.sessions if s.key is not None]

    # -- what tests make the vendor do --------------------------------------------------

    async def trade(
        self, symbol: str, price: str, size: str = "100", *, at_ns: int | None = None
    ) -> FakeTrade:
        self._trade_id += 1
        self._sequence += 7  # "increasing and unique per ticker symbol, but ... not sequential"
        trade = FakeTrade(symbol, price, size, at_ns or time.time_ns(), self._trade_id)
        self.trades.append(trade)
        if not self.muted:
            msg = dict(TRADE_EXAMPLE)
            msg.update(
                sym=symbol,
                p=number(price),
                s=number(size),
                t=trade.ns // 1_000_000,
                i=str(trade.trade_id),
                q=self._sequence,
            )
            await self._publish("T", symbol, [msg])
        return trade

    async def quote(
        self, symbol: str, bid: str, bid_lots: int, ask: str, ask_lots: int, at_ns: int
    ) -> None:
        msg = dict(QUOTE_EXAMPLE)
        msg.update(
            sym=symbol,
            bp=number(bid),
            bs=bid_lots,
            ap=number(ask),
            **{"as": ask_lots},
            t=at_ns // 1_000_000,
        )
        if not self.muted:
            await self._publish("Q", symbol, [msg])

    def between(self, symbol: str, start_s: int, end_s: int) -> list[FakeTrade]:
        """This fake's trades of `symbol` in [start_s, end_s), oldest first."""
        return [t for t in self.trades if t.symbol == symbol and start_s <= t.ns // 10**9 < end_s]

    def aggregate(
        self, symbol: str, start_s: int, seconds: int, kind: str
    ) -> dict[str, Any] | None:
        """An A (seconds=1) or AM (seconds=60) message from this fake's trades: no trade in
        the window, no aggregate ("no bar is emitted")."""
        window = self.between(symbol, start_s, start_s + seconds)
        if not window:
            return None
        day_start = ny_day_start(start_s)
        today = self.between(symbol, day_start, start_s + seconds)
        day = ohlcv(today)
        # "Today's official opening price": the first trade at or after 09:30 New York,
        # else (before the open) the day's first trade stands in for it.
        regular = [t for t in today if t.ns // 10**9 >= day_start + 9 * 3600 + 1800]
        msg = copy.deepcopy(SECOND_AGG_EXAMPLE if kind == "A" else MINUTE_AGG_EXAMPLE)
        msg.update(ohlcv(window))
        msg.update(
            sym=symbol,
            av=day["v"],
            op=number((regular or today)[0].price),
            a=day["vw"],
            z=int(Decimal(str(msg["v"])) / len(window)),
            s=start_s * 1000,
            e=(start_s + seconds) * 1000,
        )
        return msg

    async def second_agg(self, symbol: str, start_s: int) -> dict[str, Any] | None:
        msg = self.aggregate(symbol, start_s, 1, "A")
        if msg is not None and not self.muted:
            await self._publish("A", symbol, [msg])
        return msg

    async def minute_agg(self, symbol: str, start_s: int) -> dict[str, Any] | None:
        msg = self.aggregate(symbol, start_s, 60, "AM")
        if msg is not None and not self.muted:
            await self._publish("AM", symbol, [msg])
        return msg

    async def status(self, status: dict[str, Any], *, close: int | None = None) -> None:
        """A status message to every authenticated session (then a close, if given)."""
        for session in list(self.authenticated()):
            await self.send(session.ws, [status])
            if close is not None:
                with contextlib.suppress(Exception):
                    await session.ws.close(close, str(status.get("message", "")))

    async def _publish(self, channel: str, symbol: str, messages: list[dict[str, Any]]) -> None:
        for session in list(self.sessions):
            if f"{channel}.{symbol}" in session.params or f"{channel}.*" in session.params:
                await self.send(session.ws, messages)

    # -- the socket ------------------------------------------------------------------------

    def upgrade(self, path: str, headers: Headers) -> Response | None:
        if path.rstrip("/") in ("/stocks", "/delayed/stocks"):
            return None
        return Response(404, "Not Found", Headers([]), b"not found")

    async def session(self, ws: ServerConnection) -> None:
        path = ws.request.path.rstrip("/") if ws.request is not None else ""
        session = Session(ws, "delayed" if path.startswith("/delayed") else "realtime")
        self.sessions.append(session)
        try:
            hello = CONNECTED if self.connect_status == "connected" else CONNECTED_SPEC
            await self.send(ws, [hello])
            try:
                async with asyncio.timeout(self.auth_timeout):
                    first = await ws.recv()
            except TimeoutError:
                await self.send(ws, [AUTH_TIMEOUT])
                await ws.close(1008, AUTH_TIMEOUT["message"])
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
        message = json.loads(raw)
        self.received.append(message)
        if message.get("action") != "auth":
            await self.send(session.ws, [AUTH_TIMEOUT])
            await session.ws.close(1008, AUTH_TIMEOUT["message"])
            return False
        self.auth_messages.append(message)
        key = str(message.get("params"))
        if key not in self.keys:
            await self.send(session.ws, [AUTH_FAILED])
            await session.ws.close(1008, AUTH_FAILED["message"])
            return False
        # One connection per key: the OLDER one goes.
        for older in [s for s in self.sessions if s.key == key and s is not session]:
            self.evicted += 1
            older.key = None
            await self.send(older.ws, [MAX_CONNECTIONS])
            with contextlib.suppress(Exception):
                await older.ws.close(1008, MAX_CONNECTIONS["message"])
        session.key = key
        await self.send(session.ws, [AUTH_SUCCESS])
        return True

    async def _on_message(self, session: Session, raw: str | bytes) -> None:
        message = json.loads(raw)
        self.received.append(message)
        action = message.get("action")
        params = [p.strip() for p in str(message.get("params", "")).split(",") if p.strip()]
        for param in params:
            channel = param.split(".", 1)[0]
            if action == "subscribe":
                if channel not in CHANNELS or (channel == "Q" and session.feed == "delayed"):
                    # SubscribeEvent's `error` status; its message text is not documented.
                    await self.send(
                        session.ws, [{"ev": "status", "status": "error", "message": param}]
                    )
                    continue
                session.params.add(param)
                await self.send(
                    session.ws,
                    [{"ev": "status", "status": "success", "message": f"subscribed to: {param}"}],
                )
            elif action == "unsubscribe":
                session.params.discard(param)
                await self.send(
                    session.ws,
                    [{"ev": "status", "status": "success", "message": f"unsubscribed to: {param}"}],
                )

    # -- REST ------------------------------------------------------------------------------

    def _authorised(self, headers: Headers) -> bool:
        value = headers.get("Authorization", "")
        self.rest_auth.append(value)
        return value.removeprefix("Bearer ") in self.keys

    def day_bar(self, symbol: str, day_start: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(the regular session's day aggregate, the open-close answer) of a New York day
        from this fake's trades: the close is the last trade before 16:00, the after-hours
        price the day's last trade."""
        day = self.between(symbol, day_start, day_start + 86400)
        if not day:
            return None
        open_at, close_at = day_start + 9 * 3600 + 1800, day_start + 16 * 3600
        regular = [t for t in day if open_at <= t.ns // 10**9 < close_at] or day
        agg = dict(AGG_RESULT)
        agg.update(ohlcv(regular), t=day_start * 1000, n=len(regular))
        pre = [t for t in day if t.ns // 10**9 < open_at]
        answer = dict(OPEN_CLOSE_EXAMPLE)
        answer.update(
            {
                "from": datetime.fromtimestamp(day_start, NEW_YORK).date().isoformat(),
                "symbol": symbol,
                "open": agg["o"],
                "high": agg["h"],
                "low": agg["l"],
                "close": agg["c"],
                "volume": agg["v"],
                "afterHours": number(day[-1].price),
                "preMarket": number(pre[-1].price if pre else regular[0].price),
            }
        )
        return agg, answer

    def _aggs(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        if not self._authorised(headers):
            return 401, {"status": "ERROR", "error": "Unknown API Key"}
        parts = query["path"][0].strip("/").split("/")
        # v2/aggs/ticker/{T}/range/{n}/{span}/{from}/{to}
        if len(parts) != 9 or parts[4] != "range" or parts[6] not in SPAN_S:
            return 400, {"status": "ERROR", "error": "bad request"}
        symbol, step = parts[3], int(parts[5]) * SPAN_S[parts[6]]
        if symbol not in {s for s, *_ in self.tickers}:
            return 404, {"status": "NOT_FOUND", "request_id": "x", "message": "ticker not found"}
        start, end = int(parts[7]) // 1000, int(parts[8]) // 1000
        seconds = {t.ns // 10**9 for t in self.trades if t.symbol == symbol}
        rows: list[dict[str, Any]] = []
        if step >= 86400:
            for day_start in sorted({ny_day_start(second) for second in seconds}):
                found = self.day_bar(symbol, day_start)
                if found is not None and start <= day_start + 86399 and day_start <= end:
                    rows.append(found[0])
        else:
            for bucket in sorted({second // step * step for second in seconds}):
                if start <= bucket <= end:
                    row = dict(AGG_RESULT)
                    window = self.between(symbol, bucket, bucket + step)
                    row.update(ohlcv(window), t=bucket * 1000, n=len(window))
                    rows.append(row)
        envelope = dict(AGGS_ENVELOPE)
        envelope.update(ticker=symbol, results=rows)
        envelope.update(queryCount=len(rows), resultsCount=len(rows), count=len(rows))
        return 200, envelope

    def _open_close(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        if not self._authorised(headers):
            return 401, {"status": "ERROR", "error": "Unknown API Key"}
        _, _, symbol, day = query["path"][0].strip("/").split("/")
        start = int(datetime.fromisoformat(day).replace(tzinfo=NEW_YORK).timestamp())
        found = self.day_bar(symbol, start)
        if found is None:
            return 404, {"status": "NOT_FOUND", "request_id": "x", "message": "Data not found."}
        return 200, found[1]

    def _reference(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        if not self._authorised(headers):
            return 401, {"status": "ERROR", "error": "Unknown API Key"}
        limit = int(query.get("limit", ["100"])[0])
        offset = int(query.get("cursor", ["0"])[0])
        rows = []
        for symbol, name, kind, exchange in self.tickers[offset : offset + limit]:
            row = dict(TICKER_EXAMPLE)
            row.update(ticker=symbol, name=name, type=kind, primary_exchange=exchange)
            rows.append(row)
        out: dict[str, Any] = {
            "results": rows,
            "status": "OK",
            "request_id": "37089bb3b4ef99a796cdc82ff971e447",
            "count": len(rows),
        }
        if offset + limit < len(self.tickers):
            cursor = f"cursor={offset + limit}&limit={limit}"
            out["next_url"] = f"{self.http_url}/v3/reference/tickers?{cursor}"
        return 200, out
