"""REST: the symbol directory, `GET /api/symbols?q=app` (docs/protocol.md#symbols).

Best match first: on the simulator, its bundled directory of real instruments (the only
ones it quotes); on yfinance, Yahoo's search, which costs an upstream call (inside the
process's upstream budget, sources/budget.py). Either way answers are kept as the
encoded body, per query (case and spacing folded) and limit, so a search box typing the
same letters does not reach the source twice within SEARCH_TTL; they are kept in a share
of the answer caches of their own (api/answer_cache.py, kind `symbols`), so a flood of
distinct searches evicts only searches, never history. `q` is checked before anything
runs: at most MAX_QUERY characters of letters, digits, spaces and the punctuation of
names and symbols (`. , & ' / = ^ ( ) + -`); anything else is 422 `bad_request`.
"""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from stockfeed.api.answer_cache import AnswerCaches, Fill
from stockfeed.api.deps import answer_cache, api_error, authorized, services
from stockfeed.api.openapi import API_ERRORS, error_responses
from stockfeed.protocol.codes import ErrorCode
from stockfeed.services import Services
from stockfeed.sources.base import Source, SourceError
from stockfeed.sources.budget import UpstreamBusy

router = APIRouter(prefix="/api", tags=["symbols"], dependencies=[Depends(authorized)])

MAX_QUERY = 64
QUERY_PATTERN = r"^[\w .,&'/=^()+-]+$"
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
# Symbols and names rarely change: an answer is reused for an hour.
SEARCH_TTL = 3600.0


class SymbolEntry(BaseModel):
    symbol: str = Field(description="The ticker to subscribe to, e.g. AAPL, EURUSD=X")
    name: str
    exchange: str = Field(description="Where it trades, e.g. NASDAQ, NYSE, CCY (FX), CCC")
    type: Literal["equity", "etf", "index", "crypto", "fx", "future"]
    currency: str | None = Field(description="Currency of its prices (null: not known)")
    price_decimals: int | None = Field(
        description="Decimals it quotes in (EUR/USD: 5, USD/JPY: 3; null: not known)"
    )


class SymbolsAnswer(BaseModel):
    symbols: list[SymbolEntry] = Field(description="Best match first")


def _encode(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


async def _load(source: Source, query: str, limit: int) -> Fill[bytes]:
    """One search; SourceError (UpstreamBusy included) propagates: not cached."""
    found = await source.search_symbols(query, limit)
    body = _encode({"symbols": [info.as_dict() for info in found[:limit]]})
    return Fill(body, len(body), SEARCH_TTL)


@router.get(
    "/symbols",
    summary="Find instruments by symbol or name",
    response_model=SymbolsAnswer,
    responses=error_responses(
        *API_ERRORS,
        422,
        503,
        s503="`source_unavailable` (a relay-only server, or the source failed) or "
        "`upstream_busy` (with `Retry-After`)",
    ),
)
async def get_symbols(
    q: str = Query(
        ...,
        min_length=1,
        max_length=MAX_QUERY,
        pattern=QUERY_PATTERN,
        description="Part of a symbol or a name, any case, e.g. app, EURUSD, s&p",
    ),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Most answers"),
    svc: Services = Depends(services),
    cache: AnswerCaches = Depends(answer_cache),
) -> Response:
    source = svc.source
    if source is None:
        raise api_error(
            503,
            ErrorCode.SOURCE_UNAVAILABLE,
            "this server relays only (source none): it has no symbol directory",
        )
    query = " ".join(q.split())
    if not query:
        return Response(_encode({"symbols": []}), media_type="application/json")
    key = ("symbols", source.name, query.casefold(), limit)
    try:
        body = await cache.get_or_load(key, lambda: _load(source, query, limit))
    except UpstreamBusy as exc:
        raise api_error(
            503, ErrorCode.UPSTREAM_BUSY, str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except SourceError as exc:
        raise api_error(503, ErrorCode.SOURCE_UNAVAILABLE, str(exc)) from None
    return Response(body, media_type="application/json")
