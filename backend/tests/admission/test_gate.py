"""The WebSocket gate in-process: a real starlette WebSocket over a hand-made ASGI
scope/receive/send, so every refusal is seen exactly as the server would send it
(HTTP denial response, or accept + `error` + close)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from starlette.websockets import WebSocket

from stockfeed.admission.gate import Admission, Gate
from stockfeed.config import Settings

SECRET = "gate-test-secret-" + "k" * 32
IP = "203.0.113.9"


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "handshake_rate": 0.001,  # no refill within a test
        "handshake_burst": 100,
        "max_connections_per_ip": 100,
        "limit_exempt_ips": [],
        "allowed_origins": [],
    }
    return Settings(**(base | overrides))


def token(secret: str = SECRET, ttl: float = 600) -> str:
    return jwt.encode({"sub": "alice", "exp": int(time.time() + ttl)}, secret, algorithm="HS256")


class Handshake:
    """One WebSocket handshake as the server hands it to the app; records what the app
    sends back."""

    def __init__(
        self,
        *,
        ip: str = IP,
        headers: dict[str, str] | None = None,
        query: bytes = b"",
        subprotocols: tuple[str, ...] = (),
        denial_extension: bool = True,
    ) -> None:
        all_headers = {"host": "testserver"} | (headers or {})
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": "/ws",
            "raw_path": b"/ws",
            "query_string": query,
            "headers": [(k.lower().encode(), v.encode()) for k, v in all_headers.items()],
            "client": (ip, 40000),
            "server": ("testserver", 80),
            "subprotocols": list(subprotocols),
            "extensions": {"websocket.http.response": {}} if denial_extension else {},
        }
        self.sent: list[dict[str, Any]] = []
        self.websocket = WebSocket(self.scope, self._receive, self._send)

    async def _receive(self) -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]

    @property
    def accepted(self) -> dict[str, Any] | None:
        return next((m for m in self.sent if m["type"] == "websocket.accept"), None)

    @property
    def close_code(self) -> int | None:
        return next((m["code"] for m in self.sent if m["type"] == "websocket.close"), None)

    def texts(self) -> list[dict[str, Any]]:
        return [json.loads(m["text"]) for m in self.sent if m["type"] == "websocket.send"]

    def http(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        start = next(m for m in self.sent if m["type"] == "websocket.http.response.start")
        body = b"".join(
            m.get("body", b"") for m in self.sent if m["type"] == "websocket.http.response.body"
        )
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return start["status"], headers, json.loads(body)


async def admit(gate: Gate, **handshake: Any) -> tuple[Admission | None, Handshake]:
    hs = Handshake(**handshake)
    return await gate.admit(hs.websocket), hs


# -- handshake rate ----------------------------------------------------------------------


async def test_handshake_rate_refused_with_http_429() -> None:
    gate = Gate(settings(handshake_burst=2))
    for _ in range(2):
        admission, hs = await admit(gate)
        assert admission is not None and hs.accepted
    admission, hs = await admit(gate)
    assert admission is None and hs.accepted is None
    status, headers, body = hs.http()
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert int(headers["retry-after"]) >= 1
    other, _ = await admit(gate, ip="198.51.100.1")  # per IP
    assert other is not None


async def test_refusal_without_denial_extension_closes_before_accept() -> None:
    gate = Gate(settings(handshake_burst=1))
    await admit(gate)
    admission, hs = await admit(gate, denial_extension=False)
    assert admission is None
    assert hs.types() == ["websocket.close"] and hs.close_code == 1008


# -- origin ------------------------------------------------------------------------------


async def test_foreign_origin_refused_with_http_403() -> None:
    gate = Gate(settings(allowed_origins=["https://app.example"]))
    for origin in ("https://evil.example", "null", "http://testserver:8080"):
        admission, hs = await admit(gate, headers={"origin": origin})
        assert admission is None and hs.accepted is None, origin
        status, _, body = hs.http()
        assert status == 403 and body["error"]["code"] == "origin_not_allowed"


async def test_own_configured_and_absent_origins_allowed() -> None:
    gate = Gate(settings(allowed_origins=["https://app.example"]))
    for headers in ({}, {"origin": "http://testserver"}, {"origin": "https://APP.example/"}):
        admission, hs = await admit(gate, headers=headers)
        assert admission is not None and hs.accepted, headers


async def test_any_origin_allowed_with_star() -> None:
    gate = Gate(settings(allowed_origins=["*"]))
    admission, _ = await admit(gate, headers={"origin": "https://evil.example"})
    assert admission is not None


# -- token -------------------------------------------------------------------------------


async def test_bad_query_token_accepted_then_closed_4401_and_redacted() -> None:
    gate = Gate(settings(auth_secret=SECRET))
    bad = token(secret="another-secret-" + "z" * 32)
    admission, hs = await admit(gate, query=b"x=1&access_token=" + bad.encode())
    assert admission is None
    assert hs.types() == ["websocket.accept", "websocket.send", "websocket.close"]
    assert hs.texts()[0]["type"] == "error" and hs.texts()[0]["code"] == "unauthorized"
    assert hs.close_code == 4401
    assert hs.scope["query_string"] == b"x=1&access_token=REDACTED"
    assert gate.limits.open == {}  # a refused client holds no connection slot


async def test_missing_token_closed_4401() -> None:
    gate = Gate(settings(auth_secret=SECRET))
    admission, hs = await admit(gate)
    assert admission is None and hs.close_code == 4401
    assert "missing token" in hs.texts()[0]["message"]


async def test_expired_subprotocol_token_closed_4401_echoing_marker() -> None:
    gate = Gate(settings(auth_secret=SECRET))
    admission, hs = await admit(gate, subprotocols=("bearer", token(ttl=-3600)))
    assert admission is None and hs.close_code == 4401
    assert hs.accepted is not None and hs.accepted["subprotocol"] == "bearer"


async def test_good_token_admitted_from_query_subprotocol_or_header() -> None:
    gate = Gate(settings(auth_secret=SECRET))
    good = token()
    for handshake in (
        {"query": b"access_token=" + good.encode()},
        {"subprotocols": ("bearer", good)},
        {"headers": {"authorization": f"Bearer {good}"}},
    ):
        admission, hs = await admit(gate, **handshake)
        assert admission is not None and admission.principal is not None, handshake
        assert admission.principal.subject == "alice" and hs.accepted
        assert good.encode() not in hs.scope["query_string"]  # never reaches the access log


async def test_bad_authorization_header_refused_with_http_401() -> None:
    gate = Gate(settings(auth_secret=SECRET))
    for value in ("Bearer not.a.jwt", "Basic dXNlcjpwYXNz", f"Bearer {token(ttl=-3600)}"):
        admission, hs = await admit(gate, headers={"authorization": value})
        assert admission is None and hs.accepted is None, value
        status, headers, body = hs.http()
        assert status == 401 and body["error"]["code"] == "unauthorized"
        assert headers["www-authenticate"] == "Bearer"


async def test_no_auth_configured_admits_without_principal() -> None:
    gate = Gate(settings())
    admission, _ = await admit(gate, headers={"authorization": "Bearer whatever"})
    assert admission is not None and admission.principal is None


# -- per-IP connections --------------------------------------------------------------------


async def test_per_ip_connection_cap_closes_4429_until_one_is_released() -> None:
    gate = Gate(settings(max_connections_per_ip=2))
    held = []
    for _ in range(2):
        admission, _ = await admit(gate)
        assert admission is not None and admission.slot_ip == IP
        held.append(admission)
    admission, hs = await admit(gate)
    assert admission is None
    assert hs.types() == ["websocket.accept", "websocket.send", "websocket.close"]
    assert hs.texts()[0]["code"] == "too_many_connections" and hs.close_code == 4429
    assert gate.limits.open == {IP: 2}
    other, _ = await admit(gate, ip="198.51.100.1")  # per IP
    assert other is not None
    gate.release(held[0])
    gate.release(held[0])  # giving back twice counts once
    assert gate.limits.open == {IP: 1, "198.51.100.1": 1}
    admission, _ = await admit(gate)
    assert admission is not None


async def test_exempt_ips_skip_rate_and_connection_cap() -> None:
    gate = Gate(
        settings(
            handshake_burst=1,
            max_connections_per_ip=1,
            limit_exempt_ips=["127.0.0.1", "10.0.0.0/8"],
        )
    )
    for ip in ("127.0.0.1", "10.20.30.40"):
        for _ in range(5):
            admission, hs = await admit(gate, ip=ip)
            assert admission is not None and hs.accepted, ip
            assert admission.slot_ip is None
    assert gate.limits.open == {}
    assert (await admit(gate, ip="11.0.0.1"))[0] is not None
    assert (await admit(gate, ip="11.0.0.1"))[0] is None  # not exempt: limited
