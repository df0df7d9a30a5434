"""Shared bits of the routes: reaching the process's services, JSON errors."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

from stockfeed.services import Services
from stockfeed.tickers import InvalidTicker, normalize_ticker


def services(conn: HTTPConnection) -> Services:
    svc: Services = conn.app.state.services
    return svc


def api_error(status: int, code: str, message: str, **extra: Any) -> HTTPException:
    """An HTTPException whose body is `{"error": {"code", "message", ...}}`."""
    return HTTPException(status, detail={"code": code, "message": message, **extra})


def ticker_param(ticker: str) -> str:
    try:
        return normalize_ticker(ticker)
    except InvalidTicker as exc:
        raise api_error(422, "invalid_ticker", str(exc)) from None


__all__ = ["Request", "api_error", "services", "ticker_param"]
