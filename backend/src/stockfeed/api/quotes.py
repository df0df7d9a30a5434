"""REST: latest quotes from the cache (fresh, or last known marked stale)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends

from stockfeed.admission.auth import Principal
from stockfeed.api.deps import api_error, authorized, services, ticker_list_param, ticker_param
from stockfeed.api.openapi import API_ERRORS, TICKERS_QUERY, error_responses
from stockfeed.protocol.codes import ErrorCode
from stockfeed.services import Services
from stockfeed.sources.budget import UpstreamBusy

router = APIRouter(prefix="/api", tags=["quotes"], dependencies=[Depends(authorized)])

# A ticker nobody watched yet: the process holds it (within its ticker budget) and the
# request waits briefly for its first tick.
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
    found = await svc.hub.updates.latest_update(ticker)
    source = svc.source
    if found is None and wait and source is not None:
        try:
            known = await svc.can_quote(ticker)
        except UpstreamBusy as exc:
            raise api_error(
                503,
                ErrorCode.UPSTREAM_BUSY,
                str(exc),
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        if not known:
            raise api_error(404, ErrorCode.UNKNOWN_TICKER, f"the source cannot quote {ticker}")
        # Produced for this request like a ticker a client subscribed and left at once:
        # it counts in the process's ticker budget and lingers `linger_min`.
        if not await svc.hub.room.hold_unwatched(ticker):
            raise api_error(
                503,
                ErrorCode.TICKER_LIMIT,
                f"this server holds its maximum of {svc.hub.room.max_tickers} tickers: "
                "try again later",
                headers={"Retry-After": "10"},
            )
        deadline = time.monotonic() + FIRST_QUOTE_WAIT
        while found is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            found = await svc.hub.updates.latest_update(ticker)
    if found is None:
        return None
    update, fresh = found
    # Stale too when its market is open but it has been silent for longer than usual.
    return _present(update, fresh and not svc.hub.liveness.is_stale(ticker))


@router.get(
    "/quotes/{ticker}",
    summary="Latest quote of one ticker",
    responses=error_responses(
        *API_ERRORS,
        403,
        404,
        421,
        422,
        503,
        s404="`unknown_ticker`: the source cannot quote it; `no_quote`: none came in 3 s",
    ),
)
async def get_quote(
    ticker: str = Depends(ticker_param), svc: Services = Depends(services)
) -> dict[str, Any]:
    elsewhere = None if svc.group is None else svc.group.elsewhere(ticker)
    if elsewhere is not None:
        # Answering would make this process read another group's ticker.
        message, route = elsewhere
        raise api_error(421, ErrorCode.WRONG_GROUP, message, route=route)
    quote = await _quote(svc, ticker, wait=True)
    if quote is None:
        raise api_error(404, ErrorCode.NO_QUOTE, f"no quote for {ticker} yet")
    return quote


@router.get(
    "/quotes",
    summary="Latest quotes of several tickers",
    openapi_extra=TICKERS_QUERY,
    responses=error_responses(*API_ERRORS, 403, 422),
)
async def get_quotes(
    tickers: list[str] = Depends(ticker_list_param),
    svc: Services = Depends(services),
) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {}
    for ticker in tickers:
        out[ticker] = await _quote(svc, ticker, wait=False)
    return out


@router.get(
    "/tickers",
    summary="The default watchlist and the tickers being streamed",
    responses=error_responses(*API_ERRORS),
)
async def get_tickers(
    svc: Services = Depends(services), principal: Principal | None = Depends(authorized)
) -> dict[str, list[str]]:
    active = sorted(set(svc.hub.subscribers) | set(svc.hub.latest))
    watchlist = list(svc.watchlist)
    if principal is not None and principal.tickers is not None:
        # A token limited to some tickers learns of those only.
        active = [t for t in active if principal.may(t)]
        watchlist = [t for t in watchlist if principal.may(t)]
    return {"watchlist": watchlist, "active": active}
