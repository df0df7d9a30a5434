"""Wire protocol v1: building and reading the JSON messages of the contract.

Server messages are compact JSON (no spaces), keys in the contract's order. A
`price_update` is encoded once by the updater; everything downstream relays those exact
bytes, so only the few fields the server needs (`type`, `ticker`, `seq`) are ever read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from stockfeed.models import Tick, now_ms

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def dumps(obj: object) -> str:
    return _dumps(obj)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def price_update(tick: Tick, seq: int, timestamp_ms: float | None = None) -> str:
    """Encode a tick as the contract's `price_update`; change fields come from prev_close."""
    change = tick.change
    change_percent = tick.change_percent
    if tick.prev_close is not None and tick.prev_close > 0:
        change = tick.price - tick.prev_close
        change_percent = change / tick.prev_close * 100.0
    # Prices in 5 decimals (EUR/USD) keep them in `change` and `prev_close`.
    digits = max(4, tick.price_decimals or 0)
    data: dict[str, object] = {
        "price": tick.price,
        "change": _round(change, digits),
        "change_percent": _round(change_percent, 4),
        "volume": tick.volume,
        "open": tick.open,
        "high": tick.high,
        "low": tick.low,
        "prev_close": _round(tick.prev_close, digits),
        "market_time": tick.market_time,
    }
    if tick.price_decimals is not None:
        # v1.1, additive: how many decimals the instrument quotes in (snapshots keep it).
        data["price_decimals"] = tick.price_decimals
    if tick.volume_24h is not None:
        # v1.2, additive: a rolling 24 h volume (Coinbase) is never the day's `volume`.
        data["volume_24h"] = tick.volume_24h
    if tick.source is not None:
        # v1.2, provenance: which source, which of its feeds, seconds behind real time.
        # The updater always sets it; a bare Tick (tests, tools) encodes as v1 did.
        data["source"] = tick.source
        data["feed"] = tick.feed
        data["delayed"] = tick.delayed if tick.delayed is not None else 0
    if tick.session is not None:
        # v1.2, session-true figures: the session the quote belongs to and, once the
        # trading day's regular session closed, its close (prev_close stays the close of
        # the session before: "At close 254.50 · After hours 255.26 +0.30 %").
        data["session"] = tick.session
        if tick.regular_close is not None:
            data["regular_close"] = _round(tick.regular_close, digits)
    ts = round(now_ms() if timestamp_ms is None else timestamp_ms, 3)
    return dumps(
        {"type": "price_update", "ticker": tick.ticker, "seq": seq, "timestamp": ts, "data": data}
    )


class BadUpdate(ValueError):
    """A message on `market:{T}` that does not follow the contract."""


_HEAD = b'{"type":"price_update","ticker":"'


def update_seq(payload: bytes, ticker: str) -> int | None:
    """The seq of a price_update of `ticker` as `price_update` above writes it (compact,
    type, ticker and seq first), read from its first bytes without parsing the rest;
    None when it does not start that way or does not end as an object does (then read
    it whole with read_update). What follows the seq is taken as our encoder wrote it:
    the relay's publishers are its updaters, and a full parse per message was the
    largest single cost of taking a message in."""
    return seq_after_head(payload, update_head(ticker))


def update_head(ticker: str) -> bytes:
    """What every price_update of `ticker` as written above starts with, up to its seq
    (a hub keeps it per ticker: `seq_after_head`)."""
    return _HEAD + ticker.encode() + b'","seq":'


def seq_after_head(payload: bytes, head: bytes) -> int | None:
    """`update_seq` with the ticker's `update_head` already built."""
    if not payload.startswith(head) or not payload.endswith(b"}"):
        return None
    start = len(head)
    end = payload.find(b",", start)
    digits = payload[start:end]
    if end < 0 or not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)


def read_update(raw: str | bytes) -> tuple[str, int, dict[str, Any]]:
    """Read `ticker` and `seq` of a relayed price_update; the object is returned for reuse."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadUpdate(f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("type") != "price_update":
        raise BadUpdate("not a price_update object")
    ticker = obj.get("ticker")
    seq = obj.get("seq")
    if not isinstance(ticker, str) or not isinstance(seq, int) or isinstance(seq, bool):
        raise BadUpdate("price_update needs a string ticker and an integer seq")
    return ticker, seq, obj


def snapshot(
    update: dict[str, Any], *, stale: bool = False, gap: bool = False, epoch: str | None = None
) -> str:
    """The cached price_update re-typed as `snapshot` (unknown fields kept, order kept)."""
    out = dict(update)
    out["type"] = "snapshot"
    if epoch is not None:
        out["epoch"] = epoch
    if stale:
        out["stale"] = True
        ts = update.get("timestamp")
        if isinstance(ts, int | float):
            out["age_ms"] = max(0, round(now_ms() - float(ts)))
    if gap:
        out["gap"] = True
    return dumps(out)


def error(code: str, message: str, ticker: str | None = None, route: str | None = None) -> str:
    obj: dict[str, object] = {"type": "error", "code": code, "message": message}
    if ticker is not None:
        obj["ticker"] = ticker
    if route is not None:
        obj["route"] = route  # wrong_group: the load balancer's key for the ticker's group
    return dumps(obj)


def subscribed(tickers: list[str], epochs: dict[str, str]) -> str:
    """Every ticker the connection holds now, with the epoch each resumes in."""
    return dumps({"type": "subscribed", "tickers": tickers, "epochs": epochs})


def unsubscribed(tickers: list[str]) -> str:
    """Every ticker the connection still holds."""
    return dumps({"type": "unsubscribed", "tickers": tickers})


def heartbeat() -> str:
    return dumps({"type": "heartbeat", "timestamp": round(now_ms(), 3)})


def pong(message_id: object) -> str:
    return dumps({"type": "pong", "id": message_id})


def server_shutdown(retry_after_ms: int) -> str:
    return dumps({"type": "server_shutdown", "retry_after_ms": retry_after_ms})


def bars(ticker: str, interval: str, seq: int, bar_texts: Iterable[str]) -> str:
    """`bars`: the recent bars (already encoded BAR objects), oldest first."""
    head = dumps({"type": "bars", "ticker": ticker, "interval": interval, "seq": seq})
    return head[:-1] + ',"bars":[' + ",".join(bar_texts) + "]}"


def bar(ticker: str, interval: str, seq: int, bar_text: str) -> str:
    """`bar`: one changed bar (an already encoded BAR object)."""
    head = dumps({"type": "bar", "ticker": ticker, "interval": interval, "seq": seq})
    return head[:-1] + ',"bar":' + bar_text + "}"
