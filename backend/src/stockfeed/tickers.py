"""Ticker validation: the one rule every entry point (WebSocket, REST, CLI) applies."""

from __future__ import annotations

import re

_TICKER = re.compile(r"^[A-Z0-9.\-=^]{1,15}$")


class InvalidTicker(ValueError):
    """Raised with a message that can be shown to the user as is."""


def normalize_ticker(raw: object) -> str:
    """Upper-case and validate a ticker, or raise InvalidTicker with a clear message."""
    if not isinstance(raw, str):
        raise InvalidTicker("ticker must be a string")
    ticker = raw.strip().upper()
    if not _TICKER.fullmatch(ticker):
        shown = raw if len(raw) <= 32 else raw[:32] + "..."
        raise InvalidTicker(f"invalid ticker {shown!r}: use 1-15 characters of A-Z 0-9 . - = ^")
    return ticker


def asset_class(ticker: str) -> str:
    """Which trading calendar applies: crypto trades 24/7, FX five days, the rest XNYS."""
    if ticker.endswith("-USD") or ticker.endswith("-USDT") or ticker.endswith("-EUR"):
        return "crypto"
    if ticker.endswith("=X"):
        return "fx"
    return "equity"
