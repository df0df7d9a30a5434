"""REST: market sessions, for clients that poll instead of holding a WebSocket.

`GET /api/market-status?tickers=AAPL,BTC-USD` answers, per ticker, the same object the
socket's `market_status` message carries (market, session, next open and close, and the
stale mark when the source is failing), so a polling dashboard can still say whether
the market is open.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from stockfeed.api.deps import api_error, authorized, services
from stockfeed.api.quotes import MAX_TICKERS_PER_REQUEST
from stockfeed.services import Services
from stockfeed.tickers import InvalidTicker, normalize_ticker

router = APIRouter(prefix="/api", tags=["market"], dependencies=[Depends(authorized)])


@router.get("/market-status", summary="Market session of each ticker's market")
async def get_market_status(
    tickers: str = Query(..., max_length=2000, description="Comma-separated, e.g. AAPL,BTC-USD"),
    svc: Services = Depends(services),
) -> dict[str, dict[str, Any]]:
    names = [t for t in (p.strip() for p in tickers.split(",")) if t]
    if not names:
        raise api_error(422, "bad_request", "tickers must name at least one ticker")
    if len(names) > MAX_TICKERS_PER_REQUEST:
        raise api_error(
            422, "bad_request", f"at most {MAX_TICKERS_PER_REQUEST} tickers per request"
        )
    out: dict[str, dict[str, Any]] = {}
    stale_since = svc.hub.stale_since()
    for name in names:
        try:
            ticker = normalize_ticker(name)
        except InvalidTicker as exc:
            raise api_error(422, "invalid_ticker", str(exc)) from None
        # The calendar is built at start-up (services.py), so this is a bisect, not I/O.
        out[ticker] = svc.clock.status(ticker).message(stale_since)
    return out
