"""The wire format, byte for byte."""

from __future__ import annotations

import json

import pytest

from stockfeed import protocol
from stockfeed.client.messages import PriceUpdate, parse_message
from stockfeed.models import Tick
from stockfeed.tickers import InvalidTicker, asset_class, normalize_ticker


def test_price_update_exact_bytes() -> None:
    tick = Tick(
        "AAPL",
        189.12,
        market_time=1764101234000,
        volume=123456,
        open=188.0,
        high=189.5,
        low=187.9,
        prev_close=187.92,
    )
    raw = protocol.price_update(tick, 1042, timestamp_ms=1764101234567.125)
    assert raw == (
        '{"type":"price_update","ticker":"AAPL","seq":1042,"timestamp":1764101234567.125,'
        '"data":{"price":189.12,"change":1.2,"change_percent":0.6386,"volume":123456,'
        '"open":188.0,"high":189.5,"low":187.9,"prev_close":187.92,'
        '"market_time":1764101234000}}'
    )


def test_missing_fields_are_null_never_invented() -> None:
    raw = protocol.price_update(Tick("X", 10.0), 1, timestamp_ms=1.0)
    data = json.loads(raw)["data"]
    assert data == {
        "price": 10.0,
        "change": None,
        "change_percent": None,
        "volume": None,
        "open": None,
        "high": None,
        "low": None,
        "prev_close": None,
        "market_time": None,
    }


def test_source_change_used_when_no_prev_close() -> None:
    raw = protocol.price_update(Tick("X", 10.0, change=-0.5, change_percent=-4.76), 1, 1.0)
    data = json.loads(raw)["data"]
    assert data["change"] == -0.5 and data["change_percent"] == -4.76


def test_snapshot_keeps_unknown_fields_and_order() -> None:
    _, seq, update = protocol.read_update(
        '{"type":"price_update","ticker":"A","seq":3,"timestamp":5,"data":{},"zz":1}'
    )
    assert seq == 3
    snap = protocol.snapshot(update)
    assert snap == '{"type":"snapshot","ticker":"A","seq":3,"timestamp":5,"data":{},"zz":1}'
    stale = json.loads(protocol.snapshot(update, stale=True, gap=True))
    assert stale["stale"] is True and stale["gap"] is True and stale["age_ms"] > 0


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "nope",
        "[]",
        '{"type":"snapshot","ticker":"A","seq":1}',
        '{"type":"price_update"}',
        '{"type":"price_update","ticker":"A","seq":true}',
        b"\xff",
    ],
)
def test_read_update_rejects(raw: str | bytes) -> None:
    with pytest.raises(protocol.BadUpdate):
        protocol.read_update(raw)


def test_update_seq_reads_our_own_updates_without_parsing() -> None:
    raw = protocol.price_update(Tick("BRK.B", 10.0, prev_close=9.5), 123456789, 1.0).encode()
    assert protocol.update_seq(raw, "BRK.B") == 123456789
    assert protocol.read_update(raw)[1] == 123456789


@pytest.mark.parametrize(
    ("raw", "ticker"),
    [
        (b'{"type":"price_update","ticker":"A","seq":1,"data":{}}', "AA"),  # another ticker
        (b'{"type":"price_update","ticker":"AA","seq":1,"data":{}}', "A"),
        (b'{"type": "price_update", "ticker": "A", "seq": 1}', "A"),  # not compact: parse
        (b'{"ticker":"A","type":"price_update","seq":1}', "A"),  # another order: parse
        (b'{"type":"price_update","ticker":"A","seq":-1,"data":{}}', "A"),
        (b'{"type":"price_update","ticker":"A","seq":true,"data":{}}', "A"),
        (b'{"type":"price_update","ticker":"A","seq":1.5,"data":{}}', "A"),
        (b'{"type":"price_update","ticker":"A","seq":1}', "A"),  # no comma after seq
        (b'{"type":"price_update","ticker":"A","seq":1,"data":{', "A"),  # cut short
        (b'{"type":"price_update","ticker":"A","seq":' + b"9" * 19 + b',"x":1}', "A"),
    ],
)
def test_update_seq_leaves_anything_else_to_the_full_read(raw: bytes, ticker: str) -> None:
    assert protocol.update_seq(raw, ticker) is None


def test_control_messages() -> None:
    assert protocol.pong(7) == '{"type":"pong","id":7}'
    assert protocol.server_shutdown(2500) == '{"type":"server_shutdown","retry_after_ms":2500}'
    assert json.loads(protocol.error("invalid_ticker", "bad", "X")) == {
        "type": "error",
        "code": "invalid_ticker",
        "message": "bad",
        "ticker": "X",
    }
    assert set(json.loads(protocol.heartbeat())) == {"type", "timestamp"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("aapl", "AAPL"),
        (" brk.b ", "BRK.B"),
        ("^gspc", "^GSPC"),
        ("eurusd=x", "EURUSD=X"),
        ("BTC-USD", "BTC-USD"),
        ("A" * 15, "A" * 15),
    ],
)
def test_valid_tickers(raw: str, expected: str) -> None:
    assert normalize_ticker(raw) == expected


@pytest.mark.parametrize("raw", ["", "A" * 16, "AA PL", "A/B", "A;DROP", "ÅAPL", None, 5, "a\nb"])
def test_invalid_tickers(raw: object) -> None:
    with pytest.raises(InvalidTicker):
        normalize_ticker(raw)


def test_asset_classes() -> None:
    assert asset_class("AAPL") == "equity"
    assert asset_class("BTC-USD") == "crypto"
    assert asset_class("JPY=X") == "fx"


def test_provenance_and_rolling_volume_bytes() -> None:
    # v1.2: the updater's ticks say where they came from; a 24 h volume is its own field.
    tick = Tick(
        "BTC-USD",
        21932.98,
        market_time=1675974637167,
        volume_24h=16038.28770938,
        source="coinbase",
    )
    raw = protocol.price_update(tick, 7, timestamp_ms=1.0)
    assert raw.endswith(
        '"market_time":1675974637167,"volume_24h":16038.28770938,'
        '"source":"coinbase","feed":null,"delayed":0}}'
    )
    delayed = protocol.price_update(
        Tick("AAPL", 1.5, source="alpaca", feed="delayed_sip", delayed=900), 1, 1.0
    )
    assert json.loads(delayed)["data"]["delayed"] == 900
    snap = json.loads(protocol.snapshot(protocol.read_update(delayed)[2]))
    assert (snap["data"]["source"], snap["data"]["feed"]) == ("alpaca", "delayed_sip")


def test_session_true_figures_bytes_and_the_python_client_reads_them() -> None:
    # v1.2: after the close, change from the previous session's close, today's close apart.
    tick = Tick(
        "AAPL",
        255.26,
        market_time=1765233000000,
        prev_close=253.1,
        source="sim",
        session="post",
        regular_close=254.5,
    )
    raw = protocol.price_update(tick, 3, timestamp_ms=1.0)
    assert raw.endswith(
        '"prev_close":253.1,"market_time":1765233000000,"source":"sim","feed":null,'
        '"delayed":0,"session":"post","regular_close":254.5}}'
    )
    assert json.loads(raw)["data"]["change"] == 2.16
    parsed = parse_message(raw)
    assert isinstance(parsed, PriceUpdate)
    assert (parsed.data.session, parsed.data.regular_close) == ("post", 254.5)
    # Before the close there is no regular close; without sessions (crypto) no session.
    pre = json.loads(protocol.price_update(Tick("AAPL", 255.0, session="pre"), 1, 1.0))
    assert pre["data"]["session"] == "pre" and "regular_close" not in pre["data"]
    crypto = json.loads(protocol.price_update(Tick("BTC-USD", 1.0, source="coinbase"), 1, 1.0))
    assert "session" not in crypto["data"]
