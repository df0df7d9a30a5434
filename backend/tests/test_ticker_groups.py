"""Ticker groups (ticker_groups.py): the setting, the hash, the route keys. That the hash
is nginx's is tested against nginx itself (tests/deploy/test_ticker_groups.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stockfeed.config import Settings
from stockfeed.ticker_groups import BadTickerGroup, TickerGroup, group_of, route_key


@pytest.mark.parametrize("text", ["", "1", "0/2", "3/2", "1/0", "a/b", "-1/2", "1/65", "1/2/3"])
def test_a_bad_group_is_refused_with_the_form_to_use(text: str) -> None:
    with pytest.raises(BadTickerGroup, match=r"K/N|1 <= K <= N"):
        TickerGroup.parse(text)


def test_the_setting_is_checked_at_start_and_unset_means_every_ticker() -> None:
    assert Settings().group is None
    assert Settings(ticker_group=" 2/3 ").group == TickerGroup(2, 3)
    assert Settings(ticker_group="").group is None
    with pytest.raises(ValidationError, match="ticker group '2/1'"):
        Settings(ticker_group="2/1")


@pytest.mark.parametrize("count", [1, 2, 3, 5, 16, 64])
def test_every_route_key_reaches_its_group_and_the_groups_split_the_tickers(count: int) -> None:
    for k in range(1, count + 1):
        key = route_key(k, count)
        assert group_of(key, count) == k and len(key) <= 32
    names = [f"T{i}" for i in range(4000)]
    spread = [sum(group_of(n, count) == k for n in names) for k in range(1, count + 1)]
    assert sum(spread) == len(names)
    # Roughly even: no group holds more than twice its share, none is empty.
    assert max(spread) < 2 * len(names) / count and min(spread) > 0


def test_a_process_serves_only_its_groups_tickers() -> None:
    one, two = TickerGroup(1, 2), TickerGroup(2, 2)
    for name in ("AAPL", "MSFT", "GOOG", "^GSPC", "BTC-USD", "EURUSD=X"):
        assert one.serves(name) != two.serves(name)
        other = one if two.serves(name) else two
        elsewhere = other.elsewhere(name)
        assert elsewhere is not None and elsewhere[1] == route_key(group_of(name, 2), 2)
    assert TickerGroup(1, 1).serves("AAPL") and TickerGroup(1, 1).elsewhere("AAPL") is None
