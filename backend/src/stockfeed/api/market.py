"""REST: market sessions, for clients that poll instead of holding a WebSocket.

`GET /api/market-status?tickers=AAPL,BTC-USD` answers, per ticker, the same object the
socket's `market_status` message carries (market, session, next open and close, and the
stale mark when the source is failing), so a polling dashboard can still say whether
the market is open.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from stockfeed.api.deps import authorized, services, ticker_list
from stockfeed.services import Services

router = APIRouter(prefix="/api", tags=["market"], dependencies=[Depends(authorized)])


@router.get("/market-status", summary="Market session of each ticker's market")
async def get_market_status(
    tickers: str = Query(..., max_length=2000, description="Comma-separated, e.g. AAPL,BTC-USD"),
    svc: Services = Depends(services),
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    stale_since = svc.hub.stale_since()
    for ticker in ticker_list(tickers):
        # The calendar is built at start-up (services.py), so this is a bisect, not I/O.
        out[ticker] = svc.clock.status(ticker).message(stale_since)
    return out
