"""Vendors' times and numbers read at the edge: nanoseconds kept, digits kept."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stockfeed.sources.wire_values import (
    BadValue,
    decimal,
    epoch_ns,
    loads,
    rfc3339_ns,
    to_float,
)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        # Alpaca's trade example (millisecond fraction) and quote example (nanoseconds).
        ("2021-02-22T15:51:44.208Z", 1614009104_208000000),
        ("2021-02-22T15:51:45.335689322Z", 1614009105_335689322),
        # Alpaca's crypto trade: nine digits.
        ("2024-03-12T10:27:48.858228144Z", 1710239268_858228144),
        # No fraction; an offset (Tiingo's style).
        ("2021-02-22T19:15:00Z", 1614021300_000000000),
        ("2019-01-30T13:33:45.594808294-05:00", 1548873225_594808294),
    ],
)
def test_rfc3339_keeps_nanoseconds(text: str, ns: int) -> None:
    assert rfc3339_ns(text) == ns


@pytest.mark.parametrize("text", ["", "yesterday", "2021-13-01T00:00:00Z", 1614009104, None])
def test_bad_times_are_refused(text: object) -> None:
    with pytest.raises(BadValue):
        rfc3339_ns(text)


def test_epochs_in_their_units() -> None:
    assert epoch_ns("1688998200", "s") == 1688998200 * 10**9  # Coinbase's candle `start`
    assert epoch_ns(1536036818784, "ms") == 1536036818784 * 10**6
    with pytest.raises(BadValue):
        epoch_ns(1.5, "s")
    with pytest.raises(BadValue):
        epoch_ns(True, "ms")


def test_numbers_stay_exact() -> None:
    frame = loads('{"p": 47.299, "s": 29.205707815, "i": 3447222699101865076}')
    assert frame["p"] == Decimal("47.299") and frame["s"] == Decimal("29.205707815")
    assert frame["i"] == 3447222699101865076  # integers stay integers
    assert decimal("21932.98") == Decimal("21932.98")
    assert to_float(Decimal("0.20269406")) == 0.20269406
    with pytest.raises(BadValue):
        decimal(47.299)  # a float lost its digits already: refused, not trusted
    with pytest.raises(BadValue):
        decimal("NaN")
    with pytest.raises(BadValue):
        decimal("12,5")
