"""A fake Coinbase Advanced Trade market-data socket and its public REST, as documented.

Frames are the documented examples with only documented fields' values changed (the
product, a price, a size, a time, a counter). Sources, read 2026-12 (quoted verbatim in
shared/research/vendor-sources.md §2, which cites them):

- ticker, market_trades, heartbeats: docs.cdp.coinbase.com/coinbase-app/advanced-trade-
  apis/websocket/websocket-channels. The heartbeat exists in two documented shapes: the
  prose page's (`client_id: ""`, `heartbeat_counter` a string) and the official AsyncAPI
  file's (docs.cdp.coinbase.com/api-reference/advanced-trade-api/advanced-trade-asyncapi.
  json: no `client_id`, the counter an integer, "verified against the production feed").
  `heartbeat_shape` picks one; the plugin must read both.
- market_trades' envelope: the channels page elides it (`…`); every message has the one
  envelope `{channel, client_id, timestamp, sequence_num, events}` (same page), copied
  here from the ticker example with `channel` set.
- subscriptions: not shown on the Advanced Trade pages; the shape is Coinbase Prime's
  documented one (docs.cdp.coinbase.com/prime/websocket-feed/overview: `{"channel":
  "subscriptions", "timestamp", "sequence_num", "events":[{"subscriptions":{...}}]}`),
  which third-party captures of Advanced Trade match (nautilus-coinbase test_data/
  ws_subscriptions.json). The plugin does not depend on it.
- error: `{"type":"error","message":...}` (docs.cdp.coinbase.com/exchange/websocket-feed/
  errors.md; "All messages have a type attribute", websocket-overview).
- "you are disconnected if no subscribe has been received within 5 seconds"
  (websocket-overview): enforced, with a close code the docs do not give (1000 here).
- REST: GET /api/v3/brokerage/market/products (list-public-products: the documented
  example's fields, `product_type` "SPOT" and `status` "online" in place of the example's
  placeholders) and .../market/products/{id}/candles (get-public-product-candles:
  `{"candles":[{"start","low","high","open","close","volume"}]}`, at most 350).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers

from .base import FakeVendor

# docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels
# (Ticker Channel), verbatim.
TICKER_EXAMPLE: dict[str, Any] = {
    "channel": "ticker",
    "client_id": "",
    "timestamp": "2023-02-09T20:30:37.167359596Z",
    "sequence_num": 0,
    "events": [
        {
            "type": "snapshot",
            "tickers": [
                {
                    "type": "ticker",
                    "product_id": "BTC-USD",
                    "price": "21932.98",
                    "volume_24_h": "16038.28770938",
                    "low_24_h": "21835.29",
                    "high_24_h": "23011.18",
                    "low_52_w": "15460",
                    "high_52_w": "48240",
                    "price_percent_chg_24_h": "-4.15775596190603",
                    "best_bid": "21931.98",
                    "best_bid_quantity": "8000.21",
                    "best_ask": "21933.98",
                    "best_ask_quantity": "8038.07770938",
                }
            ],
        }
    ],
}
# Same page (Market Trades Channel), the event verbatim; the envelope as above.
MARKET_TRADES_EVENT: dict[str, Any] = {
    "type": "snapshot",
    "trades": [
        {
            "trade_id": "000000000",
            "product_id": "ETH-USD",
            "price": "1260.01",
            "size": "0.3",
            "side": "BUY",
            "time": "2019-08-14T20:42:27.265Z",
        }
    ],
}
# Same page (Heartbeats Channel), verbatim: the prose shape.
HEARTBEAT_PROSE: dict[str, Any] = {
    "channel": "heartbeats",
    "client_id": "",
    "timestamp": "2023-06-23T20:31:26.122969572Z",
    "sequence_num": 0,
    "events": [
        {
            "current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
            "heartbeat_counter": "3049",
        }
    ],
}
# The AsyncAPI file's shape: no client_id, an integer counter.
HEARTBEAT_ASYNCAPI: dict[str, Any] = {
    "channel": "heartbeats",
    "timestamp": "2023-06-23T20:31:26.122969572Z",
    "sequence_num": 0,
    "events": [
        {
            "current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
            "heartbeat_counter": 3049,
        }
    ],
}
# list-public-products' documented example, the fields the plugin reads and a few more
# (its placeholders `<string>` / UNKNOWN_PRODUCT_TYPE replaced by documented values).
PRODUCT_EXAMPLE: dict[str, Any] = {
    "product_id": "BTC-USD",
    "price": "140.21",
    "price_percentage_change_24h": "9.43%",
    "volume_24h": "1908432",
    "base_increment": "0.00000001",
    "quote_increment": "0.00000001",
    "base_name": "Bitcoin",
    "quote_name": "US Dollar",
    "is_disabled": False,
    "status": "online",
    "trading_disabled": False,
    "product_type": "SPOT",
    "quote_currency_id": "USD",
    "base_currency_id": "BTC",
    "base_display_symbol": "BTC",
    "quote_display_symbol": "USD",
}
# get-public-product-candles' documented example candle.
CANDLE_EXAMPLE: dict[str, Any] = {
    "start": "1639508050",
    "low": "140.21",
    "high": "140.21",
    "open": "140.21",
    "close": "140.21",
    "volume": "56437345",
}
GRANULARITY_S = {
    "ONE_MINUTE": 60,
    "FIVE_MINUTE": 300,
    "FIFTEEN_MINUTE": 900,
    "ONE_HOUR": 3600,
    "ONE_DAY": 86400,
}


def rfc3339(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


@dataclass
class FakeTrade:
    product: str
    trade_id: str
    price: str
    size: str
    side: str
    ns: int


@dataclass
class _Client:
    ws: ServerConnection
    channels: dict[str, set[str]]
    subscribed_at: float | None = None


class FakeCoinbase(FakeVendor):
    def __init__(
        self,
        products: dict[str, tuple[str, str, str]] | None = None,
        *,
        heartbeat_interval: float = 1.0,
        heartbeat_shape: Literal["prose", "asyncapi"] = "prose",
        subscribe_deadline: float = 5.0,
    ) -> None:
        """`products`: product id -> (base name, quote id, quote increment)."""
        super().__init__()
        self.products = products or {
            "BTC-USD": ("Bitcoin", "USD", "0.01"),
            "ETH-USD": ("Ethereum", "USD", "0.01"),
            "SOL-USD": ("Solana", "USD", "0.01"),
        }
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_shape = heartbeat_shape
        self.subscribe_deadline = subscribe_deadline
        self.trades: list[FakeTrade] = []
        self.counter = 3049  # heartbeat_counter, as in the example
        self.clients: list[_Client] = []
        self._sequence = 0
        self._trade_id = 0
        self._market: asyncio.Task[None] | None = None
        self.routes = {
            "/api/v3/brokerage/market/products/": self._candles,
            "/api/v3/brokerage/market/products": self._products,
        }

    # -- what tests do -------------------------------------------------------------------

    def subscribed(self, channel: str = "market_trades") -> set[str]:
        out: set[str] = set()
        for client in self.clients:
            out |= client.channels.get(channel, set())
        return out

    async def trade(
        self,
        product: str,
        price: str,
        size: str = "0.3",
        *,
        at_ns: int | None = None,
        side: str = "BUY",
    ) -> FakeTrade:
        """One trade: kept (for candles) and sent to the subscribers of market_trades."""
        self._trade_id += 1
        trade = FakeTrade(
            product, f"{self._trade_id:09d}", price, size, side, at_ns or time.time_ns()
        )
        self.trades.append(trade)
        if not self.muted:
            await self._send_trades(product, [trade], "update")
            await self._send_ticker(product, "update")
        return trade

    async def send_error(self, message: str) -> None:
        for client in list(self.clients):
            await self.send(client.ws, {"type": "error", "message": message})

    def skip_heartbeats(self, count: int) -> None:
        """The next heartbeat's counter jumps by `count`: as if that many were lost."""
        self.counter += count

    def start_market(self, products: list[str], interval: float = 0.2) -> None:
        """A market that trades each product every `interval` seconds (a walk)."""
        self._market = asyncio.create_task(self._run_market(products, interval))

    async def stop_market(self) -> None:
        if self._market is not None:
            self._market.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._market

    async def _run_market(self, products: list[str], interval: float) -> None:
        step = 0
        base = {p: Decimal(1000 + 100 * i) for i, p in enumerate(products)}
        while True:
            step += 1
            for i, product in enumerate(products):
                move = Decimal((step * 7 + i * 3) % 11 - 5) / 100
                base[product] += move
                size = Decimal((step % 9) + 1) / 1000 + Decimal("0.00000001") * i
                await self.trade(
                    product, str(base[product]), str(size), side="SELL" if step % 2 else "BUY"
                )
            await asyncio.sleep(interval)

    # -- the socket ------------------------------------------------------------------------

    def _envelope(self, base: dict[str, Any], channel: str, events: list[Any]) -> dict[str, Any]:
        frame = copy.deepcopy(base)
        frame["channel"] = channel
        frame["timestamp"] = rfc3339(time.time_ns())
        frame["sequence_num"] = self._sequence
        self._sequence += 1
        frame["events"] = events
        return frame

    async def session(self, ws: ServerConnection) -> None:
        client = _Client(ws, {})
        self.clients.append(client)
        beats = asyncio.create_task(self._heartbeats(client))
        deadline = asyncio.get_running_loop().time() + self.subscribe_deadline
        try:
            while True:
                timeout = None
                if client.subscribed_at is None:
                    timeout = max(0.0, deadline - asyncio.get_running_loop().time())
                try:
                    async with asyncio.timeout(timeout):
                        raw = await ws.recv()
                except TimeoutError:
                    await ws.close(1000, "no subscribe within 5 seconds")
                    return
                message = json.loads(raw)
                self.received.append(message)
                await self._on_message(client, message)
        except Exception:
            return
        finally:
            beats.cancel()
            self.clients.remove(client)

    async def _on_message(self, client: _Client, message: dict[str, Any]) -> None:
        kind, channel = message.get("type"), message.get("channel")
        if kind not in ("subscribe", "unsubscribe") or not isinstance(channel, str):
            await self.send(client.ws, {"type": "error", "message": "Failed to subscribe"})
            return
        products = set(message.get("product_ids") or [])
        unknown = products - set(self.products)
        if unknown:
            await self.send(
                client.ws, {"type": "error", "message": f"Failed to subscribe: {sorted(unknown)}"}
            )
            return
        client.subscribed_at = client.subscribed_at or time.monotonic()
        held = client.channels.setdefault(channel, set())
        if kind == "subscribe":
            held |= products
        else:
            held -= products
        await self.send(
            client.ws,
            self._envelope(
                {"channel": "subscriptions", "timestamp": "", "sequence_num": 0, "events": []},
                "subscriptions",
                [
                    {
                        "subscriptions": {
                            c: sorted(p) if c != "heartbeats" else ["heartbeats"]
                            for c, p in client.channels.items()
                        }
                    }
                ],
            ),
        )
        if kind == "subscribe" and not self.muted:
            for product in sorted(products):
                if channel == "ticker":
                    await self._send_ticker(product, "snapshot", client)
                elif channel == "market_trades":
                    recent = [t for t in self.trades if t.product == product][-50:]
                    await self._send_trades(product, list(reversed(recent)), "snapshot", client)

    async def _heartbeats(self, client: _Client) -> None:
        shape = HEARTBEAT_PROSE if self.heartbeat_shape == "prose" else HEARTBEAT_ASYNCAPI
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if "heartbeats" not in client.channels:
                continue
            self.counter += 1
            event = dict(shape["events"][0])
            event["heartbeat_counter"] = (
                str(self.counter) if self.heartbeat_shape == "prose" else self.counter
            )
            event["current_time"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC")
            await self.send(client.ws, self._envelope(shape, "heartbeats", [event]))

    async def _send_trades(
        self, product: str, trades: list[FakeTrade], kind: str, only: _Client | None = None
    ) -> None:
        template = MARKET_TRADES_EVENT["trades"][0]
        rows = []
        for trade in trades:
            row = dict(template)
            row.update(
                trade_id=trade.trade_id,
                product_id=trade.product,
                price=trade.price,
                size=trade.size,
                side=trade.side,
                time=rfc3339(trade.ns),
            )
            rows.append(row)
        if not rows:
            return
        frame_events = [{"type": kind, "trades": rows}]
        for client in [only] if only else list(self.clients):
            if product in client.channels.get("market_trades", set()):
                await self.send(
                    client.ws, self._envelope(TICKER_EXAMPLE, "market_trades", frame_events)
                )

    async def _send_ticker(self, product: str, kind: str, only: _Client | None = None) -> None:
        last = next((t for t in reversed(self.trades) if t.product == product), None)
        if last is None:
            return
        day = [t for t in self.trades if t.product == product and t.ns > last.ns - 86400 * 10**9]
        volume = sum((Decimal(t.size) for t in day), Decimal(0))
        row = dict(TICKER_EXAMPLE["events"][0]["tickers"][0])
        price = Decimal(last.price)
        row.update(
            product_id=product,
            price=last.price,
            volume_24_h=str(volume),
            best_bid=str(price - Decimal("0.01")),
            best_ask=str(price + Decimal("0.01")),
        )
        for client in [only] if only else list(self.clients):
            if product in client.channels.get("ticker", set()):
                await self.send(
                    client.ws,
                    self._envelope(TICKER_EXAMPLE, "ticker", [{"type": kind, "tickers": [row]}]),
                )

    # -- REST ------------------------------------------------------------------------------

    def _products(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        products = []
        for product, (base_name, quote, increment) in self.products.items():
            row = dict(PRODUCT_EXAMPLE)
            row.update(
                product_id=product,
                base_name=base_name,
                quote_currency_id=quote,
                base_currency_id=product.split("-")[0],
                base_display_symbol=product.split("-")[0],
                quote_display_symbol=quote,
                quote_increment=increment,
            )
            products.append(row)
        return 200, {"products": products, "num_products": len(products)}

    def candles(
        self, product: str, granularity_s: int, start: int, end: int
    ) -> list[dict[str, Any]]:
        """Candles built from the trades this fake sent: newest first, as Coinbase lists."""
        buckets: dict[int, list[FakeTrade]] = {}
        for trade in self.trades:
            second = trade.ns // 10**9
            if trade.product == product and start <= second < end:
                buckets.setdefault(second // granularity_s * granularity_s, []).append(trade)
        out = []
        for bucket in sorted(buckets, reverse=True):
            trades = buckets[bucket]
            prices = [Decimal(t.price) for t in trades]
            row = dict(CANDLE_EXAMPLE)
            row.update(
                start=str(bucket),
                low=str(min(prices)),
                high=str(max(prices)),
                open=trades[0].price,
                close=trades[-1].price,
                volume=str(sum((Decimal(t.size) for t in trades), Decimal(0))),
            )
            out.append(row)
        return out

    def _candles(self, query: dict[str, list[str]], headers: Headers) -> tuple[int, Any]:
        path = query["path"][0]
        parts = path.rstrip("/").split("/")
        if len(parts) < 2 or parts[-1] != "candles":
            return 404, {"error": "NOT_FOUND", "message": "not found"}
        product = parts[-2]
        if product not in self.products:
            return 404, {"error": "NOT_FOUND", "message": "ProductID is invalid"}
        granularity = query.get("granularity", [""])[0]
        if granularity not in GRANULARITY_S:
            return 400, {"error": "INVALID_ARGUMENT", "message": "granularity"}
        start, end = int(query["start"][0]), int(query["end"][0])
        limit = int(query.get("limit", ["350"])[0])
        if limit > 350:
            return 400, {"error": "INVALID_ARGUMENT", "message": "limit is at most 350"}
        return 200, {
            "candles": self.candles(product, GRANULARITY_S[granularity], start, end)[:limit]
        }
