"""server/deadlines.DeadlineClock: one timer sweeping many connections' deadlines."""

from __future__ import annotations

import asyncio

from stockfeed.server.deadlines import DeadlineClock, PerLoop


class Conn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False


async def test_each_key_is_acted_on_once_after_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[str, float]] = []
    started = loop.time()
    clock: DeadlineClock[Conn] = DeadlineClock(
        loop, lambda c: fired.append((c.name, loop.time() - started)), tick=0.02
    )
    a, b, c = Conn("a"), Conn("b"), Conn("c")
    clock.arm(a, 0.05)
    clock.arm(b, 0.15)
    clock.arm(c, 0.10)
    clock.disarm(c)
    await asyncio.sleep(0.3)
    assert [name for name, _ in fired] == ["a", "b"]
    assert all(at >= wanted for (_, at), wanted in zip(fired, (0.05, 0.15), strict=True))
    assert clock.pending == {} and clock.handle is None, "the timer stops when nothing is due"


async def test_arm_replaces_and_arm_once_keeps_a_running_deadline() -> None:
    loop = asyncio.get_running_loop()
    clock: DeadlineClock[Conn] = DeadlineClock(loop, lambda c: None)
    a = Conn("a")
    clock.arm(a, 10.0)
    clock.arm_once(a, 100.0)
    remaining = clock.remaining(a)
    assert remaining is not None and remaining <= 10.0
    clock.arm(a, 100.0)
    remaining = clock.remaining(a)
    assert remaining is not None and remaining > 10.0
    clock.disarm(a)
    assert clock.remaining(a) is None
    assert clock.handle is not None
    clock.handle.cancel()


async def test_an_action_may_arm_again_and_a_failing_one_does_not_stop_the_rest() -> None:
    loop = asyncio.get_running_loop()
    seen: list[str] = []

    def act(conn: Conn) -> None:
        seen.append(conn.name)
        if conn.name == "boom":
            raise RuntimeError("one connection's bug")
        if seen.count(conn.name) < 3:
            clock.arm(conn, 0.01)  # e.g. a client that reads slowly gets another period

    clock: DeadlineClock[Conn] = DeadlineClock(loop, act, tick=0.01)
    clock.arm(Conn("boom"), 0.0)
    clock.arm(Conn("again"), 0.0)
    await asyncio.sleep(0.2)
    assert seen.count("boom") == 1 and seen.count("again") == 3
    assert clock.pending == {} and clock.handle is None


async def test_settled_entries_leave_before_their_deadline() -> None:
    loop = asyncio.get_running_loop()
    fired: list[Conn] = []
    clock: DeadlineClock[Conn] = DeadlineClock(
        loop, fired.append, settled=lambda c: c.done, tick=0.01
    )
    a, b = Conn("a"), Conn("b")
    clock.arm(a, 60.0)
    clock.arm(b, 60.0)
    a.done = True
    await asyncio.sleep(0.05)
    assert list(clock.pending) == [b] and fired == []
    clock.disarm(b)


def test_one_clock_per_loop() -> None:
    clocks = PerLoop(lambda loop: DeadlineClock(loop, lambda c: None))
    first = asyncio.new_event_loop()
    second = asyncio.new_event_loop()
    try:
        assert clocks(first) is clocks(first)
        one = clocks(first)
        assert clocks(second) is not one and clocks(second).loop is second
    finally:
        first.close()
        second.close()
