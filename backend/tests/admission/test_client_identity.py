"""Client identity over real sockets: one address holds at most a share of the process's
tickers, `X-Forwarded-For` is believed only from configured proxies and never makes a
client exempt, and an IPv6 /64 is one client.

Attackers connect from 127.0.0.2: loopback, but not in the default exempt list (which is
127.0.0.1 and ::1), so they meet the limits a remote client would.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.servers import Server, StartServer
from tests.wsutil import recv_json, recv_until

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")
ATTACKER = "127.0.0.2"
# max_tickers 8: by default an address may hold a quarter of them.
SMALL = {"STOCKFEED_MAX_TICKERS": "8"}
LIMIT_MESSAGE = "at most 2 subscriptions per address across its connections"


def dial(server: Server, path: str = "/ws", ip: str | None = None, **headers: str) -> Any:
    options: dict[str, Any] = {"additional_headers": headers} if headers else {}
    if ip is not None:
        options["local_addr"] = (ip, 0)
    return connect(server.ws + path, **options)


async def subscribe(ws: ClientConnection, *tickers: str) -> tuple[dict[str, str], list[str]]:
    """(error code by ticker, the tickers the connection now holds)."""
    await ws.send(json.dumps({"action": "subscribe", "tickers": list(tickers)}))
    errors: dict[str, str] = {}
    while True:
        msg = await recv_json(ws)
        if msg["type"] == "error":
            errors[msg["ticker"]] = msg["code"]
            assert msg["code"] != "subscription_limit" or msg["message"] == LIMIT_MESSAGE, msg
        elif msg["type"] == "subscribed":
            return errors, msg["tickers"]


async def test_one_address_holds_at_most_a_quarter_of_the_tickers(
    start_server: StartServer,
) -> None:
    server: Server = start_server(*FAST_SIM, env=SMALL)
    async with dial(server, ip=ATTACKER) as a, dial(server, ip=ATTACKER) as b:
        errors, held = await subscribe(a, "AAPL", "MSFT", "GOOGL")
        assert errors == {"GOOGL": "subscription_limit"} and held == ["AAPL", "MSFT"]
        # Across its connections: the other one has no room left either.
        errors, held = await subscribe(b, "AMZN")
        assert errors == {"AMZN": "subscription_limit"} and held == []
        # Claiming to be loopback changes nothing: no proxy is trusted by default.
        async with dial(server, ip=ATTACKER, **{"X-Forwarded-For": "127.0.0.1"}) as c:
            assert (await subscribe(c, "TSLA"))[0] == {"TSLA": "subscription_limit"}
        # The single-ticker endpoint: the error, then 4429.
        async with dial(server, "/ws/stocks/NVDA", ip=ATTACKER) as d:
            error = await recv_json(d)
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(d)
        assert (error["code"], error["ticker"]) == ("subscription_limit", "NVDA")
        assert info.value.rcvd is not None and info.value.rcvd.code == 4429
        # The exempt peer (127.0.0.1) is not limited per address, and the attacker's
        # connections keep streaming what they hold.
        async with dial(server) as local:
            errors, held = await subscribe(local, "AMZN", "TSLA", "NVDA", "GOOGL")
            assert errors == {} and len(held) == 4
        assert (await recv_until(a, "price_update"))["ticker"] in ("AAPL", "MSFT")
    health = server.health()
    assert health["refused"] == {"subscription_limit": 4}


async def test_a_forwarded_loopback_address_is_never_exempt(start_server: StartServer) -> None:
    """127.0.0.2 is the configured reverse proxy. Whatever a client behind it claims, the
    per-IP limits apply to it; others' headers are not believed at all."""
    server: Server = start_server(
        *FAST_SIM,
        env={
            **SMALL,
            "STOCKFEED_TRUSTED_PROXIES": ATTACKER,
            "STOCKFEED_API_BURST": "3",
            "STOCKFEED_API_RATE": "0.01",  # no token back within the test, however slow
        },
    )
    forged = {"X-Forwarded-For": "127.0.0.1"}
    async with dial(server, ip=ATTACKER, **forged) as ws:
        errors, held = await subscribe(ws, "AAPL", "MSFT", "GOOGL")
        assert errors == {"GOOGL": "subscription_limit"} and held == ["AAPL", "MSFT"]
        # A chain of loopback claims through the proxy is the same client, with no room.
        chain = {"X-Forwarded-For": "127.0.0.1, 127.0.0.1"}
        async with dial(server, ip=ATTACKER, **chain) as other:
            assert (await subscribe(other, "AMZN"))[0] == {"AMZN": "subscription_limit"}
    # From a peer that is not a trusted proxy the header is ignored: it is 127.0.0.3.
    async with dial(server, ip="127.0.0.3", **forged) as ws:
        assert (await subscribe(ws, "AAPL", "MSFT", "GOOGL"))[0] == {"GOOGL": "subscription_limit"}
    # The socket's own loopback peer (127.0.0.1) is exempt, whatever it claims.
    async with dial(server, **{"X-Forwarded-For": "203.0.113.9"}) as ws:
        errors, held = await subscribe(ws, "AAPL", "MSFT", "GOOGL", "AMZN")
        assert errors == {} and len(held) == 4
    # REST: the forwarded "127.0.0.1" meets the per-IP request rate (a burst of 3).
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER)
    async with httpx.AsyncClient(transport=transport, base_url=server.base, headers=forged) as http:
        statuses = [(await http.get("/api/tickers")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_an_ipv6_network_is_one_client(start_server: StartServer) -> None:
    """Addresses of one /64 (here forwarded by a trusted proxy on 127.0.0.1) share one
    client's connection cap; the next /64 is another client."""
    server: Server = start_server(
        *FAST_SIM,
        "--max-connections-per-ip",
        "2",
        env={"STOCKFEED_TRUSTED_PROXIES": "127.0.0.1"},
    )
    path = "/ws/stocks/AAPL"
    async with contextlib.AsyncExitStack() as stack:
        for address in ("2001:db8:5:5::1", "2001:db8:5:5:ffff::2"):
            ws = await stack.enter_async_context(dial(server, path, **{"X-Forwarded-For": address}))
            await recv_until(ws, "market_status")
        async with dial(server, path, **{"X-Forwarded-For": "2001:db8:5:5:1:2:3:4"}) as third:
            error = await recv_until(third, "error")
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(third)
        assert error["code"] == "too_many_connections"
        assert info.value.rcvd is not None and info.value.rcvd.code == 4429
        async with dial(server, path, **{"X-Forwarded-For": "2001:db8:5:6::1"}) as neighbour:
            assert (await recv_until(neighbour, "market_status"))["type"] == "market_status"
