"""Invalid settings stop the server at start-up with one clear line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stockfeed.config import Settings

pytestmark = pytest.mark.process


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFEED_")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "stockfeed.cli", "serve", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["--port", "70000"], {}, "--port / STOCKFEED_PORT"),
        ([], {"STOCKFEED_PORT": "eighty"}, "--port / STOCKFEED_PORT"),
        (["--source", "bloomberg"], {}, "--source / STOCKFEED_SOURCE"),
        (["--tickers", "AAPL,not a ticker"], {}, "--tickers / STOCKFEED_TICKERS"),
        (["--broker", "kafka://x"], {}, "--broker / STOCKFEED_BROKER"),
        (["--poll-interval", "-1"], {}, "--poll-interval / STOCKFEED_POLL_INTERVAL"),
        (["--workers", "2"], {}, "--workers > 1 needs the Redis broker"),
        (["--source", "replay", "--replay-file", "/nonexistent.jsonl"], {}, "--replay-file"),
        (["--source", "replay", "--replay-file", __file__], {}, "--replay-file"),
        # Vendor sources: a missing key is named before anything starts (never a value).
        (
            ["--source", "alpaca"],
            {"APCA_API_KEY_ID": "", "APCA_API_SECRET_KEY": ""},
            "APCA_API_KEY_ID and APCA_API_SECRET_KEY",
        ),
        (["--source", "coinbase,auto"], {}, "auto cannot be part of a chain"),
        (["--source", "coinbase,coinbase"], {}, "a chain names each source once"),
        ([], {"STOCKFEED_ALPACA_FEED": "opra"}, "STOCKFEED_ALPACA_FEED"),
    ],
)
def test_invalid_setting_is_one_clear_line(
    args: list[str], env: dict[str, str], names: str
) -> None:
    result = run_cli(*args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("stockfeed: invalid")
    assert names in lines[0]
    assert "Traceback" not in result.stderr


def test_defaults_and_environment() -> None:
    s = Settings()
    assert s.broker == "memory://"
    assert s.source == "auto"
    assert s.poll_interval == 15
    assert s.quote_ttl == 60
    assert s.heartbeat_interval == 30
    assert s.tickers == ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"]
    os.environ["STOCKFEED_TICKERS"] = "brk.b, ^gspc ,eurusd=x,BTC-USD,aapl,AAPL"
    try:
        assert Settings().tickers == ["BRK.B", "^GSPC", "EURUSD=X", "BTC-USD", "AAPL"]
    finally:
        del os.environ["STOCKFEED_TICKERS"]
