"""Ticker validation: the one rule every entry point (WebSocket, REST, CLI) applies."""

from __future__ import annotations

import re

MAX_TICKER_LENGTH = 15
# The rule in either case, as a JSON Schema / OpenAPI `pattern`: what the REST API's
# document says of every ticker parameter (api/openapi.py), and what it checks.
TICKER_PATTERN = r"^[A-Za-z0-9.=^-]{1,15}$"
_TICKER = re.compile(TICKER_PATTERN)


class InvalidTicker(ValueError):
    """Raised with a message that can be shown to the user as is."""


def normalize_ticker(raw: object, *, exact: bool = False) -> str:
    """Upper-case and validate a ticker, or raise InvalidTicker with a clear message.
    Surrounding whitespace is dropped, unless `exact` (the REST API, whose document
    promises the pattern itself). The characters are checked before upper-casing, so
    that no other letter becomes a valid one (`ß` is not `SS`)."""
    if not isinstance(raw, str):
        raise InvalidTicker("ticker must be a string")
    ticker = raw if exact else raw.strip()
    if not _TICKER.fullmatch(ticker):
        shown = raw if len(raw) <= 32 else raw[:32] + "..."
        raise InvalidTicker(f"invalid ticker {shown!r}: use 1-15 characters of A-Z 0-9 . - = ^")
    return ticker.upper()


def asset_class(ticker: str) -> str:
    """Which trading calendar applies: crypto trades 24/7, FX five days, futures (`=F`)
    CME Globex hours, the rest XNYS."""
    if ticker.endswith("-USD") or ticker.endswith("-USDT") or ticker.endswith("-EUR"):
        return "crypto"
    if ticker.endswith("=X"):
        return "fx"
    if ticker.endswith("=F"):
        return "future"
    return "equity"
