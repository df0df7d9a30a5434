"""REST: OHLCV history bars. The HTTP side only: parameters, errors and the body the
history service (stockfeed/bar_history.py: the store first, then the source, the live
bar book on top) answers with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from stockfeed.api.deps import api_error, authorized, services, ticker_param
from stockfeed.api.openapi import API_ERRORS, error_responses
from stockfeed.api.rest_limits import HISTORY_DEFAULT_INTERVAL, HISTORY_DEFAULT_RANGE
from stockfeed.bar_history import NoHistory, UnknownHistory
from stockfeed.protocol.codes import ErrorCode
from stockfeed.services import Services
from stockfeed.sources.base import INTERVAL_SECONDS, RANGE_DAYS, SourceError
from stockfeed.sources.budget import UpstreamBusy

router = APIRouter(prefix="/api", tags=["history"], dependencies=[Depends(authorized)])


@router.get(
    "/history/{ticker}",
    summary="OHLCV bars",
    response_model=dict[str, Any],
    responses=error_responses(
        *API_ERRORS,
        403,
        404,
        422,
        503,
        s503="`no_history` (relay-only server without a store), `source_unavailable`, or "
        "`upstream_busy` (with `Retry-After`)",
    ),
)
async def get_history(
    ticker: str = Depends(ticker_param),
    interval: str = Query(
        HISTORY_DEFAULT_INTERVAL,
        description="Bar width: 1m | 5m | 15m | 1h | 1d",
        json_schema_extra={"enum": list(INTERVAL_SECONDS)},
    ),
    range_: str = Query(
        HISTORY_DEFAULT_RANGE,
        alias="range",
        description="How far back: 1d | 5d | 1mo | 6mo | 1y. Without a store, a longer "
        "range than the source has for the interval is served the longest it has.",
        json_schema_extra={"enum": list(RANGE_DAYS)},
    ),
    svc: Services = Depends(services),
) -> Response:
    history = svc.history
    # Without a store a longer range than the interval has is served the longest it has
    # (the document cannot say which pairs go together, so every pair is accepted).
    range_ = history.served_range(interval, range_)
    problem = history.check(interval, range_)
    if problem is not None:
        raise api_error(422, ErrorCode.BAD_REQUEST, problem)
    try:
        body = await history.answer(ticker, interval, range_)
    except NoHistory as exc:
        raise api_error(503, ErrorCode.NO_HISTORY, str(exc)) from None
    except UnknownHistory as exc:
        raise api_error(404, ErrorCode.UNKNOWN_TICKER, str(exc)) from None
    except UpstreamBusy as exc:
        raise api_error(
            503, ErrorCode.UPSTREAM_BUSY, str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except SourceError as exc:
        raise api_error(503, ErrorCode.SOURCE_UNAVAILABLE, str(exc)) from None
    return Response(body, media_type="application/json")
