"""GET /metrics scraped from real servers while real clients connect, read and stall."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from stockfeed.app import create_app
from stockfeed.config import Settings
from tests.servers import RedisServer, StartServer, free_port
from tests.wsutil import contract_update, recv_until, recv_updates, slow_client, wait_subscribed

pytestmark = pytest.mark.process

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def scrape(server: Any, accept: str | None = None) -> Samples:
    headers = {"accept": accept} if accept else {}
    async with httpx.AsyncClient() as http:
        response = await http.get(server.base + "/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def scrape_until(
    server: Any, check: Callable[[Samples], bool], timeout: float = 20.0
) -> Samples:
    deadline = time.monotonic() + timeout
    samples: Samples = {}
    while time.monotonic() < deadline:
        samples = await scrape(server)
        if check(samples):
            return samples
        await asyncio.sleep(0.1)
    raise AssertionError(f"metrics never matched: {samples}")


async def test_connections_subscriptions_and_messages(start_server: StartServer) -> None:
    server = start_server("--source", "sim", "--sim-tick-interval", "0.05")
    idle = await scrape(server)
    assert value(idle, "stockfeed_connections") == 0
    assert value(idle, "stockfeed_subscriptions") == 0
    assert value(idle, "stockfeed_updater_leader") == 1
    assert value(idle, "stockfeed_broker_up") == 1
    assert value(idle, "stockfeed_broker_state", state="connected") == 1
    assert value(idle, "stockfeed_source_simulated") == 1
    assert value(idle, "stockfeed_source_stale") == 0
    assert value(idle, "stockfeed_source_last_tick_age_seconds") >= 0
    assert value(idle, "stockfeed_messages_published_total") > 0  # the updater runs
    info = [k for k in idle if k[0] == "stockfeed_info"]
    assert dict(info[0][1])["broker"] == "memory" and dict(info[0][1])["source_active"] == "sim"
    assert ("process_resident_memory_bytes", ()) in idle  # the standard process metrics

    async with connect(server.ws + "/ws") as ws:
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL", "MSFT"]}))
        await recv_until(ws, "subscribed")
        await recv_updates(ws, 3)
        busy = await scrape(server)
        assert value(busy, "stockfeed_connections") == 1
        assert value(busy, "stockfeed_connections_fast_path") == 1
        assert value(busy, "stockfeed_connections_opened_total") == 1
        assert value(busy, "stockfeed_subscriptions") == 2
        assert value(busy, "stockfeed_subscribed_tickers") == 2
        assert value(busy, "stockfeed_messages_sent_total", kind="snapshot") >= 1
        assert value(busy, "stockfeed_messages_sent_total", kind="market_status") == 2
        sent = value(busy, "stockfeed_messages_sent_total", kind="price_update")
        assert sent >= 3
        await recv_updates(ws, 5)
        later = await scrape(server)
        # Counted when handed to the connection: at least what the client has read (8).
        later_sent = value(later, "stockfeed_messages_sent_total", kind="price_update")
        assert later_sent >= 8 and later_sent > sent
        assert value(later, "stockfeed_updates_relayed_total") > value(
            busy, "stockfeed_updates_relayed_total"
        )
        await ws.send(json.dumps({"action": "unsubscribe", "tickers": ["MSFT"]}))
        await recv_until(ws, "unsubscribed")
        assert value(await scrape(server), "stockfeed_subscriptions") == 1
    gone = await scrape_until(server, lambda s: value(s, "stockfeed_connections") == 0)
    assert value(gone, "stockfeed_subscriptions") == 0
    assert value(gone, "stockfeed_connections_opened_total") == 1
    # The ticker is kept on the broker for resume after its last client left.
    assert value(gone, "stockfeed_broker_channels") == 2


async def test_openmetrics_and_hostile_requests(start_server: StartServer) -> None:
    server = start_server("--source", "sim")
    async with httpx.AsyncClient(base_url=server.base) as http:
        om = await http.get("/metrics", headers={"accept": "application/openmetrics-text"})
        assert om.status_code == 200
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n")
        for accept in [
            "application/openmetrics-text; version=abc",  # breaks prometheus_client's parser
            "text/plain; version=x.y",
            "text/plain; version=1.0.0; escaping=nonsense",
            "application/openmetrics-text;;;version=;",
            ", ".join(["*/*;q=0.1"] * 500),
        ]:
            response = await http.get("/metrics", headers={"accept": accept})
            assert response.status_code == 200, (accept, response.text)
            assert parse(response.text)[("stockfeed_connections", ())] == 0
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            refused = await http.request(method, "/metrics", content=b"{" * 50_000)
            assert refused.status_code == 405
            assert refused.json() == {
                "error": {"code": "http_error", "message": "Method Not Allowed"}
            }
        slash = await http.get("/metrics/")  # the app's usual trailing-slash redirect
        assert slash.status_code == 307 and slash.headers["location"].endswith("/metrics")
        for path in ("/metrics/x", "/metrics/../api", "/metrics%00", "/Metrics"):
            missing = await http.get(path)
            assert missing.status_code == 404, path
            assert missing.json()["error"]["code"] == "not_found"
        huge = await http.get("/metrics?" + "a=1&" * 2000)
        assert huge.status_code == 200
        schema = (await http.get("/openapi.json")).json()
        assert "/metrics" not in schema["paths"]


async def test_backlog_conflation_and_slow_consumers(
    start_server: StartServer, redis_url: str
) -> None:
    server = start_server(
        "--source",
        "none",
        "--broker",
        redis_url,
        env={"STOCKFEED_SLOW_CLIENT_TIMEOUT": "60"},
    )
    r = aioredis.Redis.from_url(redis_url)
    slow = await slow_client(server.ws + "/ws/stocks/BACKQ")
    await wait_subscribed(r, "market:BACKQ")
    pipe = r.pipeline(transaction=False)
    for seq in range(1, 401):
        pipe.publish("market:BACKQ", contract_update("BACKQ", seq, pad="x" * 30_000))
    await pipe.execute()
    stalled = await scrape_until(
        server, lambda s: value(s, "stockfeed_updates_relayed_total") == 400
    )
    # Nothing read yet: the connection's transport buffer is full, the rest conflated.
    assert value(stalled, "stockfeed_clients_backlogged") == 1
    assert value(stalled, "stockfeed_client_buffered_bytes") > 30_000
    assert value(stalled, "stockfeed_client_queue_messages_max") >= 1
    assert value(stalled, "stockfeed_updates_conflated_total") > 0
    assert value(stalled, "stockfeed_messages_sent_total", kind="price_update") == 400
    await slow.close()
    await r.aclose()
    drained = await scrape_until(server, lambda s: value(s, "stockfeed_connections") == 0)
    assert value(drained, "stockfeed_client_buffered_bytes") == 0
    assert value(drained, "stockfeed_updates_conflated_total") >= value(
        stalled, "stockfeed_updates_conflated_total"
    )


async def test_broker_loss_and_reconnect_are_counted(
    start_server: StartServer, private_redis: RedisServer
) -> None:
    server = start_server("--source", "sim", "--leader-ttl", "1", "--broker", private_redis.url)
    before = await scrape(server)
    assert value(before, "stockfeed_broker_reconnects_total") == 0
    private_redis.stop()
    down = await scrape_until(server, lambda s: value(s, "stockfeed_broker_up") == 0)
    assert value(down, "stockfeed_broker_state", state="degraded") == 1
    private_redis.start()
    back = await scrape_until(server, lambda s: value(s, "stockfeed_broker_up") == 1)
    assert value(back, "stockfeed_broker_reconnects_total") >= 1


async def test_source_errors_are_counted(start_server: StartServer) -> None:
    """yfinance with its streamer refusing connections (a free local port nobody
    listens on); BTC-USD trades around the clock, so the source always tries."""
    server = start_server(
        "--source",
        "yfinance",
        "--tickers",
        "BTC-USD",
        env={"STOCKFEED_YAHOO_STREAMER_URL": f"ws://127.0.0.1:{free_port()}/"},
    )
    failing = await scrape_until(server, lambda s: value(s, "stockfeed_source_errors_total") >= 2)
    assert value(failing, "stockfeed_source_simulated") == 0
    info = dict(next(k for k in failing if k[0] == "stockfeed_info")[1])
    assert info["source_active"] == "yfinance"


async def test_two_apps_in_one_process_have_their_own_registries() -> None:
    """A registry per app: the second app's metrics do not clash with the first's."""
    settings = Settings(source="sim", tickers=["AAPL"])
    one, two = create_app(settings), create_app(settings)
    async with one.router.lifespan_context(one), two.router.lifespan_context(two):
        for app in (one, two, one):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                response = await http.get("/metrics")
            assert response.status_code == 200
            assert parse(response.text)[("stockfeed_connections", ())] == 0
