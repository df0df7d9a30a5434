"""Typed server -> client messages of wire protocol v1 (docs/protocol.md), parsed from JSON.

Every message keeps its original text in `raw`, so a tool can pass on exactly what the
server sent. Parsing checks the types of the fields the client relies on and raises
`ProtocolError` otherwise; a message `type` this version does not know becomes an
`UnknownMessage` rather than an error, so a newer server does not break an older client.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stockfeed.protocol.codes import MessageType

__all__ = [
    "Bar",
    "BarData",
    "Bars",
    "Conflated",
    "ErrorMessage",
    "Heartbeat",
    "MarketStatus",
    "Message",
    "Pong",
    "PriceData",
    "PriceUpdate",
    "ProtocolError",
    "ServerShutdown",
    "Snapshot",
    "Subscribed",
    "UnknownMessage",
    "Unsubscribed",
    "parse_message",
]


class ProtocolError(ValueError):
    """A frame from the server that does not follow the protocol."""


def _raw() -> Any:
    # The original frame text: excluded from equality and repr (it repeats the fields).
    return field(default="", repr=False, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class PriceData:
    price: float
    change: float | None
    change_percent: float | None
    volume: int | float | None  # whole shares, or fractional coins (crypto)
    open: float | None
    high: float | None
    low: float | None
    prev_close: float | None
    market_time: int | None
    # v1.1: decimals the instrument quotes in (EUR/USD 5), when the source says.
    price_decimals: int | None = None
    # v1.2: a rolling 24 h volume (never the day's), and where the update came from.
    volume_24h: float | None = None
    source: str | None = None
    feed: str | None = None
    delayed: int | None = None
    # v1.2, instruments with sessions: the session the quote's time falls in (`prev_close`
    # is then the last regular close before its trading day) and, once the day's regular
    # session closed, that close.
    session: str | None = None
    regular_close: float | None = None


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    ticker: str
    seq: int
    timestamp: float  # epoch ms when the update was published
    data: PriceData
    raw: str = _raw()
    type: str = field(default="price_update", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The latest cached update. `gap` means updates were lost before it: history broken."""

    ticker: str
    seq: int
    timestamp: float
    data: PriceData
    epoch: str  # the ticker's seq space (docs/protocol.md#resume-and-epochs)
    stale: bool = False
    age_ms: int | None = None
    gap: bool = False
    raw: str = _raw()
    type: str = field(default="snapshot", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class MarketStatus:
    market: str
    is_open: bool
    session: str
    next_open: str | None
    next_close: str | None
    stale: bool = False
    last_good: float | None = None
    # v1.1: the ticker it is about; with `stale`, that ticker is silent while its market
    # is open (without a ticker, `stale` means the source is failing).
    ticker: str | None = None
    raw: str = _raw()
    type: str = field(default="market_status", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    timestamp: float
    raw: str = _raw()
    type: str = field(default="heartbeat", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Pong:
    id: int | float | str | None
    raw: str = _raw()
    type: str = field(default="pong", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Subscribed:
    tickers: tuple[str, ...]
    epochs: dict[str, str]
    raw: str = _raw()
    type: str = field(default="subscribed", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    tickers: tuple[str, ...]
    raw: str = _raw()
    type: str = field(default="unsubscribed", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Conflated:
    ticker: str
    dropped: int
    raw: str = _raw()
    type: str = field(default="conflated", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    retry_after_ms: int
    raw: str = _raw()
    type: str = field(default="server_shutdown", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    code: str
    message: str
    ticker: str | None = None
    # wrong_group: the key a load balancer routes to the ticker's group (`/ws?route=KEY`).
    route: str | None = None
    raw: str = _raw()
    type: str = field(default="error", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class BarData:
    """One candle: `time` is the bucket start (epoch s; a `1d` bar's is 00:00 UTC of the
    session's date), `volume` the volume traded in it (None when the source has none),
    `final` once it will not change any more."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: int | None
    final: bool


@dataclass(frozen=True, slots=True)
class Bars:
    """The recent bars of a ticker and interval as of `seq`, oldest first, ending with the
    forming one: sent after a subscribe with `bars`, and afresh after a gap."""

    ticker: str
    interval: str
    seq: int
    bars: tuple[BarData, ...]
    raw: str = _raw()
    type: str = field(default="bars", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class Bar:
    """A bar that changed; one with a `time` already seen replaces it."""

    ticker: str
    interval: str
    seq: int
    bar: BarData
    raw: str = _raw()
    type: str = field(default="bar", init=False, repr=False)


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message type this client version does not know; `fields` holds the object."""

    type: str
    fields: dict[str, Any]
    raw: str = _raw()


Message = (
    PriceUpdate
    | Snapshot
    | MarketStatus
    | Heartbeat
    | Pong
    | Subscribed
    | Unsubscribed
    | Conflated
    | ServerShutdown
    | ErrorMessage
    | Bars
    | Bar
    | UnknownMessage
)


# -- field readers: each names the field on error --------------------------------------


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{key} must be a string, got {value!r:.40}")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key)


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{key} must be an integer, got {value!r:.40}")
    return value


def _opt_int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _int(obj, key)


def _opt_volume(obj: dict[str, Any], key: str) -> int | float | None:
    value = obj.get(key)
    if isinstance(value, float) and not value.is_integer():
        return value  # a crypto volume: fractional coins
    return _opt_int(obj, key)


def _num(obj: dict[str, Any], key: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{key} must be a number, got {value!r:.40}")
    if not math.isfinite(value):
        raise ProtocolError(f"{key} must be finite")
    return float(value)


def _opt_num(obj: dict[str, Any], key: str) -> float | None:
    return None if obj.get(key) is None else _num(obj, key)


def _bool(obj: dict[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise ProtocolError(f"{key} must be true or false, got {value!r:.40}")
    return value


def _str_list(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(f"{key} must be a list of strings")
    return tuple(value)


def _data(obj: dict[str, Any]) -> PriceData:
    data = obj.get("data")
    if not isinstance(data, dict):
        raise ProtocolError("data must be an object")
    try:
        return PriceData(
            price=_num(data, "price"),
            change=_opt_num(data, "change"),
            change_percent=_opt_num(data, "change_percent"),
            volume=_opt_volume(data, "volume"),
            open=_opt_num(data, "open"),
            high=_opt_num(data, "high"),
            low=_opt_num(data, "low"),
            prev_close=_opt_num(data, "prev_close"),
            market_time=_opt_int(data, "market_time"),
            price_decimals=_opt_int(data, "price_decimals"),
            volume_24h=_opt_num(data, "volume_24h"),
            source=_opt_str(data, "source"),
            feed=_opt_str(data, "feed"),
            delayed=_opt_int(data, "delayed"),
            session=_opt_str(data, "session"),
            regular_close=_opt_num(data, "regular_close"),
        )
    except ProtocolError as exc:
        raise ProtocolError(f"data.{exc}") from None


def _price_update(obj: dict[str, Any], raw: str) -> PriceUpdate:
    return PriceUpdate(
        ticker=_str(obj, "ticker"),
        seq=_int(obj, "seq"),
        timestamp=_num(obj, "timestamp"),
        data=_data(obj),
        raw=raw,
    )


def _snapshot(obj: dict[str, Any], raw: str) -> Snapshot:
    return Snapshot(
        ticker=_str(obj, "ticker"),
        seq=_int(obj, "seq"),
        timestamp=_num(obj, "timestamp"),
        data=_data(obj),
        epoch=_str(obj, "epoch"),
        stale=_bool(obj, "stale"),
        age_ms=_opt_int(obj, "age_ms"),
        gap=_bool(obj, "gap"),
        raw=raw,
    )


def _market_status(obj: dict[str, Any], raw: str) -> MarketStatus:
    return MarketStatus(
        market=_str(obj, "market"),
        is_open=_bool(obj, "is_open"),
        session=_str(obj, "session"),
        next_open=_opt_str(obj, "next_open"),
        next_close=_opt_str(obj, "next_close"),
        stale=_bool(obj, "stale"),
        last_good=_opt_num(obj, "last_good"),
        ticker=_opt_str(obj, "ticker"),
        raw=raw,
    )


def _subscribed(obj: dict[str, Any], raw: str) -> Subscribed:
    epochs = obj.get("epochs", {})
    if not isinstance(epochs, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in epochs.items()
    ):
        raise ProtocolError("epochs must map tickers to strings")
    return Subscribed(tickers=_str_list(obj, "tickers"), epochs=dict(epochs), raw=raw)


def _bar_data(obj: object) -> BarData:
    if not isinstance(obj, dict):
        raise ProtocolError("a bar must be an object")
    final = obj.get("final")
    if not isinstance(final, bool):
        raise ProtocolError(f"bar.final must be true or false, got {final!r:.40}")
    try:
        return BarData(
            time=_int(obj, "time"),
            open=_num(obj, "open"),
            high=_num(obj, "high"),
            low=_num(obj, "low"),
            close=_num(obj, "close"),
            volume=_opt_int(obj, "volume"),
            final=final,
        )
    except ProtocolError as exc:
        raise ProtocolError(f"bar.{exc}") from None


def _bars(obj: dict[str, Any], raw: str) -> Bars:
    items = obj.get("bars")
    if not isinstance(items, list):
        raise ProtocolError("bars must be a list")
    return Bars(
        ticker=_str(obj, "ticker"),
        interval=_str(obj, "interval"),
        seq=_int(obj, "seq"),
        bars=tuple(_bar_data(item) for item in items),
        raw=raw,
    )


def _bar(obj: dict[str, Any], raw: str) -> Bar:
    return Bar(
        ticker=_str(obj, "ticker"),
        interval=_str(obj, "interval"),
        seq=_int(obj, "seq"),
        bar=_bar_data(obj.get("bar")),
        raw=raw,
    )


def _pong(obj: dict[str, Any], raw: str) -> Pong:
    value = obj.get("id")
    if isinstance(value, bool) or not isinstance(value, int | float | str | type(None)):
        raise ProtocolError(f"id must be a number, string or null, got {value!r:.40}")
    return Pong(id=value, raw=raw)


_PARSERS: dict[str, Callable[[dict[str, Any], str], Message]] = {
    MessageType.PRICE_UPDATE: _price_update,
    MessageType.SNAPSHOT: _snapshot,
    MessageType.MARKET_STATUS: _market_status,
    MessageType.HEARTBEAT: lambda o, r: Heartbeat(timestamp=_num(o, "timestamp"), raw=r),
    MessageType.PONG: _pong,
    MessageType.SUBSCRIBED: _subscribed,
    MessageType.UNSUBSCRIBED: lambda o, r: Unsubscribed(tickers=_str_list(o, "tickers"), raw=r),
    MessageType.CONFLATED: lambda o, r: Conflated(
        ticker=_str(o, "ticker"), dropped=_int(o, "dropped"), raw=r
    ),
    MessageType.SERVER_SHUTDOWN: lambda o, r: ServerShutdown(
        retry_after_ms=max(0, _int(o, "retry_after_ms")), raw=r
    ),
    MessageType.ERROR: lambda o, r: ErrorMessage(
        code=_str(o, "code"),
        message=_str(o, "message"),
        ticker=_opt_str(o, "ticker"),
        route=_opt_str(o, "route"),
        raw=r,
    ),
    MessageType.BARS: _bars,
    MessageType.BAR: _bar,
}


def parse_message(raw: str | bytes) -> Message:
    """One server frame as a typed message; ProtocolError when it breaks the protocol."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode()
        except UnicodeDecodeError:
            raise ProtocolError("frame is not UTF-8 text") from None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("frame is not a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("message has no string type")
    parser = _PARSERS.get(kind)
    if parser is None:
        return UnknownMessage(type=kind, fields=obj, raw=raw)
    try:
        message: Message = parser(obj, raw)
    except ProtocolError as exc:
        raise ProtocolError(f"{kind}: {exc}") from None
    return message
