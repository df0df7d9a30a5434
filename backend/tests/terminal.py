"""`stockfeed watch` on a real pseudo-terminal, for the tests of its table."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable


def watch_on_terminal(
    url: str, tickers: tuple[str, ...], done: Callable[[str], bool], within: float = 30
) -> str:
    """Run `stockfeed watch --url URL TICKERS...` on a 120x30 terminal until `done` says
    what it drew (decoded) is enough or `within` seconds passed, stop it with Ctrl-C
    (which must end it with status 0) and return all it drew."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKFEED_")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "30"})
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stockfeed.cli", "watch", "--url", url, *tickers],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                screen += os.read(master, 65536)
            if done(screen.decode(errors="replace")):
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return screen.decode(errors="replace")
