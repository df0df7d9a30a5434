"""deploy/nginx/ticker-groups.conf, run as written: two ticker groups of stockfeed on one
Redis behind a real nginx whose one `hash` rule routes each request by its ticker
(docs/scaling.md#ticker-groups); the Python client and `stockfeed watch` through it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from stockfeed.client import (
    Backoff,
    ConnectionState,
    ErrorMessage,
    Message,
    PriceUpdate,
    Snapshot,
    StockfeedClient,
)
from stockfeed.testing.processes import NginxServer, free_port
from stockfeed.ticker_groups import group_of, route_key
from tests.servers import Server, StartServer, require_nginx
from tests.terminal import watch_on_terminal
from tests.wsutil import recv_json, recv_until

pytestmark = pytest.mark.process

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "ticker-groups.conf"
# Simulator tickers, two of each group (group_of(t, 2)).
TICKERS = ("AAPL", "MSFT", "GOOG", "TSLA")


@pytest.fixture
def groups(start_server: StartServer, redis_url: str) -> list[Server]:
    args = ("--broker", redis_url, "--source", "sim", "--sim-tick-interval", "0.1")
    return [start_server(*args, "--ticker-group", f"{k}/2") for k in (1, 2)]


@pytest.fixture
def nginx(tmp_path: Path, groups: list[Server]) -> Iterator[NginxServer]:
    require_nginx()
    lb = NginxServer(
        tmp_path / "nginx",
        CONFIG,
        {
            "listen 127.0.0.1:8000;": f"listen 127.0.0.1:{free_port()};",
            "server 127.0.0.1:8001 ": f"server 127.0.0.1:{groups[0].port} ",
            "server 127.0.0.1:8002 ": f"server 127.0.0.1:{groups[1].port} ",
        },
    ).start()
    yield lb
    lb.stop()


def test_the_tickers_are_two_of_each_group() -> None:
    assert sorted(group_of(t, 2) for t in TICKERS) == [1, 1, 2, 2]


async def test_each_ticker_reaches_its_group_and_no_process_reads_another_groups(
    groups: list[Server], nginx: NginxServer
) -> None:
    # One ticker per connection, each through the balancer: every one is served.
    sockets = [await connect(f"{nginx.ws}/ws/stocks/{t}") for t in TICKERS]
    try:
        for ws, ticker in zip(sockets, TICKERS, strict=True):
            msg = await recv_until(ws, "price_update", timeout=15)
            assert msg["ticker"] == ticker
        # Each process holds (and so reads from Redis) its own group's tickers only.
        for k, server in enumerate(groups, start=1):
            health = await asyncio.to_thread(server.health)
            assert health["tickers"]["group"] == f"{k}/2"
            async with httpx.AsyncClient(base_url=server.base) as http:
                held = set((await http.get("/api/tickers")).json()["active"])
            assert held == {t for t in TICKERS if group_of(t, 2) == k}, (k, held)
    finally:
        for ws in sockets:
            await ws.close()


async def test_a_many_ticker_client_is_told_the_route_to_the_other_group(
    groups: list[Server], nginx: NginxServer
) -> None:
    # `/ws` has no ticker: nginx sends it to either group (round robin).
    async with connect(f"{nginx.ws}/ws") as first:
        await first.send(json.dumps({"action": "subscribe", "tickers": list(TICKERS)}))
        refused: dict[str, str] = {}
        while True:
            msg = await recv_json(first)
            if msg["type"] == "error":
                assert msg["code"] == "wrong_group"
                refused[msg["ticker"]] = msg["route"]
            elif msg["type"] == "subscribed":
                kept = msg["tickers"]
                break
        assert len(kept) == 2 and sorted([*kept, *refused]) == sorted(TICKERS)
        (route,) = set(refused.values())
        other = group_of(next(iter(refused)), 2)
        assert route == route_key(other, 2)
        # One more connection, routed by the key the error named: the rest are served.
        async with connect(f"{nginx.ws}/ws?route={route}") as second:
            await second.send(json.dumps({"action": "subscribe", "tickers": sorted(refused)}))
            ack = await recv_until(second, "subscribed")
            assert ack["tickers"] == sorted(refused)
            seen: set[str] = set()
            while seen != set(refused):
                seen.add((await recv_until(second, "price_update", timeout=15))["ticker"])


async def test_rest_by_ticker_follows_the_same_rule_and_a_wrong_process_refuses(
    groups: list[Server], nginx: NginxServer
) -> None:
    # Tickers the simulator does not list: routed right, the group answers 404
    # unknown_ticker at once; routed wrong, it would answer 421. Sixty names test that
    # nginx's hash and stockfeed's group_of agree.
    names = [f"QZ{i}" for i in range(60)]
    async with httpx.AsyncClient(base_url=nginx.base, timeout=10) as http:
        answers = await asyncio.gather(*(http.get(f"/api/quotes/{n}") for n in names))
        codes = {
            n: (r.status_code, r.json()["error"]["code"])
            for n, r in zip(names, answers, strict=True)
        }
        assert set(codes.values()) == {(404, "unknown_ticker")}, codes
        # `?route=` overrides the path: the key of group 1 sends a group-2 ticker there.
        aapl_group = group_of("AAPL", 2)
        wrong = route_key(3 - aapl_group, 2)
        response = await http.get(f"/api/quotes/AAPL?route={wrong}")
        assert response.status_code == 421
        assert response.json()["error"]["route"] == route_key(aapl_group, 2)
        assert (await http.get("/api/quotes/AAPL")).status_code == 200

    # Straight to the other group's process: refused, with the way to the right one.
    wrong_server = groups[2 - aapl_group]
    async with httpx.AsyncClient(base_url=wrong_server.base) as http:
        response = await http.get("/api/quotes/AAPL")
    assert response.status_code == 421
    body = response.json()["error"]
    assert body["code"] == "wrong_group" and body["route"] == route_key(aapl_group, 2)
    async with connect(f"{wrong_server.ws}/ws/stocks/AAPL") as ws:
        error = await recv_json(ws)
        assert error["code"] == "wrong_group" and error["ticker"] == "AAPL"
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    assert (await asyncio.to_thread(wrong_server.health))["tickers"]["held"] == 0


async def test_the_python_client_follows_the_route_through_the_balancer(
    groups: list[Server], nginx: NginxServer
) -> None:
    """One client, all four tickers, the balancer's address only: the `/ws` connection
    lands on either group; the other group's tickers are refused with its route key, and
    the client opens `/ws?route=KEY` for them by itself."""
    messages: list[Message] = []

    def count(ticker: str) -> int:
        return sum(isinstance(m, PriceUpdate | Snapshot) and m.ticker == ticker for m in messages)

    client = StockfeedClient(nginx.ws, TICKERS, backoff=Backoff(initial=0.2, maximum=0.5))
    async with client:
        async with asyncio.timeout(20):
            async for msg in client:
                messages.append(msg)
                if all(count(t) >= 5 for t in TICKERS):
                    break
        (route,) = client.routes()
        assert client.state == ConnectionState.CONNECTED
        # Each process holds its own group's tickers only: the route went to the right one.
        for k, server in enumerate(groups, start=1):
            async with httpx.AsyncClient(base_url=server.base) as http:
                held = set((await http.get("/api/tickers")).json()["active"])
            assert held == {t for t in TICKERS if group_of(t, 2) == k}, (k, held)
    assert [m for m in messages if isinstance(m, ErrorMessage)] == []
    other = group_of(route.tickers[0], 2)
    assert route.key == route_key(other, 2)
    assert route.url == f"{nginx.ws}/ws?route={route.key}"
    assert sorted(route.tickers) == sorted(t for t in TICKERS if group_of(t, 2) == other)


def _watch_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFEED_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def test_watch_json_through_the_balancer_gets_every_groups_tickers(
    groups: list[Server], nginx: NginxServer
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "stockfeed.cli", "watch", "--json", "--url", nginx.ws, *TICKERS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_watch_env(),
    )
    assert proc.stdout is not None
    seen: dict[str, int] = {}
    lines: list[dict[str, object]] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and not all(seen.get(t, 0) >= 3 for t in TICKERS):
            line = proc.stdout.readline()
            assert line, proc.communicate(timeout=5)
            msg = json.loads(line)
            lines.append(msg)
            if msg["type"] in ("price_update", "snapshot"):
                ticker = str(msg["ticker"])
                seen[ticker] = seen.get(ticker, 0) + 1
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert all(seen.get(t, 0) >= 3 for t in TICKERS), seen
    assert [m for m in lines if m["type"] == "error"] == []  # the refusal was followed
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_watch_table_through_the_balancer_shows_the_route(
    groups: list[Server], nginx: NginxServer
) -> None:
    """The table on a real pseudo-terminal: every ticker priced, the footer connected
    and naming the connection to the other group."""

    def done(text: str) -> bool:
        # The last frame drawn: after the last "Ticker" heading.
        last = text.rsplit("Ticker", 1)[-1]
        return "● connected" in last and "+route g" in last and "waiting" not in last

    text = watch_on_terminal(nginx.ws, TICKERS, done)
    last = text.rsplit("Ticker", 1)[-1]
    assert "● connected" in last and "waiting" not in last, last
    keys = {route_key(k, 2) for k in (1, 2)}
    assert any(f"+route {key} (2 tickers)" in last for key in keys), last
    assert "wrong_group" not in text and "Traceback" not in text
