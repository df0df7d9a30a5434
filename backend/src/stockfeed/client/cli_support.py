"""What `stockfeed watch` and `stockfeed record` share: ticker arguments, the server's
default watchlist, and running an async command so that Ctrl-C is a clean exit."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from stockfeed.client.core import ws_url
from stockfeed.client.errors import describe
from stockfeed.tickers import InvalidTicker, normalize_ticker

DEFAULT_URL = "ws://127.0.0.1:8000"
TOKEN_ENV = "STOCKFEED_TOKEN"


class CommandError(Exception):
    """A failure to report as one line; `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_connection_args(parser: Any) -> None:
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"server to connect to (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"access token, when the server requires one (default: ${TOKEN_ENV})",
    )


def parse_tickers(values: Iterable[str]) -> list[str]:
    """Tickers from arguments (`AAPL MSFT` or `AAPL,MSFT`), validated and de-duplicated."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            try:
                ticker = normalize_ticker(part)
            except InvalidTicker as exc:
                raise CommandError(str(exc), code=2) from None
            if ticker not in out:
                out.append(ticker)
    return out


def check_url(url: str) -> str:
    try:
        return ws_url(url)
    except ValueError as exc:
        raise CommandError(str(exc), code=2) from None


WATCHLIST_TIMEOUT_S = 5.0


async def server_watchlist(url: str, token: str | None) -> list[str]:
    """The server's default watchlist (`GET /api/tickers`), for when no tickers are given."""
    parts = urlsplit(ws_url(url))
    scheme = "https" if parts.scheme == "wss" else "http"
    query = urlencode({"access_token": token}) if token else ""
    http_url = urlunsplit((scheme, parts.netloc, "/api/tickers", query, ""))

    def fetch() -> object:
        with urllib.request.urlopen(http_url, timeout=WATCHLIST_TIMEOUT_S) as response:
            return json.loads(response.read())

    try:
        body = await asyncio.to_thread(fetch)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None)
        reason = describe(reason if isinstance(reason, BaseException) else exc)
        raise CommandError(
            f"cannot get the watchlist from {scheme}://{parts.netloc}: {reason}; "
            "name the tickers to skip this"
        ) from None
    watchlist = body.get("watchlist") if isinstance(body, dict) else None
    if not isinstance(watchlist, list) or not watchlist:
        raise CommandError("the server sent no watchlist: name the tickers")
    return parse_tickers(str(t) for t in watchlist)


def run_command(name: str, main: Coroutine[Any, Any, int]) -> None:
    """Run `main`; Ctrl-C exits 0, a CommandError prints one line. Exits with its status."""
    try:
        code = asyncio.run(main)
    except KeyboardInterrupt:
        code = 0
    except CommandError as exc:
        print(f"stockfeed {name}: {exc}", file=sys.stderr)
        code = exc.code
    except BrokenPipeError:
        # `stockfeed watch --json | head`: the reader left; not an error.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    raise SystemExit(code)
