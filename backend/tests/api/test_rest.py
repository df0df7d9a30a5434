"""The REST API against a real server: quotes, history, tickers, health, errors."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.servers import StartServer

pytestmark = pytest.mark.process

SIM = ("--source", "sim", "--sim-tick-interval", "0.1")


def wait_quote(base: str, ticker: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/api/quotes/{ticker}", timeout=10)
        if r.status_code == 200:
            body: dict[str, Any] = r.json()
            return body
        time.sleep(0.1)
    raise AssertionError(f"no quote for {ticker}")


def test_quotes_history_tickers_health(start_server: StartServer, broker_url: str) -> None:
    server = start_server(*SIM, "--broker", broker_url, "--tickers", "AAPL,MSFT")
    base = server.base
    quote = wait_quote(base, "aapl")
    assert quote["type"] == "price_update" and quote["ticker"] == "AAPL"
    assert "stale" not in quote

    many = httpx.get(f"{base}/api/quotes", params={"tickers": "AAPL,msft"}).json()
    assert set(many) == {"AAPL", "MSFT"}
    assert many["AAPL"]["ticker"] == "AAPL"

    # A ticker off the watchlist is produced on demand for REST too.
    on_demand = wait_quote(base, "IBM")
    assert on_demand["ticker"] == "IBM"

    hist = httpx.get(f"{base}/api/history/AAPL", params={"interval": "5m", "range": "1d"}).json()
    assert hist["ticker"] == "AAPL" and hist["interval"] == "5m"
    bars = hist["bars"]
    # 1d: the current session (the test servers' simulator: today's UTC date, so far).
    assert 1 <= len(bars) <= 288
    assert len({b["time"] // 86400 for b in bars}) == 1
    assert set(bars[0]) == {"time", "open", "high", "low", "close", "volume"}
    assert all(b["time"] % 300 == 0 for b in bars)
    assert [b["time"] for b in bars] == sorted(b["time"] for b in bars)
    # A range longer than the interval has is served the longest it has (1m: 5d).
    long = httpx.get(f"{base}/api/history/AAPL", params={"interval": "1m", "range": "1y"})
    five_days = httpx.get(f"{base}/api/history/AAPL", params={"interval": "1m", "range": "5d"})
    assert long.status_code == 200 and 0 < len(long.json()["bars"]) <= 7200
    # The same bars, but for the one still forming (it moves between the two requests).
    forming = min(long.json()["bars"][-1]["time"], five_days.json()["bars"][-1]["time"])
    assert [b for b in long.json()["bars"] if b["time"] < forming] == [
        b for b in five_days.json()["bars"] if b["time"] < forming
    ]

    tickers = httpx.get(f"{base}/api/tickers").json()
    assert tickers["watchlist"] == ["AAPL", "MSFT"]

    health = server.health()
    assert health["status"] == "ok"
    assert health["source"]["requested"] == "sim"
    assert health["source"]["active"] == "sim"
    assert health["source"]["simulated"] is True
    assert health["source"]["stale"] is False
    assert isinstance(health["source"]["age_ms"], int)
    assert health["broker"]["state"] == "connected"
    assert health["updater"]["is_leader"] is True
    assert httpx.get(f"{base}/docs").status_code == 200
    assert "/api/quotes/{ticker}" in httpx.get(f"{base}/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/quotes/BAD$TICKER", 422, "invalid_ticker"),
        ("/api/quotes/" + "A" * 300, 422, "invalid_ticker"),
        ("/api/quotes?tickers=", 422, "bad_request"),
        ("/api/quotes?tickers=AAPL,%00", 422, "invalid_ticker"),
        ("/api/quotes?tickers=" + ",".join(["AAPL"] * 60), 422, "bad_request"),
        ("/api/quotes", 422, "bad_request"),
        ("/api/history/AAPL?interval=2m", 422, "bad_request"),
        ("/api/history/AAPL?range=10y", 422, "bad_request"),
        ("/api/history/%3Cscript%3E", 422, "invalid_ticker"),
        ("/api/nothing-here", 404, "not_found"),
    ],
)
def test_bad_requests_get_clear_json_errors(
    start_server: StartServer, path: str, status: int, code: str
) -> None:
    server = start_server(*SIM)
    r = httpx.get(server.base + path)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    # And the server is still fine.
    assert server.health()["status"] == "ok"


def test_relay_only_has_no_history_and_no_quote(start_server: StartServer) -> None:
    server = start_server("--source", "none")
    r = httpx.get(server.base + "/api/history/AAPL")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "no_history"
    r = httpx.get(server.base + "/api/quotes/AAPL")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "no_quote"


def test_replay_source_unknown_ticker_is_404(start_server: StartServer) -> None:
    server = start_server("--source", "replay", "--replay-file", _bundled_replay())
    assert wait_quote(server.base, "EA")["ticker"] == "EA"
    r = httpx.get(server.base + "/api/quotes/AAPL")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_ticker"
    r = httpx.get(server.base + "/api/history/AAPL")
    assert r.status_code == 404


def _bundled_replay() -> str:
    from importlib.resources import files

    return str(files("stockfeed") / "data" / "ea-15m.jsonl")
