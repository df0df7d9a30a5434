"""Shared bits of the routes: reaching the process's services, JSON errors, auth."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import HTTPException, Path, Query, Request
from starlette.requests import HTTPConnection

from stockfeed.admission.auth import (
    BEARER_CHALLENGE,
    QUERY_PARAM,
    Principal,
    Refusal,
    bearer_token,
    redact_query,
)
from stockfeed.admission.gate import Gate
from stockfeed.api.answer_cache import AnswerCaches
from stockfeed.api.openapi import MAX_TICKERS_PER_REQUEST, TICKER_DESCRIPTION, TICKER_SCHEMA
from stockfeed.protocol.codes import ErrorCode
from stockfeed.services import Services
from stockfeed.tickers import InvalidTicker, normalize_ticker


def services(conn: HTTPConnection) -> Services:
    svc: Services = conn.app.state.services
    return svc


def answer_cache(conn: HTTPConnection) -> AnswerCaches:
    """The process's REST answer caches, one per kind (api/answer_cache.py)."""
    return services(conn).answers


def process_gate(conn: HTTPConnection) -> Gate:
    """The process's gate (verifier, origin policy, IP limits), built on first use."""
    state = conn.app.state
    found: Gate | None = getattr(state, "gate", None)
    if found is None:
        found = state.gate = Gate(services(conn).settings)
    return found


def api_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> HTTPException:
    """An HTTPException whose body is `{"error": {"code", "message", ...}}`."""
    detail = {"code": code, "message": message, **extra}
    return HTTPException(status, detail=detail, headers=headers)


def ticker_list(tickers: str) -> list[str]:
    """A `tickers=A,B` query parameter, normalised, or the 422 the REST API answers: 1 to
    MAX_TICKERS_PER_REQUEST tickers, each exactly as the document's pattern says (no
    spaces, no empty items)."""
    if not tickers:
        raise api_error(422, ErrorCode.BAD_REQUEST, "tickers must name at least one ticker")
    names = tickers.split(",")
    if len(names) > MAX_TICKERS_PER_REQUEST:
        raise api_error(
            422, ErrorCode.BAD_REQUEST, f"at most {MAX_TICKERS_PER_REQUEST} tickers per request"
        )
    out: list[str] = []
    for name in names:
        try:
            out.append(normalize_ticker(name, exact=True))
        except InvalidTicker as exc:
            raise api_error(422, ErrorCode.INVALID_TICKER, str(exc)) from None
    return out


def ticker_list_param(tickers: Annotated[str, Query(include_in_schema=False)]) -> list[str]:
    """The `tickers` query parameter as a dependency; its route documents it with
    `openapi_extra=TICKERS_QUERY` (api/openapi.py)."""
    return ticker_list(tickers)


def ticker_param(
    ticker: Annotated[str, Path(description=TICKER_DESCRIPTION, json_schema_extra=TICKER_SCHEMA)],
) -> str:
    """A `{ticker}` path parameter, upper-cased, or 422 `invalid_ticker`. Checked here
    rather than by FastAPI so that the code is `invalid_ticker`; the document carries
    the same pattern and length (json_schema_extra)."""
    try:
        return normalize_ticker(ticker, exact=True)
    except InvalidTicker as exc:
        raise api_error(422, ErrorCode.INVALID_TICKER, str(exc)) from None


async def authorized(request: Request) -> Principal | None:
    """Router dependency of the REST API (not `/api/ws/health`, which load balancers
    probe): when auth is on, a valid token in `Authorization: Bearer` or the
    `access_token` query parameter, and the `tickers` claim covers the tickers named in
    the path or the `tickers` query parameter. 401/403 JSON errors otherwise. Async
    only so FastAPI runs it on the loop instead of a worker thread."""
    verifier = process_gate(request).verifier
    query = request.scope.get("query_string", b"")
    token: str | None = None
    if QUERY_PARAM.encode() in query:
        token = request.query_params.get(QUERY_PARAM)  # parsed (and cached) first, then
        # hidden: uvicorn's access log prints the query string when the response starts.
        request.scope["query_string"] = redact_query(query)
    authorization = request.headers.get("authorization")
    if authorization is not None:
        token = bearer_token(authorization)
    if verifier is None:
        return None
    try:
        if not token:
            raise Refusal(ErrorCode.UNAUTHORIZED, "missing token")
        principal = verifier.verify(token)
    except Refusal as exc:
        raise api_error(401, exc.code, exc.message, headers=BEARER_CHALLENGE) from None
    if principal.tickers is not None:
        named = [request.path_params.get("ticker")]
        named += (request.query_params.get("tickers") or "").split(",")
        for raw in named:
            if not isinstance(raw, str) or not raw.strip():
                continue
            try:
                ticker = normalize_ticker(raw.strip())
            except InvalidTicker:
                continue  # the route answers 422 for it
            if not principal.may(ticker):
                raise api_error(
                    403, ErrorCode.FORBIDDEN_TICKER, f"this token may not read {ticker}"
                )
    return principal


__all__ = [
    "MAX_TICKERS_PER_REQUEST",
    "Request",
    "answer_cache",
    "api_error",
    "authorized",
    "process_gate",
    "services",
    "ticker_list",
    "ticker_list_param",
    "ticker_param",
]
