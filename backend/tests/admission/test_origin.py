"""The Origin check on WebSocket handshakes (cross-site WebSocket hijacking).

A browser always sends `Origin` and a page cannot forge it. Allowed by default: no
`Origin` (not a browser), the server's own origin (same host and port as `Host`);
plus each configured origin, or all with `*`. Others get HTTP 403 with a JSON body.
"""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.servers import StartServer
from tests.wsutil import recv_json

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")


async def opens(url: str, origin: str | None) -> bool:
    """True when the handshake is accepted and the connection streams."""
    try:
        async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
            while (await recv_json(ws))["type"] not in ("snapshot", "price_update"):
                pass
            return True
    except InvalidStatus as exc:
        assert exc.response.status_code == 403
        body = json.loads(exc.response.body)
        assert body == {
            "error": {"code": "origin_not_allowed", "message": "this origin may not connect"}
        }
        return False


@pytest.mark.parametrize("fast_path", ["true", "false"])
async def test_default_allows_own_origin_and_non_browsers(
    start_server: StartServer, fast_path: str
) -> None:
    server = start_server(*FAST_SIM, env={"STOCKFEED_FAST_PATH": fast_path})
    port = server.port
    url = server.ws + "/ws/stocks/AAPL"
    assert await opens(url, None)  # curl, SDKs, servers: no Origin
    assert await opens(url, f"http://127.0.0.1:{port}")  # the bundled dashboard
    assert await opens(url, f"https://127.0.0.1:{port}")  # same host behind TLS
    assert not await opens(url, "http://evil.example")
    assert not await opens(url, f"http://127.0.0.1:{port + 1}")  # another local app
    assert not await opens(url, f"http://localhost:{port}")  # another host name
    assert not await opens(url, "null")  # sandboxed iframes, file:// pages
    assert not await opens(server.ws + "/ws", "http://evil.example")  # both endpoints
    # The refusal comes before the token: nothing about auth leaks to the foreign page.
    assert "origin_not_allowed" not in server.log()  # refusals are not log noise at info


async def test_configured_origins(start_server: StartServer) -> None:
    server = start_server(
        *FAST_SIM,
        env={"STOCKFEED_ALLOWED_ORIGINS": "https://app.example.com, http://localhost:5173/"},
    )
    url = server.ws + "/ws/stocks/AAPL"
    assert await opens(url, "https://app.example.com")
    assert await opens(url, "HTTPS://APP.EXAMPLE.COM")  # origins compare case-insensitively
    assert await opens(url, "http://localhost:5173")  # a dev server (trailing / ignored)
    assert await opens(url, f"http://127.0.0.1:{server.port}")  # own origin still allowed
    assert not await opens(url, "http://app.example.com")  # scheme matters
    assert not await opens(url, "https://app.example.com.evil.example")
    assert not await opens(url, "https://evil.example")


async def test_wildcard_allows_every_origin(start_server: StartServer) -> None:
    server = start_server(*FAST_SIM, "--allowed-origins", "*")
    assert await opens(server.ws + "/ws/stocks/AAPL", "https://anywhere.example")


def test_bad_origin_setting_stops_the_server(start_server: StartServer) -> None:
    server = start_server("--allowed-origins", "app.example.com", wait=False)
    assert server.proc.wait(30) == 2
    assert "invalid setting --allowed-origins / STOCKFEED_ALLOWED_ORIGINS" in server.log()
