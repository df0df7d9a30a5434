"""Least exposure on `/api/ws/health` and `/metrics`, over real sockets: with auth on,
counts for everyone and the watched tickers and host names only for the metrics token's
holder; both rate-limited per address; a flood of them costs one render a second."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.servers import Server, StartServer
from tests.wsutil import recv_until

pytestmark = pytest.mark.process

SECRET = "exposure-test-secret-" + "s" * 32
METRICS_TOKEN = "metrics-" + "m" * 24
ATTACKER = "127.0.0.2"  # not exempt by default
HOST = socket.gethostname()


def token(**claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "user", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def client(server: Server, ip: str = ATTACKER, bearer: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    transport = httpx.HTTPTransport(local_address=ip)
    return httpx.Client(transport=transport, base_url=server.base, headers=headers, timeout=10)


def families(text: str) -> dict[str, list[Any]]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


async def watch(server: Server) -> Any:
    ws = await connect(server.ws + "/ws", additional_headers={"Authorization": f"Bearer {token()}"})
    await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL", "MSFT"]}))
    await recv_until(ws, "subscribed")
    return ws


async def test_with_auth_on_only_the_metrics_token_sees_tickers_and_hosts(
    start_server: StartServer,
) -> None:
    server: Server = start_server(
        "--source",
        "sim",
        env={"STOCKFEED_AUTH_SECRET": SECRET, "STOCKFEED_METRICS_TOKEN": METRICS_TOKEN},
    )
    ws = await watch(server)
    try:
        for bearer in (None, token(), "not-the-metrics-token"):
            with client(server, bearer=bearer) as http:
                counts = http.get("/api/ws/health").json()
                exposition = http.get("/metrics").text
            assert counts["view"] == "counts" and counts["connections"] == 1
            assert "subscribers" not in counts
            assert counts["updater"] == {"is_leader": True, "leader_present": True}
            assert "leader" not in counts["source"] and "last_error" not in counts["source"]
            assert "last_error" not in counts["broker"]
            assert counts["status"] == "ok" and counts["source"]["active"] == "sim"
            text = json.dumps(counts)
            assert HOST not in text and "AAPL" not in text and "MSFT" not in text
            info = families(exposition)["stockfeed_info"][0]
            assert "process" not in info.labels and info.labels["source_active"] == "sim"
            assert "stockfeed_ticker_stale" not in families(exposition)
            assert HOST not in exposition
        with client(server, bearer=METRICS_TOKEN) as http:
            full = http.get("/api/ws/health").json()
            exposition = http.get("/metrics").text
        assert full["view"] == "full" and full["subscribers"] == {"AAPL": 1, "MSFT": 1}
        assert full["updater"]["this_process"].startswith(HOST + ":")
        assert full["updater"]["leader"] == full["updater"]["this_process"]
        assert full["source"]["leader"] == full["updater"]["this_process"]
        info = families(exposition)["stockfeed_info"][0]
        assert info.labels["process"] == full["updater"]["this_process"]
        assert "# HELP stockfeed_ticker_stale " in exposition
    finally:
        await ws.close()


async def test_a_metrics_token_alone_hides_the_details_too(start_server: StartServer) -> None:
    server: Server = start_server("--source", "sim", env={"STOCKFEED_METRICS_TOKEN": METRICS_TOKEN})
    ws = await connect(server.ws + "/ws")
    await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL"]}))
    await recv_until(ws, "subscribed")
    try:
        with client(server, ip="127.0.0.1") as http:
            assert http.get("/api/ws/health").json()["view"] == "counts"
        with client(server, ip="127.0.0.1", bearer=METRICS_TOKEN) as http:
            assert http.get("/api/ws/health").json()["subscribers"] == {"AAPL": 1}
    finally:
        await ws.close()


def test_health_and_metrics_are_rate_limited_per_address(start_server: StartServer) -> None:
    server: Server = start_server("--source", "sim", env={"STOCKFEED_STATUS_RATE": "0.01"})
    with client(server) as http:
        statuses = [http.get(path).status_code for path in ["/api/ws/health", "/metrics"] * 10]
        assert statuses == [200] * 20  # the burst: 20
        refused = http.get("/metrics")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "100"
        assert refused.json()["error"]["code"] == "rate_limited"
        assert http.get("/api/ws/health").status_code == 429
        assert http.get("/api/tickers").status_code == 200  # a budget of its own
    # Another address, and the exempt loopback peer, are not affected.
    with client(server, ip="127.0.0.3") as http:
        assert http.get("/api/ws/health").status_code == 200
    with client(server, ip="127.0.0.1") as http:
        for _ in range(30):
            assert http.get("/api/ws/health").status_code == 200
        exposition = http.get("/metrics").text
    assert ("stockfeed_status_rate_limited_total", 2.0) in [
        (s.name, s.value) for s in families(exposition)["stockfeed_status_rate_limited"]
    ]


async def test_a_flood_of_scrapes_costs_one_render_a_second(start_server: StartServer) -> None:
    server: Server = start_server(
        "--source", "sim", env={"STOCKFEED_STATUS_BURST": "1000", "STOCKFEED_STATUS_RATE": "1000"}
    )
    transport = httpx.AsyncHTTPTransport(
        local_address=ATTACKER, limits=httpx.Limits(max_connections=8)
    )
    started = time.monotonic()
    async with httpx.AsyncClient(transport=transport, base_url=server.base) as http:

        async def scrape(path: str) -> bytes:
            response = await http.get(path)
            assert response.status_code == 200
            return response.content

        bodies = await asyncio.gather(*(scrape(p) for p in ["/api/ws/health", "/metrics"] * 200))
    elapsed = time.monotonic() - started
    with client(server, ip="127.0.0.1") as local:  # exempt: a fresh render, not counted
        exposition = families(local.get("/metrics").text)
    renders = exposition["stockfeed_status_renders"][0].value
    reuses = exposition["stockfeed_status_render_reuses"][0].value
    # One render per second and endpoint at most (each body kept a second), the rest shared.
    assert 2 <= renders <= 2 * (elapsed + 1)
    assert renders + reuses == 400
    assert len({b for b in bodies[::2]}) <= renders  # health bodies: one per render
