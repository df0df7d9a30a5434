"""The test harness's own promises (stockfeed.testing.processes): a port is given to one
caller at a time, and a server is ready only when the socket that answers is its own."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from stockfeed.testing import processes
from stockfeed.testing.processes import HOST, ManagedProcess, ProcessFailed, free_port

pytestmark = pytest.mark.process


def test_a_port_is_not_given_twice_while_it_may_still_be_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The kernel may offer the same free port to two callers in a row (here: always,
    until the third offer); the second caller is given another."""
    # Its own record of ports given out: in the shared one, parallel workers may have been
    # given the last offer too (then the search asks the kernel again, past the offers).
    monkeypatch.setattr(processes, "_PORTS_DIR", tmp_path / "ports")
    first = free_port()  # a port given out now: offered again below
    second = free_port()
    offers = iter([first, first, second, first, second + 1000])

    class Offering(socket.socket):
        def getsockname(self) -> tuple[str, int]:
            return (HOST, next(offers))

    monkeypatch.setattr(processes.socket, "socket", Offering)
    assert (processes._PORTS_DIR / str(first)).exists()
    given = free_port()
    assert given == second + 1000, "every earlier offer was given out lately"


class _Server(ManagedProcess):
    """A process that listens on `port` (or, with `listen=False`, only sleeps) and
    whose probe always says yes: readiness then rests on who holds the socket."""

    def __init__(self, port: int, log: Path, listen: bool) -> None:
        self.port = port
        code = "import time\n"
        if listen:
            code += f"import socket\ns = socket.socket()\ns.bind(({HOST!r}, {port}))\ns.listen()\n"
        code += "time.sleep(30)\n"
        super().__init__([sys.executable, "-c", code], log, name=f"server :{port}")

    def is_ready(self) -> bool:
        return True


def test_ready_only_when_the_listening_socket_is_its_own(tmp_path: Path) -> None:
    port = free_port()
    other = socket.socket()  # another server on the same port, answering every probe
    other.bind((HOST, port))
    other.listen()
    impostor = _Server(port, tmp_path / "a.log", listen=False).start()
    try:
        with pytest.raises(ProcessFailed, match="not ready"):
            impostor.wait_ready(timeout=1.0)
    finally:
        impostor.stop()
        other.close()
    real = _Server(port, tmp_path / "b.log", listen=True).start()
    try:
        assert real.wait_ready(timeout=10.0) is real
    finally:
        real.stop()
