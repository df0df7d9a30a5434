"""REST: market sessions, for clients that poll instead of holding a WebSocket.

`GET /api/market-status?tickers=AAPL,BTC-USD` answers, per ticker, the same object the
socket's `market_status` message carries (market, session, next open and close, and the
stale mark when the source is failing), so a polling dashboard can still say whether
the market is open.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from stockfeed.api.deps import authorized, services, ticker_list_param
from stockfeed.api.openapi import API_ERRORS, TICKERS_QUERY, error_responses
from stockfeed.services import Services

router = APIRouter(prefix="/api", tags=["market"], dependencies=[Depends(authorized)])


@router.get(
    "/market-status",
    summary="Market session of each ticker's market",
    openapi_extra=TICKERS_QUERY,
    responses=error_responses(*API_ERRORS, 403, 422),
)
async def get_market_status(
    tickers: list[str] = Depends(ticker_list_param),
    svc: Services = Depends(services),
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    stale_since = svc.hub.updates.stale_since()
    for ticker in tickers:
        # The calendar is built at start-up (services.py), so this is a bisect, not I/O.
        # With the ticker's own stale mark when it went silent (fanout/liveness.py).
        out[ticker] = svc.hub.liveness.status(ticker, stale_since)
    return out
