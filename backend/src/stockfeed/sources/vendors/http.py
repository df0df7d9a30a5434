"""Vendors' REST endpoints (history, symbol directories): blocking GETs for worker threads.

The standard library's client, on the threads of the source's client budget
(sources/budget.py) or `asyncio.to_thread`: a few calls a minute need no async client.
Answers are JSON read with exact decimals (wire_values.loads). Headers may hold keys:
they are sent, never logged, and an error's message names the URL's path only.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from stockfeed import __version__
from stockfeed.sources.wire_values import loads

USER_AGENT = f"stockfeed/{__version__}"
TIMEOUT_S = 10.0
MAX_BODY = 32 * 1024 * 1024  # the biggest answer read (a directory of every asset)


class HttpError(Exception):
    def __init__(self, status: int | None, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status = status  # None: no HTTP answer at all (network, timeout)
        self.retry_after = retry_after


def url_with(base: str, path: str, params: Mapping[str, object] | None = None) -> str:
    url = base.rstrip("/") + path
    query = {k: v for k, v in (params or {}).items() if v is not None}
    return url + ("?" + urllib.parse.urlencode(query) if query else "")


def get_json(url: str, headers: Mapping[str, str] | None = None, timeout: float = TIMEOUT_S) -> Any:
    """GET `url` and read its JSON body; HttpError with the status otherwise."""
    where = urllib.parse.urlsplit(url).path or "/"
    request = urllib.request.Request(
        url, headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        retry = exc.headers.get("Retry-After") if exc.headers else None
        raise HttpError(exc.code, f"{where} answered HTTP {exc.code}", _seconds(retry)) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpError(None, f"{where} could not be reached ({reason})") from None
    if len(body) > MAX_BODY:
        raise HttpError(None, f"{where} answered more than {MAX_BODY} bytes")
    try:
        return loads(body)
    except ValueError:
        raise HttpError(None, f"{where} did not answer JSON") from None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
