"""Small helpers for talking raw HTTP/1.1 to a real server over a real socket: what a
client reads (statuses, JSON error bodies, the server's close) and what the server holds
(its RSS)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any

import httptools


def read_all(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """What the server sends until it closes (True) or `timeout` passes (False)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except TimeoutError:
        return out, False
    except ConnectionResetError:
        pass
    return out, True


def connect_from(
    port: int, source: str = "127.0.0.1", timeout: float = 5.0, rcvbuf: int | None = None
) -> socket.socket:
    """A client socket to 127.0.0.1:`port` from `source` (127.0.0.1 is exempt from the
    per-IP limits by default, 127.0.0.2 and the rest of 127/8 are not), with a receive
    buffer of `rcvbuf` bytes if given (set before the connect: shrunk after it, below
    the window already offered, the kernel drops what arrives, ACKs included)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def exchange(
    port: int, request: bytes, timeout: float = 5.0, source: str = "127.0.0.1"
) -> tuple[bytes, bool]:
    with connect_from(port, source, timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return read_all(sock, timeout)


def refusal(reply: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, JSON body) of a refusal, which must say `Connection: close`."""
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, _, value in (h.partition(": ") for h in lines)}
    assert headers.get("connection") == "close", reply
    assert headers.get("content-type") == "application/json", reply
    assert int(headers["content-length"]) == len(body), reply
    parsed: dict[str, Any] = json.loads(body)
    assert set(parsed["error"]) == {"code", "message"}, parsed
    return int(status_line.split(" ")[1]), headers, parsed


def get(target: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n"


class Responses:
    """HTTP/1.1 responses parsed from a byte stream, in order: (status, body) each."""

    def __init__(self) -> None:
        self.done: list[tuple[int, bytes]] = []
        self._body = b""
        self._parser = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self._parser.get_status_code(), self._body))
        self._body = b""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def wait_closed(sock: socket.socket, within: float) -> float | None:
    """Seconds until the server closed `sock` (EOF or reset), reading and dropping what
    it sends; None if still open after `within`."""
    started = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - started < within:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    return None
