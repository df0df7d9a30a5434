"""Big simulator rounds and big history answers never hold the event loop for long.

The updater yields to the loop once a run of emits has taken `YIELD_AFTER`, so a round
of hundreds of held tickers is written out as it goes (the fan-out's flush is a
`call_soon` callback) instead of after the whole round; a small round costs one yield.
The simulator draws history `HISTORY_CHUNK` bars between yields.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from stockfeed import updater as updater_module
from stockfeed.broker.memory import MemoryBroker
from stockfeed.shared.memory import MemoryStore
from stockfeed.sources import sim as sim_module
from stockfeed.sources.sim import SimSource
from stockfeed.sources.symbols import Directory
from stockfeed.updater import Updater

START = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def leading_updater(source: SimSource, broker: MemoryBroker, tickers: list[str]) -> Updater:
    updater = Updater(
        source=source,
        requested_source="sim",
        broker=broker,
        store=MemoryStore(),
        watchlist=tickers,
        quote_ttl=60.0,
        leader_ttl=5.0,
        owner="test",
    )
    updater.is_leader = True
    updater._lease_until = float("inf")  # as if it held the lock (no _step: no stream task)
    return updater


class FanOut:
    """Stands in for the hub and the fast path: a publish costs `cost` seconds of CPU and
    marks a flush with `call_soon`, as a sink does; the flush records how many it wrote."""

    def __init__(self, cost: float) -> None:
        self.cost = cost
        self.published: list[str] = []
        self.pending: list[str] = []
        self.batches: list[list[str]] = []

    def handler(self, ticker: str, _message: str | bytes) -> None:
        end = time.perf_counter() + self.cost
        while time.perf_counter() < end:
            pass
        self.published.append(ticker)
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append(ticker)

    def flush(self) -> None:
        self.batches.append(self.pending)
        self.pending = []


async def subscribed_broker(fan_out: FanOut, tickers: list[str]) -> MemoryBroker:
    broker = MemoryBroker()
    broker.set_handler(fan_out.handler)
    for ticker in tickers:
        await broker.subscribe(ticker)
    return broker


async def test_a_big_round_is_flushed_as_it_goes_not_after_it() -> None:
    tickers = sorted(Directory.bundled().symbols()[:300])  # what the simulator quotes
    fan_out = FanOut(cost=0.0002)  # 300 x 0.2 ms: a 60 ms round
    broker = await subscribed_broker(fan_out, tickers)
    # Every market open, whatever the hour the test runs.
    source = SimSource(seed=1, tick_interval=30.0, market_hours=False)
    updater = leading_updater(source, broker, tickers)
    rounds = iter([frozenset(tickers)])  # one round (the grid's next point may come soon)
    task = asyncio.create_task(source.stream(lambda: next(rounds, frozenset()), updater.emit))
    try:
        for _ in range(500):
            await asyncio.sleep(0.01)
            if len(fan_out.published) == len(tickers) and not fan_out.pending:
                break
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert updater.published == len(tickers)
    assert sorted(t for batch in fan_out.batches for t in batch) == tickers
    # Written out in many pieces: the round's first update did not wait for its last.
    assert len(fan_out.batches) >= 10
    assert fan_out.batches[0][0] == tickers[0]
    assert len(fan_out.batches[0]) < len(tickers) // 4
    # Each piece is about YIELD_AFTER of publishing (1 ms: ~5 here), with room for a
    # busy machine; never the round.
    assert max(len(b) for b in fan_out.batches) < 60


async def test_a_small_round_yields_at_most_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tickers = ["AAPL", "AMZN", "GOOGL", "MSFT", "NVDA", "TSLA"]
    fan_out = FanOut(cost=0.0)
    broker = await subscribed_broker(fan_out, tickers)
    source = SimSource(seed=1, market_hours=False)
    updater = leading_updater(source, broker, tickers)
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def counting_sleep(delay: float) -> None:
        sleeps.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr(updater_module.asyncio, "sleep", counting_sleep)
    # The updater's clock stands still within a round: what is tested is that a round
    # that takes less than YIELD_AFTER yields once, not how fast this machine emits six
    # updates (on a loaded CI machine six can take longer than a millisecond).
    now = [1000.0]
    monkeypatch.setattr(updater_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    for _ in range(3):  # three rounds, a second apart as far as the updater can tell
        now[0] += 1.0
        # The round's ticks first: what is measured is the updater's yields, not the
        # source's own time.
        ticks = [source.next_tick(ticker) for ticker in tickers]
        for tick in ticks:
            assert tick is not None
            await updater.emit(tick)
    monkeypatch.undo()
    assert updater.published == 18
    assert len(sleeps) <= 3


async def test_history_draws_its_bars_in_chunks_between_yields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = SimSource(seed=3, now=lambda: START, market_hours=False)
    turns = 0
    done = False

    async def count_turns() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    bars = await source.history("AAPL", "1m", "5d")
    done = True
    await counter
    # Five UTC days (market hours off): four whole ones and today's to 08:00, the minute
    # that begins at 08:00 included.
    assert len(bars) == 4 * 1440 + 8 * 60 + 1
    # The other task ran between the chunks (a day, or HISTORY_CHUNK bars: 50), never
    # waited for all 6,241 bars at once.
    assert turns >= len(bars) // sim_module.HISTORY_CHUNK
    # Chunking changes nothing about the bars: the same as a source that never yields.
    monkeypatch.setattr(sim_module, "HISTORY_CHUNK", 10**9)
    again = SimSource(seed=3, now=lambda: START, market_hours=False)
    assert await again.history("AAPL", "1m", "5d") == bars
