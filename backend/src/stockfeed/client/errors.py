"""The client's errors, and the short reason given for a failed connection attempt."""

from __future__ import annotations

from websockets.exceptions import InvalidStatus


class StockfeedError(Exception):
    """Base of the client's errors; the message is meant for a user as is."""


class ConnectError(StockfeedError):
    """Could not connect (the first time, or not again within the allowed attempts)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message  # the short why, without the URL


class AuthError(StockfeedError):
    """The server refused the token (HTTP 401/403 or close 4401/4403): retrying won't help."""


def describe(exc: BaseException) -> str:
    """A short human reason for a failed connection attempt."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} from the server"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
