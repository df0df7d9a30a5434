"""What can go wrong with a vendor, in the three classes that decide what happens next.

    VendorError
     ├── FatalConfig   a bad key, a plan without this feed, a URL that is not a stream:
     │                 retrying changes nothing. The connection stops, the source says so
     │                 (SourceState.fatal / .failed) and a chain fails its tickers over.
     ├── Capacity      too many symbols, a second connection for a one-connection key:
     │                 the plugin shrinks its set (naming the tickers left out) or waits
     │                 for its one connection; it never opens a second socket to get more.
     └── Transient     a slow-client close, an internal error, a 429, a dropped or cleanly
                       closed socket, a mute one: reconnect with capped, jittered backoff,
                       subscribe the whole wanted set again, report the gap.

A clean close (1000/1001) from the vendor is a Transient too: the official Coinbase and
Massive clients stop on it, and a feed that stops because its vendor restarted a server
is the failure this module exists to avoid.
"""

from __future__ import annotations


class VendorError(Exception):
    """`message` is shown in logs and health as it is: it never holds a key."""

    def __init__(self, message: str, *, tickers: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.message = message
        self.tickers = tickers  # the tickers concerned (Capacity: left out), if known


class FatalConfig(VendorError):
    pass


class Capacity(VendorError):
    pass


class Transient(VendorError):
    def __init__(
        self,
        message: str,
        *,
        tickers: frozenset[str] = frozenset(),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, tickers=tickers)
        self.retry_after = retry_after  # the vendor said when to come back (Retry-After)
