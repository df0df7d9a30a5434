"""The protocol's vocabulary in one place: message types, client actions, error codes,
market sessions and close codes, as docs/protocol.md and the AsyncAPI document define them.

Everything that names one of these (the server, the Python client, the fuzz tests) takes
it from here. The dashboard's TypeScript constants are generated from it
(protocol/typescript.py), and tests/protocol/test_vocabulary.py fails when they, the
AsyncAPI document or docs/protocol.md drift from these enums.
Close codes pair with the rule a client follows (centrifuge's disconnect.go does the
same): `CLOSE_RECONNECTS` lists those after which reconnecting is right.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class MessageType(StrEnum):
    """`type` of the messages a server sends."""

    PRICE_UPDATE = "price_update"
    SNAPSHOT = "snapshot"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    CONFLATED = "conflated"
    HEARTBEAT = "heartbeat"
    PONG = "pong"
    MARKET_STATUS = "market_status"
    SERVER_SHUTDOWN = "server_shutdown"
    ERROR = "error"
    BARS = "bars"  # protocol v1.1: candles, after a subscribe with `bars`
    BAR = "bar"


class ClientMessage(StrEnum):
    """What a client sends: `{"type": "ping"}` or `{"action": "subscribe" | ...}`."""

    PING = "ping"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


class ErrorCode(StrEnum):
    """`code` of an `error` message, and of the JSON error body of a refused request."""

    INVALID_TICKER = "invalid_ticker"
    UNKNOWN_TICKER = "unknown_ticker"
    BAD_MESSAGE = "bad_message"
    SUBSCRIPTION_LIMIT = "subscription_limit"
    NEW_TICKER_RATE = "new_ticker_rate"
    TICKER_LIMIT = "ticker_limit"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN_TICKER = "forbidden_ticker"
    # A ticker of another ticker group (ticker_groups.py): the error's `route` names the
    # key that reaches its group (`/ws?route=KEY`); REST answers 421.
    WRONG_GROUP = "wrong_group"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    HOST_NOT_ALLOWED = "host_not_allowed"  # HTTP 403, WebSocket handshakes included
    # REST only (HTTP status in docs/protocol.md#rest-api).
    BAD_REQUEST = "bad_request"
    NO_QUOTE = "no_quote"
    NO_HISTORY = "no_history"
    SOURCE_UNAVAILABLE = "source_unavailable"
    UPSTREAM_BUSY = "upstream_busy"
    NOT_FOUND = "not_found"
    HTTP_ERROR = "http_error"  # any other HTTP status without a code of its own
    # HTTP edges (docs/protocol.md#http-limits).
    REQUEST_TIMEOUT = "request_timeout"
    URI_TOO_LONG = "uri_too_long"
    HEADERS_TOO_LARGE = "headers_too_large"
    SERVER_BUSY = "server_busy"


class Session(StrEnum):
    """A market's session: `session` of `market_status`, and (v1.2) of the updates of
    instruments with sessions (`data.session`: the one the quote's time falls in)."""

    PRE = "pre"
    REGULAR = "regular"
    POST = "post"
    CLOSED = "closed"


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # shutdown: a `server_shutdown` with `retry_after_ms` comes first
    INVALID_DATA = 1007  # a text frame that is not UTF-8 (the WebSocket layer's)
    POLICY_VIOLATION = 1008  # the client flooded messages
    MESSAGE_TOO_BIG = 1009
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013  # ticker_limit on /ws/stocks/{ticker}
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    SLOW_CONSUMER = 4408
    TOO_MANY = 4429


# After these a client reconnects (with its backoff); after the others it should not
# retry unchanged (a bad request, a bad token, a forbidden ticker, a flood).
CLOSE_RECONNECTS = frozenset(
    {
        CloseCode.GOING_AWAY,
        CloseCode.SERVICE_RESTART,
        CloseCode.TRY_AGAIN_LATER,
        CloseCode.SLOW_CONSUMER,
        CloseCode.TOO_MANY,
    }
)
