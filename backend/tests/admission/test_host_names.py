"""The `Host` allow-list against DNS rebinding, over real sockets: a page whose name was
made to resolve to 127.0.0.1 sends `Host: evil.example:PORT` (and a matching `Origin`);
a server on loopback answers only localhost names and IP literals unless told more, to
plain HTTP and WebSocket handshakes alike."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.servers import Server, StartServer
from tests.wsutil import recv_until

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")
REFUSAL = {
    "error": {
        "code": "host_not_allowed",
        "message": "this server does not answer to this host name (allowed_hosts)",
    }
}


def http_status(server: Server, host: str, path: str = "/api/ws/health", **headers: str) -> int:
    response = httpx.get(server.base + path, headers={"Host": host, **headers}, timeout=10)
    if response.status_code == 403:
        assert response.json() == REFUSAL
        assert response.headers["content-type"] == "application/json"
    return response.status_code


async def ws_opens(server: Server, host: str, path: str = "/ws") -> bool:
    """A handshake to this server's port naming `host` (as a rebound page's would, with the
    page's own origin): True when it streams, False when refused with 403 host_not_allowed."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    origin = f"http://{host}"
    try:
        async with connect(f"ws://{host}{path}", sock=sock, origin=origin) as ws:  # type: ignore[arg-type]
            await recv_until(ws, "market_status")
            return True
    except InvalidStatus as exc:
        assert exc.response.status_code == 403
        assert json.loads(exc.response.body) == REFUSAL
        return False
    finally:
        sock.close()


@pytest.mark.parametrize("fast_path", ["true", "false"])
async def test_a_loopback_server_answers_local_names_only(
    start_server: StartServer, fast_path: str
) -> None:
    server: Server = start_server(*FAST_SIM, env={"STOCKFEED_FAST_PATH": fast_path})
    port = server.port
    for host in (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"app.localhost:{port}",
        f"[::1]:{port}",
    ):
        assert http_status(server, host) == 200, host
    assert http_status(server, f"evil.example:{port}") == 403
    assert http_status(server, f"evil.example:{port}", "/") == 403  # the dashboard too
    assert http_status(server, f"evil.example:{port}", "/metrics") == 403
    assert http_status(server, f"localhost.evil.example:{port}", "/api/tickers") == 403
    # The rebound page's WebSocket, on both endpoints; the local names still connect.
    assert not await ws_opens(server, f"evil.example:{port}")
    assert not await ws_opens(server, f"evil.example:{port}", "/ws/stocks/AAPL")
    assert await ws_opens(server, f"localhost:{port}", "/ws/stocks/AAPL")
    assert await ws_opens(server, f"127.0.0.1:{port}", "/ws/stocks/AAPL")
    assert "Traceback" not in server.log()


async def test_configured_host_names(start_server: StartServer) -> None:
    server: Server = start_server(
        *FAST_SIM, env={"STOCKFEED_ALLOWED_HOSTS": "stocks.example,*.corp.example"}
    )
    port = server.port
    assert http_status(server, f"stocks.example:{port}") == 200
    assert http_status(server, "feed.corp.example") == 200
    assert http_status(server, f"localhost:{port}") == 200  # local names stay allowed
    assert http_status(server, f"evil.example:{port}") == 403
    assert http_status(server, "stocks.example.evil.example") == 403
    assert await ws_opens(server, f"stocks.example:{port}", "/ws/stocks/AAPL")
    assert not await ws_opens(server, f"evil.example:{port}", "/ws/stocks/AAPL")


def test_requests_a_trusted_proxy_forwarded_are_not_checked(start_server: StartServer) -> None:
    """The proxy chose this server by the public name already; the same name straight from
    a browser on this machine is refused."""
    server: Server = start_server(*FAST_SIM, env={"STOCKFEED_TRUSTED_PROXIES": "127.0.0.1"})
    public = "stocks.public.example"
    assert http_status(server, public, **{"X-Forwarded-For": "198.51.100.20"}) == 200
    assert http_status(server, public) == 403
