"""CPU time and resident memory of a process and its descendants, read from /proc."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from stockfeed.testing.processes import tcp_sockets

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, ()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes, in seconds."""
    user, system = cpu_split(pids)
    return user + system


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """utime and stime of the given processes, in seconds: time in the process's own code
    and time in the kernel on its behalf (its system calls; on loopback, a write also
    delivers the segment to the reader)."""
    user = system = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            user += int(fields[11])  # utime, stime (fields 14, 15)
            system += int(fields[12])
    return user / _TICKS, system / _TICKS


def rss_bytes(pids: list[int]) -> int:
    """VmRSS summed over the given processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def tree_rss(pid: int) -> int:
    return rss_bytes(descendants(pid))


@dataclass(slots=True)
class CpuMeter:
    """CPU % of a process tree (100 % = one core) between `start()` and `stop()`."""

    pids: list[int]
    _cpu0: tuple[float, float] = (0.0, 0.0)
    _wall0: float = 0.0
    # Of the last window: % in the processes' own code and % in the kernel for them.
    user_pct: float = 0.0
    system_pct: float = 0.0

    @classmethod
    def tree(cls, pid: int) -> CpuMeter:
        return cls(descendants(pid))

    def start(self) -> None:
        self._cpu0 = cpu_split(self.pids)
        self._wall0 = time.monotonic()

    def stop(self) -> float:
        wall = time.monotonic() - self._wall0
        user, system = cpu_split(self.pids)
        if wall <= 0:
            return 0.0
        self.user_pct = 100.0 * (user - self._cpu0[0]) / wall
        self.system_pct = 100.0 * (system - self._cpu0[1]) / wall
        return self.user_pct + self.system_pct


# /proc/net/tcp states (include/net/tcp_states.h) as the server side sees a connection.
_SERVER_SIDE = {1: "open", 4: "closing", 5: "closing", 7: "closing", 9: "closing", 11: "closing"}


def server_side_states(server_port: int, client_ports: set[int]) -> dict[str, int]:
    """How the server's end of each given client connection stands: `open`, `closing`
    (the server closed it; the FIN waits behind unread data) or `gone` (no socket left: the
    server aborted it, or it finished closing)."""
    found: dict[int, str] = {}
    for sock in tcp_sockets():
        if sock.local_port == server_port and sock.remote_port in client_ports:
            state = sock.state
            found[sock.remote_port] = _SERVER_SIDE.get(state, f"tcp-state-{state}")
    out: dict[str, int] = {}
    for port in client_ports:
        label = found.get(port, "gone")
        out[label] = out.get(label, 0) + 1
    return out
