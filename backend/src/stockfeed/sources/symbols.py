"""What an instrument is, and the bundled directory of real ones the simulator quotes.

`SymbolInfo` is one answer of `GET /api/symbols` (docs/protocol.md#symbols): symbol,
name, exchange, type, currency and `price_decimals` (how many decimals it quotes in).

`Directory.bundled()` reads `stockfeed/data/symbols.csv`: a few hundred real, well-known
instruments (large US equities, ETFs, indices, FX pairs, crypto, futures) with a typical
price and daily volume, which the simulator starts from. The simulator quotes only what
this directory lists, so it never makes up an instrument. `search` ranks matches the way
a symbol box is used: the exact symbol first, then symbols that start with the query,
then names that do, then names holding a word that does, then any other match; ties go
to the instrument listed first (the file is ordered roughly by how much it trades).
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from typing import Final, Literal, get_args

from stockfeed.tickers import InvalidTicker, normalize_ticker

InstrumentType = Literal["equity", "etf", "index", "crypto", "fx", "future"]
INSTRUMENT_TYPES: Final[tuple[str, ...]] = get_args(InstrumentType)

# Punctuation a user may type or leave out: `brk.b`, `brkb` and `BRK-B` are one symbol.
_PUNCTUATION = re.compile(r"[\s.\-=^/]+")


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    symbol: str
    name: str
    exchange: str
    type: str  # one of INSTRUMENT_TYPES
    currency: str | None
    price_decimals: int | None

    def as_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "name": self.name,
            "exchange": self.exchange,
            "type": self.type,
            "currency": self.currency,
            "price_decimals": self.price_decimals,
        }


@dataclass(frozen=True, slots=True)
class Listing:
    """A directory entry: the instrument, and what the simulator starts from."""

    info: SymbolInfo
    price: float  # a typical price level
    volume: int  # a typical day's volume (0: the market reports none, e.g. FX, indices)
    rank: int  # position in the file: smaller trades more


def _compact(text: str) -> str:
    return _PUNCTUATION.sub("", text).casefold()


class Directory:
    def __init__(self, listings: Iterable[Listing]) -> None:
        self._by_symbol: dict[str, Listing] = {}
        for listing in listings:
            self._by_symbol[listing.info.symbol] = listing
        # Precomputed search keys: (listing, compact symbol, name, name's words).
        self._keys = [
            (
                listing,
                _compact(listing.info.symbol),
                listing.info.name.casefold(),
                [w for w in re.split(r"[\s,()/]+", listing.info.name.casefold()) if w],
            )
            for listing in sorted(self._by_symbol.values(), key=lambda item: item.rank)
        ]

    @staticmethod
    @functools.cache
    def bundled() -> Directory:
        text = (files("stockfeed") / "data" / "symbols.csv").read_text(encoding="utf-8")
        return Directory(parse_csv(text))

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def get(self, symbol: str) -> Listing | None:
        return self._by_symbol.get(symbol)

    def symbols(self) -> list[str]:
        return [key[0].info.symbol for key in self._keys]

    def search(self, query: str, limit: int = 10) -> list[SymbolInfo]:
        """Instruments matching `query` (symbol or name, any case), best first."""
        text = query.strip().casefold()
        compact = _compact(query)
        if not text:
            return []
        found: list[tuple[int, int, Listing]] = []
        for listing, symbol, name, words in self._keys:
            if compact and symbol == compact:
                score = 0
            elif compact and symbol.startswith(compact):
                score = 1
            elif name.startswith(text):
                score = 2
            elif any(word.startswith(text) for word in words):
                score = 3
            elif text in name or (compact and compact in symbol):
                score = 4
            else:
                continue
            found.append((score, listing.rank, listing))
        found.sort(key=lambda item: (item[0], item[1]))
        return [listing.info for _, _, listing in found[:limit]]


def parse_csv(text: str) -> list[Listing]:
    """The directory file: `#` comment lines, a header, one instrument a row."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    listings: list[Listing] = []
    for rank, row in enumerate(csv.DictReader(io.StringIO("\n".join(lines)))):
        kind = row["type"]
        if kind not in INSTRUMENT_TYPES:
            raise ValueError(f"symbols.csv: {row['symbol']} has an unknown type {kind!r}")
        info = SymbolInfo(
            symbol=row["symbol"],
            name=row["name"],
            exchange=row["exchange"],
            type=kind,
            currency=row["currency"] or None,
            price_decimals=int(row["price_decimals"]),
        )
        listings.append(Listing(info, float(row["price"]), int(row["volume"] or 0), rank))
    return listings


# --- Yahoo's search answers ----------------------------------------------------------------

_YAHOO_TYPES: dict[str, str] = {
    "EQUITY": "equity",
    "ETF": "etf",
    "INDEX": "index",
    "CRYPTOCURRENCY": "crypto",
    "CURRENCY": "fx",
    "FUTURE": "future",
}
# Yahoo's codes of the US exchanges: their instruments quote in dollars.
_US_EXCHANGES = frozenset(
    {"NMS", "NGM", "NCM", "NAS", "NYQ", "NYS", "PCX", "ASE", "BTS", "PNK", "OQB", "OQX"}
    | {"SNP", "DJI", "NIM", "WCB", "CBO", "CME", "CBT", "NYM", "CMX"}
)


def _fx_currency(symbol: str) -> str | None:
    # `EURUSD=X` quotes in USD, `JPY=X` (USD/JPY) in JPY.
    pair = symbol.removesuffix("=X")
    return pair[-3:] if len(pair) in (3, 6) and pair.isalpha() else None


def symbol_from_yahoo(quote: object) -> SymbolInfo | None:
    """One entry of Yahoo's search answer (`quotes[]`) as a SymbolInfo, or None for what
    the contract has no type for (mutual funds, options...) or an invalid ticker."""
    if not isinstance(quote, dict):
        return None
    kind = _YAHOO_TYPES.get(str(quote.get("quoteType", "")).upper())
    try:
        symbol = normalize_ticker(quote.get("symbol"))
    except InvalidTicker:
        return None
    if kind is None:
        return None
    name = quote.get("longname") or quote.get("shortname") or symbol
    exchange = quote.get("exchDisp") or quote.get("exchange") or ""
    currency: str | None = None
    decimals: int | None = 2
    if kind == "fx":
        currency = _fx_currency(symbol)
        decimals = 3 if currency == "JPY" else 4
    elif kind == "crypto":
        currency = symbol.rsplit("-", 1)[-1] if "-" in symbol else None
        decimals = None  # from two to eight, by price: the quotes say (price_decimals)
    elif quote.get("exchange") in _US_EXCHANGES:
        currency = "USD"
    return SymbolInfo(symbol, str(name), str(exchange), kind, currency, decimals)
