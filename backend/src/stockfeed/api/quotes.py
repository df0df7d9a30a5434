"""REST: latest quotes from the cache (fresh, or last known marked stale)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, Query

from stockfeed.api.deps import api_error, authorized, services, ticker_list, ticker_param
from stockfeed.services import Services
from stockfeed.sources.base import UnknownTicker

router = APIRouter(prefix="/api", tags=["quotes"], dependencies=[Depends(authorized)])

# A ticker nobody watched yet: register interest and wait briefly for its first tick.
FIRST_QUOTE_WAIT = 3.0


def _present(update: dict[str, Any], fresh: bool) -> dict[str, Any]:
    if fresh:
        return update
    out = dict(update)
    out["stale"] = True
    ts = update.get("timestamp")
    if isinstance(ts, int | float):
        out["age_ms"] = max(0, round(time.time() * 1000 - ts))
    return out


async def _quote(svc: Services, ticker: str, wait: bool) -> dict[str, Any] | None:
    found = await svc.hub.latest_update(ticker)
    if found is None and wait and svc.source is not None:
        try:
            known = await svc.source.can_quote(ticker)
        except UnknownTicker:
            known = False
        if known is False:
            raise api_error(404, "unknown_ticker", f"the source cannot quote {ticker}")
        await svc.hub.want(ticker)
        deadline = time.monotonic() + FIRST_QUOTE_WAIT
        while found is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            found = await svc.hub.latest_update(ticker)
    if found is None:
        return None
    return _present(*found)


@router.get("/quotes/{ticker}", summary="Latest quote of one ticker")
async def get_quote(
    ticker: str = Depends(ticker_param), svc: Services = Depends(services)
) -> dict[str, Any]:
    quote = await _quote(svc, ticker, wait=True)
    if quote is None:
        raise api_error(404, "no_quote", f"no quote for {ticker} yet")
    return quote


@router.get("/quotes", summary="Latest quotes of several tickers")
async def get_quotes(
    tickers: str = Query(..., max_length=2000, description="Comma-separated, e.g. AAPL,MSFT"),
    svc: Services = Depends(services),
) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {}
    for ticker in ticker_list(tickers):
        out[ticker] = await _quote(svc, ticker, wait=False)
    return out


@router.get("/tickers", summary="The default watchlist and the tickers being streamed")
async def get_tickers(svc: Services = Depends(services)) -> dict[str, list[str]]:
    active = sorted(set(svc.hub.subscribers) | set(svc.hub.latest))
    return {"watchlist": list(svc.watchlist), "active": active}
