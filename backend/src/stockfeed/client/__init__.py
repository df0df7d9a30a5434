"""The Python client of the stockfeed WebSocket API (see docs/protocol.md).

from stockfeed.client import PriceUpdate, StockfeedClient

async with StockfeedClient("ws://127.0.0.1:8000", tickers=["AAPL", "MSFT"]) as feed:
    async for msg in feed:
        if isinstance(msg, PriceUpdate):
            print(msg.ticker, msg.seq, msg.data.price)
"""

from stockfeed.client.backoff import Backoff
from stockfeed.client.core import RouteInfo, StockfeedClient, ws_url
from stockfeed.client.errors import AuthError, ConnectError, StockfeedError
from stockfeed.client.link import ConnectionState
from stockfeed.client.messages import (
    Bar,
    BarData,
    Bars,
    Conflated,
    ErrorMessage,
    Heartbeat,
    MarketStatus,
    Message,
    Pong,
    PriceData,
    PriceUpdate,
    ProtocolError,
    ServerShutdown,
    Snapshot,
    Subscribed,
    UnknownMessage,
    Unsubscribed,
    parse_message,
)

__all__ = [
    "AuthError",
    "Backoff",
    "Bar",
    "BarData",
    "Bars",
    "Conflated",
    "ConnectError",
    "ConnectionState",
    "ErrorMessage",
    "Heartbeat",
    "MarketStatus",
    "Message",
    "Pong",
    "PriceData",
    "PriceUpdate",
    "ProtocolError",
    "RouteInfo",
    "ServerShutdown",
    "Snapshot",
    "StockfeedClient",
    "StockfeedError",
    "Subscribed",
    "UnknownMessage",
    "Unsubscribed",
    "parse_message",
    "ws_url",
]
