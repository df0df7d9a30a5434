"""Logs: one line per event, JSON on request, connection ids, and never a secret."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from stockfeed.logs import JsonFormatter, SecretFilter, TextFormatter, redact
from tests.servers import RedisServer, StartServer
from tests.wsutil import recv_until

pytestmark = pytest.mark.process

PASSWORD = "s3cret-Pa55word"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLXNlY3JldA"


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    """A real redis-server of the test's own that needs a password."""
    RedisServer.require()
    server = RedisServer(tmp_path, password=PASSWORD).start()
    yield server.port
    server.stop()


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger", "msg"} <= set(record), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"]), line
        out.append(record)
    return out


async def test_json_logs_with_connection_ids_and_no_secrets(
    start_server: StartServer, redis_with_password: int
) -> None:
    broker = f"redis://:{PASSWORD}@127.0.0.1:{redis_with_password}/0"
    server = start_server(
        "--source", "sim", "--broker", broker, "--log-format", "json", "--log-level", "debug"
    )
    health = server.health()
    assert health["broker"]["state"] == "connected"  # the password worked
    headers = {"authorization": f"Bearer {TOKEN}", "cookie": "session=COOKIE-SECRET"}
    url = server.ws + f"/ws/stocks/AAPL?access_token={TOKEN}"
    async with connect(url, additional_headers=headers) as ws:  # logged at debug level
        await recv_until(ws, "market_status")
    async with httpx.AsyncClient(base_url=server.base) as http:
        await http.get(f"/api/quotes/AAPL?access_token={TOKEN}&x=1")
        await http.get("/api/ws/health", headers={"authorization": f"Bearer {TOKEN}"})
        health_text = (await http.get("/api/ws/health")).text
        health_text += (await http.get("/metrics")).text
    server.stop()
    text = server.log_path.read_text()
    records = json_lines(text)
    assert PASSWORD not in text and PASSWORD not in health_text
    assert TOKEN not in text and TOKEN.split(".")[2] not in text
    assert "COOKIE-SECRET" not in text and "< cookie: ***" in text
    connected = [r for r in records if r["msg"] == "client connected"]
    assert len(connected) == 1
    conn = connected[0]["conn"]
    assert isinstance(conn, int) and connected[0]["remote"].startswith("127.0.0.1:")
    gone = [r for r in records if r["msg"] == "client disconnected"]
    assert [r["conn"] for r in gone] == [conn]
    access = [r for r in records if r["logger"] == "uvicorn.access" and "quotes" in r["msg"]]
    assert access and access[0]["path"] == "/api/quotes/AAPL?access_token=***&x=1"
    assert access[0]["status"] == 200 and access[0]["method"] == "GET"
    assert any(r["level"] == "info" and "ready" in r["msg"] for r in records)


async def test_a_wrong_redis_password_is_reported_not_shown(
    start_server: StartServer, redis_with_password: int
) -> None:
    wrong = "Wr0ng-Pa55word"
    server = start_server(
        "--source",
        "sim",
        "--broker",
        f"redis://:{wrong}@127.0.0.1:{redis_with_password}/0",
        "--log-format",
        "json",
    )
    health = server.health()
    assert health["broker"]["state"] != "connected"
    assert health["broker"]["last_error"]  # says why, without the password
    server.stop()
    text = server.log_path.read_text()
    records = json_lines(text)
    assert any(r["level"] == "error" and "Redis" in r["msg"] for r in records)
    assert wrong not in text and wrong not in json.dumps(health)


async def test_text_is_the_default_format(start_server: StartServer) -> None:
    server = start_server("--source", "sim")
    async with connect(server.ws + "/ws/stocks/AAPL"):
        pass
    server.stop()
    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    classic = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: .+")
    assert lines and all(classic.fullmatch(line) for line in lines), lines


@pytest.mark.parametrize(
    ("args", "shown", "hidden"),
    [
        (["--log-format", "xml"], "--log-format / STOCKFEED_LOG_FORMAT", None),
        (["--broker", f"http://:{PASSWORD}@example"], "--broker / STOCKFEED_BROKER", PASSWORD),
    ],
)
def test_bad_settings_name_the_setting_and_hide_passwords(
    args: list[str], shown: str, hidden: str | None
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stockfeed.cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert shown in done.stderr and done.stderr.count("\n") == 1, done.stderr
    if hidden is not None:
        assert hidden not in done.stderr and "***" in done.stderr


# -- the filter and formatters, in process ------------------------------------------------


def capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(SecretFilter())
    logger = logging.getLogger(f"test_logs.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


@pytest.mark.parametrize(
    ("secret_text", "secret"),
    [
        (f"GET /ws?access_token={TOKEN}&x=1", TOKEN),
        ("GET /ws?ticker=A&token=abc123def456", "abc123def456"),
        ("Authorization: Bearer opaque-token-value_123", "opaque-token-value_123"),
        (f"bearer {TOKEN}", TOKEN),
        (f"token was {TOKEN}", TOKEN),
        (f"redis://:{PASSWORD}@host:6379/0", PASSWORD),
        (f"rediss://user:{PASSWORD}@host:6380", PASSWORD),
        (f"redis://{PASSWORD}@host", PASSWORD),
        (f"?password={PASSWORD}", PASSWORD),
        ("< cookie: session=COOKIE-SECRET; theme=dark", "COOKIE-SECRET"),
        ("< authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
        ("> APCA-API-SECRET-KEY: alpaca-secret-value", "alpaca-secret-value"),
    ],
)
def test_the_filter_masks_every_kind_of_secret(secret_text: str, secret: str) -> None:
    assert secret not in redact(secret_text)
    for formatter in (JsonFormatter(), TextFormatter()):
        logger, stream = capture(formatter)
        logger.info("as message: " + secret_text)
        logger.info("as argument: %s", secret_text)
        logger.info("as extra", extra={"remote": secret_text})
        try:
            raise RuntimeError(secret_text)
        except RuntimeError:
            logger.exception("as exception")
        out = stream.getvalue()
        assert secret not in out, out
        assert out.count("***") >= 4


def test_the_filter_leaves_ordinary_text_alone() -> None:
    for text in [
        "client 127.0.0.1:5555 stuck for 10s: closing 4408",
        "dropped a message on market:AAPL: not JSON",
        "seq of BRK.B went back to 3 (1 times): new epoch k3f9.1",
        "redis://127.0.0.1:6379/0 connected",
        "user@example.com wrote",
        "the bearer token is missing",
        "page_token=",
    ]:
        assert redact(text) == text


def test_json_lines_carry_extras_and_one_line_tracebacks() -> None:
    logger, stream = capture(JsonFormatter())
    logger.warning("slow %s", "client", extra={"conn": 7, "ticker": "AAPL"})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "slow client" and first["conn"] == 7 and first["ticker"] == "AAPL"
    assert first["level"] == "warning" and first["logger"] == logger.name
    assert second["level"] == "error" and "ValueError: boom" in second["exc"]
