"""REST: OHLCV history bars, cached per ticker and interval for one bar's time."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query

from stockfeed.api.deps import api_error, authorized, services, ticker_param
from stockfeed.models import Bar
from stockfeed.services import Services
from stockfeed.sources.base import (
    INTERVAL_SECONDS,
    SourceError,
    UnknownTicker,
    check_history_params,
)

router = APIRouter(prefix="/api", tags=["history"], dependencies=[Depends(authorized)])

_cache: dict[tuple[str, str, str, str], tuple[float, list[Bar]]] = {}
_CACHE_MAX = 2048


@router.get("/history/{ticker}", summary="OHLCV bars")
async def get_history(
    ticker: str = Depends(ticker_param),
    interval: str = Query("5m", description="1m | 5m | 15m | 1h | 1d"),
    range_: str = Query("1d", alias="range", description="1d | 5d | 1mo | 6mo | 1y"),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    problem = check_history_params(interval, range_)
    if problem is not None:
        raise api_error(422, "bad_request", problem)
    source = svc.source
    if source is None:
        raise api_error(503, "no_history", "this server relays only (source none): no history")
    key = (source.name, ticker, interval, range_)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        bars = hit[1]
    else:
        try:
            bars = await source.history(ticker, interval, range_)
        except UnknownTicker as exc:
            raise api_error(404, "unknown_ticker", str(exc) or f"unknown ticker {ticker}") from None
        except SourceError as exc:
            raise api_error(503, "source_unavailable", str(exc)) from None
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = (now + min(INTERVAL_SECONDS[interval], 3600), bars)
    return {"ticker": ticker, "interval": interval, "bars": [b.as_dict() for b in bars]}
