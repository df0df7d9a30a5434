"""GET /api/market-status against a real server: per-ticker sessions, bad input, auth."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest

from tests.servers import StartServer

pytestmark = pytest.mark.process

SIM = ("--source", "sim", "--sim-tick-interval", "0.2")
SECRET = "market-" + "k" * 40  # long enough for HS256


def token(**claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "t", "iat": now, "exp": now + 600, **claims}, SECRET, "HS256")


# Real market hours (the test servers' simulator otherwise trades around the clock).
HOURS = {"STOCKFEED_SIM_MARKET_HOURS": "true"}


def test_sessions_per_ticker_and_bad_input(start_server: StartServer) -> None:
    server = start_server(*SIM, env=HOURS)
    url = f"{server.base}/api/market-status"
    body = httpx.get(url, params={"tickers": "aapl,btc-usd,EURUSD=X"}).json()
    assert list(body) == ["AAPL", "BTC-USD", "EURUSD=X"]
    markets = {t: s["market"] for t, s in body.items()}
    assert markets == {"AAPL": "XNYS", "BTC-USD": "CRYPTO", "EURUSD=X": "FX"}
    for status in body.values():
        # The same object as the socket's market_status message.
        assert status["type"] == "market_status"
        assert status["session"] in ("closed", "pre", "regular", "post")
        assert status["is_open"] is (status["session"] == "regular")
    assert body["BTC-USD"]["is_open"] is True and body["BTC-USD"]["next_open"] is None
    for moment in (body["AAPL"]["next_open"], body["AAPL"]["next_close"]):
        assert datetime.fromisoformat(moment).tzinfo is not None
        assert datetime.fromisoformat(moment) > datetime.now(UTC)

    def error(params: dict[str, str] | None) -> tuple[int, str]:
        r = httpx.get(url, params=params)
        return r.status_code, r.json()["error"]["code"]

    assert error(None) == (422, "bad_request")  # missing
    assert error({"tickers": ""}) == (422, "bad_request")  # names nothing
    # Exactly the document's pattern (openapi.json): no spaces, no empty items.
    assert error({"tickers": "AAPL, MSFT"}) == (422, "invalid_ticker")
    assert error({"tickers": "AAPL,,MSFT"}) == (422, "invalid_ticker")
    assert error({"tickers": "AAPL,<script>"}) == (422, "invalid_ticker")  # hostile
    assert error({"tickers": "A" * 16}) == (422, "invalid_ticker")
    assert error({"tickers": ",".join(f"T{i}" for i in range(51))}) == (422, "bad_request")
    assert error({"tickers": "A," * 1001}) == (422, "bad_request")  # 1,002 items
    assert error({"tickers": "AAPL\x00"}) == (422, "invalid_ticker")


def test_needs_a_token_when_auth_is_on(start_server: StartServer) -> None:
    server = start_server(*SIM, env={"STOCKFEED_AUTH_SECRET": SECRET, **HOURS})
    url = f"{server.base}/api/market-status"
    missing = httpx.get(url, params={"tickers": "AAPL"})
    assert missing.status_code == 401
    forged = httpx.get(
        url,
        params={"tickers": "AAPL"},
        headers={"Authorization": "Bearer " + jwt.encode({"sub": "x"}, "w" * 40, "HS256")},
    )
    assert forged.status_code == 401
    good = httpx.get(
        url, params={"tickers": "AAPL"}, headers={"Authorization": f"Bearer {token()}"}
    )
    assert good.status_code == 200 and good.json()["AAPL"]["market"] == "XNYS"
    narrow = httpx.get(
        url,
        params={"tickers": "AAPL,MSFT"},
        headers={"Authorization": f"Bearer {token(tickers=['AAPL'])}"},
    )
    assert narrow.status_code == 403
