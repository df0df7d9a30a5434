"""The symbol directory (bundled, the simulator's) and Yahoo's search, parsed and budgeted.

No recorded Yahoo search answer exists in the shared fixtures, so Yahoo's side runs on a
fake fetcher returning answers shaped like Yahoo's `/v1/finance/search` `quotes` (the
fields yfinance's `Search.quotes` passes through); nothing here reaches the network.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest

from stockfeed.sources.base import SourceError
from stockfeed.sources.budget import UpstreamBudget, UpstreamBusy
from stockfeed.sources.symbols import INSTRUMENT_TYPES, Directory, symbol_from_yahoo
from stockfeed.sources.yahoo import YahooSource
from stockfeed.tickers import normalize_ticker

DIRECTORY = Directory.bundled()


def symbols(query: str, limit: int = 10) -> list[str]:
    return [info.symbol for info in DIRECTORY.search(query, limit)]


def test_the_bundled_directory_is_real_well_known_and_complete() -> None:
    assert len(DIRECTORY) >= 300
    for needed in (
        "AAPL",
        "MSFT",
        "SPY",
        "QQQ",
        "^GSPC",
        "^DJI",
        "^IXIC",
        "EURUSD=X",
        "JPY=X",
        "BTC-USD",
        "ETH-USD",
        "ES=F",
        "GC=F",
        "BRK-B",
    ):
        assert needed in DIRECTORY, needed
    kinds = {DIRECTORY.get(s).info.type for s in DIRECTORY.symbols()}  # type: ignore[union-attr]
    assert kinds == set(INSTRUMENT_TYPES)
    for symbol in DIRECTORY.symbols():
        listing = DIRECTORY.get(symbol)
        assert listing is not None
        info = listing.info
        assert normalize_ticker(symbol) == symbol  # every one is a valid ticker as is
        assert info.name and info.exchange and info.currency
        assert info.price_decimals is not None and 0 <= info.price_decimals <= 6
        assert listing.price > 0 and listing.volume >= 0
    eurusd = DIRECTORY.get("EURUSD=X")
    assert eurusd is not None and eurusd.info.price_decimals == 5 and eurusd.info.type == "fx"
    assert eurusd.info.currency == "USD" and 0.9 < eurusd.price < 1.3
    assert DIRECTORY.get("JPY=X").info.price_decimals == 3  # type: ignore[union-attr]
    assert DIRECTORY.get("^GSPC").info.type == "index"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("AAPL", "AAPL"),
        ("aapl", "AAPL"),
        ("app", "AAPL"),  # a name that starts with it
        ("apple", "AAPL"),
        ("Microsoft", "MSFT"),
        ("eurusd", "EURUSD=X"),
        ("EUR/USD", "EURUSD=X"),
        ("brk.b", "BRK-B"),  # the punctuation a user may type or leave out
        ("btc", "BTC-USD"),
        ("bitcoin", "BTC-USD"),
        ("gspc", "^GSPC"),
        ("s&p 500", "^GSPC"),
        ("  nvidia  ", "NVDA"),
        ("gold", "GC=F"),  # "Gold Futures" starts with it; "SPDR Gold Shares" has a word
    ],
)
def test_search_puts_the_best_match_first(query: str, first: str) -> None:
    assert symbols(query)[0] == first


def test_search_ranks_exact_then_prefix_then_names_and_limits() -> None:
    found = symbols("MS", 50)
    assert found[0] == "MS"  # exact symbol first
    assert all(s.startswith("MS") for s in found[: found.index("MSTR") + 1])
    assert len(symbols("a", 5)) == 5
    assert symbols("", 10) == [] and symbols("   ", 10) == []
    assert symbols("zzzzqqq") == []


def test_search_is_a_list_of_contract_objects() -> None:
    (info,) = DIRECTORY.search("AAPL", 1)
    assert info.as_dict() == {
        "symbol": "AAPL",
        "name": "Apple Inc.",
        "exchange": "NASDAQ",
        "type": "equity",
        "currency": "USD",
        "price_decimals": 2,
    }


# --- Yahoo ---------------------------------------------------------------------------------

# Shaped like Yahoo's search answer (`quotes[]`), as yfinance's Search.quotes returns it.
YAHOO_QUOTES: list[dict[str, Any]] = [
    {
        "exchange": "NMS",
        "shortname": "Apple Inc.",
        "quoteType": "EQUITY",
        "symbol": "AAPL",
        "index": "quotes",
        "score": 29107.0,
        "typeDisp": "Equity",
        "longname": "Apple Inc.",
        "exchDisp": "NASDAQ",
        "sector": "Technology",
        "isYahooFinance": True,
    },
    {
        "exchange": "CCY",
        "shortname": "EUR/USD",
        "quoteType": "CURRENCY",
        "symbol": "EURUSD=X",
        "index": "quotes",
        "score": 20000.0,
        "typeDisp": "Currency",
        "exchDisp": "CCY",
        "isYahooFinance": True,
    },
    {
        "exchange": "CCY",
        "shortname": "USD/JPY",
        "quoteType": "CURRENCY",
        "symbol": "JPY=X",
        "exchDisp": "CCY",
        "isYahooFinance": True,
    },
    {
        "exchange": "CCC",
        "shortname": "Bitcoin USD",
        "quoteType": "CRYPTOCURRENCY",
        "symbol": "BTC-USD",
        "exchDisp": "CCC",
        "isYahooFinance": True,
    },
    {
        "exchange": "SNP",
        "shortname": "S&P 500",
        "quoteType": "INDEX",
        "symbol": "^GSPC",
        "exchDisp": "SNP",
        "isYahooFinance": True,
    },
    {
        "exchange": "LSE",
        "shortname": "VODAFONE GROUP PLC",
        "quoteType": "EQUITY",
        "symbol": "VOD.L",
        "exchDisp": "London",
        "isYahooFinance": True,
    },
    {
        "exchange": "CME",
        "shortname": "E-Mini S&P 500 Dec 26",
        "quoteType": "FUTURE",
        "symbol": "ES=F",
        "exchDisp": "Chicago Mercantile Exchange",
        "isYahooFinance": True,
    },
    # What the contract has no type for, and what is not a ticker, are left out.
    {
        "exchange": "NAS",
        "shortname": "Vanguard 500",
        "quoteType": "MUTUALFUND",
        "symbol": "VFIAX",
        "isYahooFinance": True,
    },
    {"exchange": "NMS", "quoteType": "EQUITY", "symbol": "BAD SYMBOL!"},
    {"exchange": "NMS", "quoteType": "EQUITY"},
    "not an object",
]


def test_yahoo_search_answers_become_contract_symbols() -> None:
    found = [symbol_from_yahoo(q) for q in YAHOO_QUOTES]
    kept = {info.symbol: info for info in found if info is not None}
    assert list(kept) == ["AAPL", "EURUSD=X", "JPY=X", "BTC-USD", "^GSPC", "VOD.L", "ES=F"]
    assert kept["AAPL"].as_dict() == {
        "symbol": "AAPL",
        "name": "Apple Inc.",
        "exchange": "NASDAQ",
        "type": "equity",
        "currency": "USD",
        "price_decimals": 2,
    }
    assert (kept["EURUSD=X"].type, kept["EURUSD=X"].currency) == ("fx", "USD")
    assert kept["EURUSD=X"].price_decimals == 4
    assert (kept["JPY=X"].currency, kept["JPY=X"].price_decimals) == ("JPY", 3)
    assert (kept["BTC-USD"].type, kept["BTC-USD"].currency) == ("crypto", "USD")
    assert kept["BTC-USD"].price_decimals is None  # by price: the quotes carry it
    assert (kept["^GSPC"].type, kept["^GSPC"].currency) == ("index", "USD")
    assert kept["VOD.L"].currency is None  # not a US exchange: not guessed
    assert kept["ES=F"].type == "future"


async def test_yahoo_search_goes_through_the_client_budget() -> None:
    calls: list[tuple[str, int]] = []

    def fetch(query: str, limit: int) -> list[dict[str, Any]]:
        calls.append((query, limit))
        return YAHOO_QUOTES

    budget = UpstreamBudget(calls_per_minute=6, burst=2)
    source = YahooSource(search_fetcher=fetch, client_budget=budget)
    try:
        found = await source.search_symbols("apple", 3)
        assert [i.symbol for i in found] == ["AAPL", "EURUSD=X", "JPY=X"]
        await source.search_symbols("msft", 10)
        with pytest.raises(UpstreamBusy) as refused:
            await source.search_symbols("tsla", 10)
        assert refused.value.retry_after == 10
        assert calls == [("apple", 3), ("msft", 10)] and budget.refused == 1
    finally:
        await source.close()


async def test_yahoo_search_failures_are_source_errors_never_crashes() -> None:
    def broken(query: str, limit: int) -> list[dict[str, Any]]:
        raise RuntimeError("Yahoo answered 500")

    source = YahooSource(search_fetcher=broken)
    try:
        with pytest.raises(SourceError, match="could not search Yahoo"):
            await source.search_symbols("apple", 5)
        # While Yahoo has us rate-limited, no call is made at all.
        source._rate_limited_until = asyncio.get_running_loop().time() + 30
        with pytest.raises(UpstreamBusy):
            await source.search_symbols("apple", 5)
    finally:
        await source.close()


async def test_a_hung_yahoo_search_does_not_hold_the_caller_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stockfeed.sources import yahoo

    release = threading.Event()

    def hung(query: str, limit: int) -> list[dict[str, Any]]:
        release.wait(10)
        return []

    monkeypatch.setattr(yahoo, "_SEARCH_TIMEOUT_S", 0.2)
    source = YahooSource(search_fetcher=hung)
    try:
        with pytest.raises(SourceError, match="in time"):
            await source.search_symbols("apple", 5)
    finally:
        release.set()
        await source.close()


def test_every_symbol_in_the_directory_is_searchable_by_itself() -> None:
    for symbol in DIRECTORY.symbols():
        assert symbols(symbol, 1) == [symbol], symbol
    assert all(re.fullmatch(r"[A-Z0-9.=^-]{1,15}", s) for s in DIRECTORY.symbols())
