"""What `/openapi.json` says beyond the routes' signatures, so that it is exact: a request
valid by the document is accepted, one invalid by it refused, and every answer is
described with its content type and body.

- `ErrorBody`: the one body of every refused request, `{"error":{"code","message"}}`
  (the app's handlers, the REST rate limit and the HTTP edges all write it).
- `error_responses(...)`: a route's documented error statuses, each with that body, plus
  `default` for the refusals any request can meet before a route runs (HTTP limits).
- `TICKER_SCHEMA`, `TICKERS_PARAMETER`: a ticker (tickers.py's rule, either case) and a
  comma-separated list of 1 to MAX_TICKERS_PER_REQUEST of them (`style: form`,
  `explode: false`: `?tickers=AAPL,MSFT`, as generated clients send an array).

A new route: `Depends(ticker_param)` for a `{ticker}` in its path,
`Depends(ticker_list_param)` with `openapi_extra=TICKERS_QUERY` for a `tickers` list,
and `responses=error_responses(...)` naming what it may answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from stockfeed.protocol.codes import ErrorCode
from stockfeed.tickers import MAX_TICKER_LENGTH, TICKER_PATTERN

MAX_TICKERS_PER_REQUEST = 50

TICKER_DESCRIPTION = (
    f"1 to {MAX_TICKER_LENGTH} characters of A-Z 0-9 . - = ^, case-insensitive "
    "(the server upper-cases it), e.g. AAPL, brk.b, ^GSPC, EURUSD=X, BTC-USD"
)

TICKER_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": TICKER_PATTERN,
    "minLength": 1,
    "maxLength": MAX_TICKER_LENGTH,
}

TICKERS_PARAMETER: dict[str, Any] = {
    "name": "tickers",
    "in": "query",
    "required": True,
    "style": "form",
    "explode": False,
    "description": (
        f"Comma-separated tickers, 1 to {MAX_TICKERS_PER_REQUEST}, e.g. AAPL,MSFT; "
        "each " + TICKER_DESCRIPTION
    ),
    "schema": {
        "type": "array",
        "items": TICKER_SCHEMA,
        "minItems": 1,
        "maxItems": MAX_TICKERS_PER_REQUEST,
    },
}

# `openapi_extra` of a route taking `Depends(ticker_list_param)` (its own `tickers`
# parameter is left out of the document: FastAPI cannot say `explode: false`).
TICKERS_QUERY: dict[str, Any] = {"parameters": [TICKERS_PARAMETER]}


class ErrorDetail(BaseModel):
    code: ErrorCode = Field(description="What went wrong, for programs (docs/protocol.md)")
    message: str = Field(description="What went wrong, for people")
    route: str | None = Field(
        None,
        description="`wrong_group` only: the key that routes to the ticker's group"
        " (`?route=KEY`, docs/scaling.md#ticker-groups)",
    )


class ErrorBody(BaseModel):
    """The body of every refused request."""

    error: ErrorDetail


_RETRY_AFTER = {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}

# Status -> (what it means, its headers). Each route names the ones it may answer.
_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    401: (
        "`unauthorized`: authentication is on and the token is missing or invalid",
        {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    ),
    403: ("`forbidden_ticker`: the token's `tickers` claim does not cover a ticker", {}),
    404: ("`unknown_ticker`: the source cannot quote the ticker", {}),
    421: (
        "`wrong_group`: this process is one ticker group of several and another serves the"
        " ticker; `route` names the key that reaches it (docs/scaling.md#ticker-groups)",
        {},
    ),
    422: ("`invalid_ticker` or `bad_request`: a parameter breaks this document", {}),
    429: (
        "`rate_limited`: past this client IP's REST request rate",
        {"Retry-After": {**_RETRY_AFTER, "required": True}},
    ),
    503: ("`upstream_busy` (with `Retry-After`)", {"Retry-After": _RETRY_AFTER}),
}

_DEFAULT = (
    "Refused before any route runs (docs/protocol.md#http-limits): 408 `request_timeout`, "
    "414 `uri_too_long`, 431 `headers_too_large`, 503 `server_busy`; 405 for another method"
)

# The errors of every `/api/*` route behind `authorized` and the REST rate limit.
API_ERRORS = (401, 429)


def error_responses(*statuses: int, **meaning: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route: each status with the error body (its meaning given as
    `s404="..."` replaces the generic one), plus `default` for the HTTP limits."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        text, headers = _ERRORS[status]
        entry: dict[str, Any] = {
            "model": ErrorBody,
            "description": meaning.get(f"s{status}", text),
        }
        if headers:
            entry["headers"] = headers
        out[status] = entry
    out["default"] = {"model": ErrorBody, "description": _DEFAULT}
    return out


__all__ = [
    "API_ERRORS",
    "MAX_TICKERS_PER_REQUEST",
    "TICKERS_PARAMETER",
    "TICKERS_QUERY",
    "TICKER_DESCRIPTION",
    "TICKER_SCHEMA",
    "ErrorBody",
    "ErrorDetail",
    "error_responses",
]
