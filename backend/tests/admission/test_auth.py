"""JWT auth on WebSocket and REST, against real servers over real sockets.

Every refusal is checked with the code docs/protocol.md promises: HTTP 401 + JSON for a
bad `Authorization` header (non-browser clients), accept + `error` + close 4401 for a
missing or bad token in the query string or the subprotocol (browsers), 4403 /
`forbidden_ticker` for a ticker outside the token's `tickers` claim.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.servers import Server, StartServer
from tests.wsutil import recv_json, recv_until

pytestmark = pytest.mark.process

SECRET = "s3cret-" + "x" * 40  # 47 characters: long enough for HS256
FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")


def hs_token(secret: str = SECRET, ttl: float = 600, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"sub": "tester", "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(body, secret, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A token built by hand, the way an attacker would (PyJWT refuses to make these)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`stockfeed ARGS...` with only `env` (no STOCKFEED_* of ours leaks in)."""
    return subprocess.run(
        [sys.executable, "-m", "stockfeed.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


async def first_update(ws: ClientConnection) -> dict[str, Any]:
    """The first snapshot or price_update: the connection is live and streaming."""
    while True:
        msg = await recv_json(ws)
        if msg["type"] in ("snapshot", "price_update"):
            return msg


async def refused_4401(url: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
    """Accept, an `error`, then a 4401 close: what a browser can see of a bad token."""
    async with connect(url, **kwargs) as ws:
        error = await recv_until(ws, "error")
        with pytest.raises(ConnectionClosed) as info:
            await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4401
    assert error["code"] == "unauthorized"
    return error, info.value.rcvd.reason


async def refused_http(url: str, status: int, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, **kwargs):
            pass
    response = info.value.response
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    body: dict[str, Any] = json.loads(response.body)
    return body["error"]


@pytest.fixture(scope="module")
def hs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One HS256 server for the tests that only talk to it (each starts ~2 s)."""
    # Debug logging on purpose: the handshake lines websockets logs at debug level must
    # not leak tokens either.
    server = Server(
        tmp_path_factory.mktemp("hs"),
        *FAST_SIM,
        "--log-level",
        "debug",
        env={"STOCKFEED_AUTH_SECRET": SECRET, "STOCKFEED_AUTH_LEEWAY": "0"},
    )
    try:
        yield server.wait_ready()
    finally:
        server.stop()


async def test_each_carrier_is_accepted(hs_server: Server) -> None:
    token = hs_token()
    url = hs_server.ws + "/ws/stocks/AAPL"
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await first_update(ws))["ticker"] == "AAPL"
    async with connect(url, subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"  # the marker is echoed, never the token
        assert (await first_update(ws))["ticker"] == "AAPL"
    async with connect(f"{url}?access_token={token}") as ws:
        assert (await first_update(ws))["ticker"] == "AAPL"
    # The multiplexed endpoint takes the same carriers.
    async with connect(f"{hs_server.ws}/ws?access_token={token}") as ws:
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["MSFT"]}))
        assert (await recv_until(ws, "subscribed"))["tickers"] == ["MSFT"]


async def test_browser_carriers_refused_with_4401(hs_server: Server) -> None:
    url = hs_server.ws + "/ws/stocks/AAPL"
    error, reason = await refused_4401(url)
    assert error["message"] == reason == "missing token"
    _, reason = await refused_4401(url + "?access_token=not-a-token")
    assert reason == "malformed token"
    _, reason = await refused_4401(url, subprotocols=["bearer", hs_token(ttl=-60)])
    assert reason == "token expired"
    _, reason = await refused_4401(url, subprotocols=["bearer"])  # marker, no token
    assert reason == "missing token"
    _, reason = await refused_4401(f"{url}?access_token={hs_token(secret='y' * 40)}")
    assert reason == "bad signature"
    now = int(time.time())
    unsigned = forged({"alg": "none", "typ": "JWT"}, {"sub": "x", "exp": now + 600}, None)
    _, reason = await refused_4401(f"{hs_server.ws}/ws?access_token={unsigned}")
    assert reason.startswith("algorithm not allowed")
    no_exp = jwt.encode({"sub": "x"}, SECRET, algorithm="HS256")
    _, reason = await refused_4401(f"{url}?access_token={no_exp}")
    assert reason == "token lacks the exp claim"
    _, reason = await refused_4401(f"{url}?access_token={hs_token(nbf=now + 600)}")
    assert reason == "token not valid yet"
    huge = "a" * 5000 + ".b.c"
    _, reason = await refused_4401(f"{hs_server.ws}/ws?access_token={huge}")
    assert reason == "malformed token"


async def test_authorization_header_refused_with_http_401(hs_server: Server) -> None:
    url = hs_server.ws + "/ws"
    cases = {
        "Bearer garbage": "malformed token",
        f"Bearer {hs_token(ttl=-60)}": "token expired",
        f"Bearer {hs_token(secret='z' * 40)}": "bad signature",
        "Basic dXNlcjpwYXNz": "Authorization must be 'Bearer <token>'",
        "Bearer ": "missing token",
    }
    for header, message in cases.items():
        error = await refused_http(url, 401, additional_headers={"Authorization": header})
        assert error == {"code": "unauthorized", "message": message}


async def test_connection_closed_when_its_token_expires(hs_server: Server) -> None:
    token = hs_token(ttl=3)  # leeway 0 on this server
    async with connect(f"{hs_server.ws}/ws/stocks/AAPL?access_token={token}") as ws:
        await first_update(ws)
        error = await recv_until(ws, "error", timeout=15)
        assert error == {"type": "error", "code": "unauthorized", "message": "token expired"}
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await recv_json(ws, timeout=10)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4401, "token expired")
    # A longer-lived token's connection on the same server is untouched.
    async with connect(f"{hs_server.ws}/ws/stocks/AAPL?access_token={hs_token()}") as ws:
        await first_update(ws)


async def test_tickers_claim_limits_subscriptions(hs_server: Server) -> None:
    token = hs_token(tickers=["AAPL", "BTC-*"])
    async with connect(f"{hs_server.ws}/ws?access_token={token}") as ws:
        await ws.send(
            json.dumps({"action": "subscribe", "tickers": ["AAPL", "MSFT", "btc-usd", "NVDA"]})
        )
        errors = [await recv_until(ws, "error"), await recv_until(ws, "error")]
        assert [(e["code"], e["ticker"]) for e in errors] == [
            ("forbidden_ticker", "MSFT"),
            ("forbidden_ticker", "NVDA"),
        ]
        assert (await recv_until(ws, "subscribed"))["tickers"] == ["AAPL", "BTC-USD"]
        assert (await first_update(ws))["ticker"] in ("AAPL", "BTC-USD")
    async with connect(f"{hs_server.ws}/ws/stocks/MSFT?access_token={token}") as ws:
        error = await recv_until(ws, "error")
        with pytest.raises(ConnectionClosed) as info:
            await recv_json(ws)
    assert error["code"] == "forbidden_ticker" and error["ticker"] == "MSFT"
    assert info.value.rcvd is not None and info.value.rcvd.code == 4403
    # A malformed claim makes the whole token invalid.
    bad_claim = hs_token(tickers="AAPL")
    _, reason = await refused_4401(f"{hs_server.ws}/ws?access_token={bad_claim}")
    assert reason == "malformed token: tickers claim must be a list"


async def test_rest_needs_a_token(hs_server: Server) -> None:
    base = hs_server.base
    token = hs_token(tickers=["AAPL"])
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        missing = await http.get("/api/quotes/AAPL")
        assert missing.status_code == 401
        assert missing.json() == {"error": {"code": "unauthorized", "message": "missing token"}}
        assert missing.headers["www-authenticate"] == "Bearer"
        expired = await http.get(
            "/api/history/AAPL", headers={"Authorization": f"Bearer {hs_token(ttl=-5)}"}
        )
        assert expired.status_code == 401
        assert expired.json()["error"] == {"code": "unauthorized", "message": "token expired"}
        ok = await http.get("/api/quotes/AAPL", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["ticker"] == "AAPL"
        via_query = await http.get("/api/quotes/AAPL", params={"access_token": token})
        assert via_query.status_code == 200 and via_query.json()["ticker"] == "AAPL"
        other = await http.get(
            "/api/quotes", params={"tickers": "AAPL,MSFT", "access_token": token}
        )
        assert other.status_code == 403
        assert other.json()["error"]["code"] == "forbidden_ticker"
        # Health stays public: load balancers probe it without credentials.
        assert (await http.get("/api/ws/health")).status_code == 200


async def test_secret_and_tokens_never_leak(hs_server: Server) -> None:
    token = hs_token()
    async with connect(f"{hs_server.ws}/ws/stocks/AAPL?access_token={token}") as ws:
        await first_update(ws)
    await refused_4401(f"{hs_server.ws}/ws?access_token={hs_token(ttl=-60)}")
    await refused_http(
        hs_server.ws + "/ws", 401, additional_headers={"Authorization": "Bearer x.y.z"}
    )
    async with httpx.AsyncClient(base_url=hs_server.base, timeout=10) as http:
        health = (await http.get("/api/ws/health")).text
        bad = (await http.get("/api/quotes/AAPL", params={"access_token": "x" + SECRET})).text
        await http.get("/api/quotes/AAPL", params={"access_token": token})
    assert SECRET not in health and SECRET not in bad
    log = hs_server.log()
    assert "auth: on (HS256, leeway=0s)" in log
    assert '"WebSocket /ws/stocks/AAPL?access_token=' in log  # the access line is there...
    assert SECRET not in log and token not in log  # ...without the token in it
    signature = token.rsplit(".", 1)[1]
    assert signature not in log
    # Every JWT starts `eyJ` (base64 of `{"`): none of this module's tokens is logged.
    assert "eyJ" not in log
    # A refusal before the upgrade is a complete handshake, not an error (stockfeed.server).
    assert "without completing handshake" not in log


def test_secret_is_masked_in_settings_and_errors(tmp_path: Path) -> None:
    from stockfeed.config import Settings

    settings = Settings(auth_secret=SECRET)  # type: ignore[arg-type]
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    short = "tooshort-but-secret"
    result = run_cli("serve", "--port", "0", env={"STOCKFEED_AUTH_SECRET": short})
    assert result.returncode == 2
    assert "STOCKFEED_AUTH_SECRET must be at least 32 characters" in result.stderr
    assert short not in result.stderr + result.stdout


def _rsa_pair(tmp_path: Path, name: str) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / f"{name}.pub.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, path


async def test_rs256_issuer_audience_and_key_confusion(
    start_server: StartServer, tmp_path: Path
) -> None:
    key, public_path = _rsa_pair(tmp_path, "server")
    server = start_server(
        *FAST_SIM,
        "--auth-public-key-file",
        str(public_path),
        "--auth-issuer",
        "https://issuer.example",
        "--auth-audience",
        "stockfeed",
    )
    assert "auth: on (RS256, iss=https://issuer.example, aud=stockfeed, leeway=30s)" in (
        server.log()
    )
    now = int(time.time())
    good = {"sub": "a", "exp": now + 600, "iss": "https://issuer.example", "aud": "stockfeed"}
    url = server.ws + "/ws/stocks/AAPL"

    def bearer(token: str) -> dict[str, Any]:
        return {"additional_headers": {"Authorization": f"Bearer {token}"}}

    async with connect(url, **bearer(jwt.encode(good, key, algorithm="RS256"))) as ws:
        assert (await first_update(ws))["ticker"] == "AAPL"
    confusion = forged({"alg": "HS256", "typ": "JWT"}, good, public_path.read_bytes())
    cases = [
        ("wrong issuer", jwt.encode({**good, "iss": "https://evil"}, key, algorithm="RS256")),
        ("wrong audience", jwt.encode({**good, "aud": "other"}, key, algorithm="RS256")),
        (
            "token lacks the aud claim",
            jwt.encode({k: v for k, v in good.items() if k != "aud"}, key, algorithm="RS256"),
        ),
        ("bad signature", jwt.encode(good, _rsa_pair(tmp_path, "other")[0], algorithm="RS256")),
        # The classic confusion: HS256 "signed" with the server's public key as secret.
        ("algorithm not allowed (expected RS256)", confusion),
        ("algorithm not allowed (expected RS256)", forged({"alg": "none"}, good, None)),
    ]
    for message, token in cases:
        error = await refused_http(url, 401, **bearer(token))
        assert error == {"code": "unauthorized", "message": message}
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        refused = await http.get("/api/quotes/AAPL", params={"access_token": confusion})
        assert refused.status_code == 401


async def test_es256_public_key(start_server: StartServer, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public_path = tmp_path / "ec.pub.pem"
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    private_path = tmp_path / "ec.pem"
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = start_server(*FAST_SIM, env={"STOCKFEED_AUTH_PUBLIC_KEY_FILE": str(public_path)})
    # `stockfeed token` signs with the private key, picking ES256 from its curve.
    done = run_cli(
        "token",
        "--sub",
        "ec-user",
        "--ttl",
        "5m",
        env={"STOCKFEED_AUTH_PRIVATE_KEY_FILE": str(private_path)},
    )
    assert done.returncode == 0, done.stderr
    minted = done.stdout.strip()
    assert jwt.get_unverified_header(minted)["alg"] == "ES256"
    async with connect(f"{server.ws}/ws/stocks/AAPL", subprotocols=["bearer", minted]) as ws:  # type: ignore[list-item]
        assert (await first_update(ws))["ticker"] == "AAPL"
    rsa_key, _ = _rsa_pair(tmp_path, "stray")
    stray = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, rsa_key, algorithm="RS256")
    _, reason = await refused_4401(f"{server.ws}/ws?access_token={stray}")
    assert reason == "algorithm not allowed (expected ES256)"


async def test_token_command_round_trip(hs_server: Server) -> None:
    done = run_cli(
        "token",
        "--sub",
        "bob",
        "--ttl",
        "30m",
        "--tickers",
        "AAPL",
        env={"STOCKFEED_AUTH_SECRET": SECRET},
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout == token + "\n"  # the token only, for $(stockfeed token ...)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "bob" and claims["tickers"] == ["AAPL"]
    assert 1790 <= claims["exp"] - claims["iat"] <= 1800
    async with connect(f"{hs_server.ws}/ws/stocks/AAPL?access_token={token}") as ws:
        assert (await first_update(ws))["ticker"] == "AAPL"
    async with connect(f"{hs_server.ws}/ws/stocks/MSFT?access_token={token}") as ws:
        assert (await recv_until(ws, "error"))["code"] == "forbidden_ticker"

    for args, env, message in [
        (("--sub", "x", "--ttl", "soon"), {"STOCKFEED_AUTH_SECRET": SECRET}, "bad --ttl"),
        (("--sub", "x"), {}, "no key"),
        (("--sub", "x"), {"STOCKFEED_AUTH_SECRET": "short"}, "at least 32 characters"),
        (("--sub", "x", "--tickers", "A B"), {"STOCKFEED_AUTH_SECRET": SECRET}, "bad --tickers"),
    ]:
        failed = run_cli("token", *args, env=env)
        assert failed.returncode == 2 and message in failed.stderr, failed.stderr
        assert failed.stdout == ""


async def test_auth_off_without_a_key(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(*FAST_SIM)
    warning = "WARNING stockfeed.admission.auth: auth: off (no key configured) — anyone can connect"
    assert warning in server.log()
    async with connect(server.ws + "/ws/stocks/AAPL") as ws:
        assert (await first_update(ws))["ticker"] == "AAPL"
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        assert (await http.get("/api/quotes/AAPL")).status_code == 200
    # A key file the server cannot use stops it at start-up with one line.
    private = tmp_path / "private.pem"
    private.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    for path, message in [
        (private, "holds a private key"),
        (tmp_path / "missing.pem", "cannot read"),
    ]:
        result = run_cli("serve", "--port", "0", env={"STOCKFEED_AUTH_PUBLIC_KEY_FILE": str(path)})
        assert result.returncode == 2 and message in result.stderr, result.stderr
