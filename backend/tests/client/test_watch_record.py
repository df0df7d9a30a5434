"""`stockfeed watch` and `stockfeed record`, run as real commands against real servers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stockfeed.client import (
    PriceUpdate,
    Snapshot,
    StockfeedClient,
    Subscribed,
    UnknownMessage,
    parse_message,
)
from stockfeed.sources.replay_format import load_jsonl
from tests.servers import StartServer, free_port
from tests.terminal import watch_on_terminal

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")


def command(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFEED_")}
    return subprocess.Popen(
        [sys.executable, "-m", "stockfeed.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
        **kwargs,
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = command(*args)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_one_clear_line(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], result.stderr


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines")


def test_watch_json_prints_protocol_messages(start_server: StartServer) -> None:
    server = start_server(*FAST_SIM)
    proc = command("watch", "--json", "--url", server.ws, "aapl", "MSFT")
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(40)]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    messages = [parse_message(line) for line in lines + out.splitlines()]
    assert not [m for m in messages if isinstance(m, UnknownMessage)]
    for line in lines:
        assert line.endswith("\n") and json.loads(line)  # one compact object per line
    first = messages[0]
    assert isinstance(first, Subscribed) and first.tickers == ("AAPL", "MSFT")
    prices = [m for m in messages if isinstance(m, PriceUpdate | Snapshot)]
    assert {m.ticker for m in prices} == {"AAPL", "MSFT"}
    for ticker in ("AAPL", "MSFT"):
        seqs = [m.seq for m in prices if m.ticker == ticker]
        assert seqs == sorted(set(seqs))


def test_watch_table_in_a_terminal(start_server: StartServer) -> None:
    """The rich table on a real pseudo-terminal: prices, then the connection footer."""
    server = start_server(*FAST_SIM)

    def done(text: str) -> bool:
        return "connected" in text and "latency" in text and "▲" in text and "▼" in text

    text = watch_on_terminal(server.ws, ("AAPL", "TSLA"), done)
    # SIM: the test servers' simulator trades around the clock (market SIM).
    for expected in ("Ticker", "Price", "AAPL", "TSLA", "● connected", "SIM", "▲", "▼"):
        assert expected in text, expected
    assert "Traceback" not in text
    # A price that moved is flashed: a green or red background (256-colour codes).
    assert "48;5;28m" in text or "48;5;160m" in text


def test_watch_bad_input_is_one_clear_line(start_server: StartServer) -> None:
    dead = f"ws://127.0.0.1:{free_port()}"
    assert_one_clear_line(run("watch", "--url", dead, "AAPL"), 1, "connection refused")
    assert_one_clear_line(run("watch", "--json", "--url", dead, "AAPL"), 1, "cannot connect")
    assert_one_clear_line(run("watch", "BAD TICKER"), 2, "invalid ticker 'BAD TICKER'")
    assert_one_clear_line(run("watch", "--url", "ftp://x", "AAPL"), 2, "not a WebSocket URL")
    # No tickers and no server to ask for its watchlist.
    assert_one_clear_line(run("watch", "--url", dead), 1, "cannot get the watchlist")


async def replayed_prices(url: str, tickers: list[str], count: int) -> list[PriceUpdate | Snapshot]:
    out: list[PriceUpdate | Snapshot] = []
    async with StockfeedClient(url, tickers) as client:
        async with asyncio.timeout(20):
            async for msg in client:
                if isinstance(msg, PriceUpdate | Snapshot):
                    out.append(msg)
                    if len(out) >= count:
                        return out
    raise AssertionError("the replay stream ended")


async def test_record_round_trips_through_replay(start_server: StartServer, tmp_path: Path) -> None:
    live = start_server(*FAST_SIM)
    out = tmp_path / "day.jsonl"
    result = run(
        "record",
        "--out",
        str(out),
        "--url",
        live.ws,
        "--tickers",
        "AAPL,msft",
        "--max-messages",
        "60",
        "--progress-every",
        "0.1",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"wrote 60 ticks of 2 tickers to {out}" in result.stderr
    ticks = load_jsonl(out)
    assert len(ticks) == 60 and {t.ticker for t in ticks} == {"AAPL", "MSFT"}
    assert all(t.market_time is not None and t.volume is not None for t in ticks)

    # Played back at 10x, a client sees the recorded prices, in the recorded order.
    replay = start_server("--source", "replay", "--replay-file", str(out), "--replay-speed", "10")
    seen = await replayed_prices(replay.ws, ["AAPL", "MSFT"], 60)
    for ticker in ("AAPL", "MSFT"):
        recorded = [t.price for t in ticks if t.ticker == ticker]
        played = [m.price for m in (p.data for p in seen if p.ticker == ticker)]
        assert len(played) >= 10
        # The replay loops: the played prices are a run of the recording, wrapped around.
        looped = recorded * (len(played) // len(recorded) + 2)
        assert any(looped[k : k + len(played)] == played for k in range(len(recorded))), (
            ticker,
            played[:5],
            recorded[:5],
        )

    # A ticker the replay does not have is refused by the server: a clear error.
    refused = run(
        "record", "--out", str(tmp_path / "none.jsonl"), "--url", replay.ws, "--tickers", "ZZZZ"
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "unknown_ticker" in refused.stderr and "refused every ticker" in refused.stderr


def test_record_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    dead = f"ws://127.0.0.1:{free_port()}"
    out = tmp_path / "x.jsonl"
    missing_dir = tmp_path / "no" / "such" / "dir.jsonl"
    assert_one_clear_line(
        run("record", "--out", str(missing_dir), "--tickers", "AAPL"), 2, "does not exist"
    )
    assert_one_clear_line(
        run("record", "--out", str(tmp_path), "--tickers", "AAPL"), 2, "is a directory"
    )
    assert_one_clear_line(
        run("record", "--out", str(out), "--tickers", "AAPL,NOT VALID"), 2, "invalid ticker"
    )
    assert_one_clear_line(
        run("record", "--out", str(out), "--url", dead, "--tickers", "AAPL"),
        1,
        "connection refused",
    )
    assert not out.exists()  # nothing created (or truncated) when nothing could be recorded
    for flag, value in (("--duration", "0"), ("--max-messages", "-1")):
        assert_one_clear_line(
            run("record", "--out", str(out), "--tickers", "A", flag, value), 2, "must be positive"
        )


def test_record_stopped_or_killed_keeps_what_it_got(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(*FAST_SIM)
    for sig in (signal.SIGINT, signal.SIGKILL):
        out = tmp_path / f"live-{sig}.jsonl"
        proc = command(
            "record",
            "--out",
            str(out),
            "--url",
            server.ws,
            "--tickers",
            "AAPL,MSFT",
            "--progress-every",
            "0.1",
        )
        wait_for_lines(out, 21, proc)  # the header and 20 ticks
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
        ticks = load_jsonl(out)  # every line complete: progress never went into the file
        assert len(ticks) >= 20
        assert "Traceback" not in err
        assert "recording: " in err and " ticks, 2 tickers, 00:00:0" in err  # progress lines
        if sig == signal.SIGINT:
            assert proc.returncode == 0
            assert f"wrote {len(ticks)} ticks of 2 tickers to {out}" in err
