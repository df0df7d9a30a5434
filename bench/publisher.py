"""The publisher: a separate process that PUBLISHes contract `price_update`s on `market:{T}`.

It runs in its own process so that it never shares the load generator's core. Messages are
spread round-robin over the tickers at a steady total rate, sent in small Redis pipelines
(one per millisecond or so). `seq` is consecutive per ticker and carries on across runs of
one publisher; `timestamp` is the wall-clock time (epoch ms) at which the message was built,
immediately before it is sent.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import redis

# At most one pipeline per TICK_S (more often costs more wake-ups than it gains); a batch
# never holds more than MAX_BATCH messages.
TICK_S = 0.001
MAX_BATCH = 500


@dataclass(slots=True)
class Quote:
    """A plausible random walk, so messages look like real ones (~250 bytes each)."""

    price: float
    prev_close: float
    open: float
    high: float
    low: float
    volume: int

    @classmethod
    def start(cls, rng: random.Random) -> Quote:
        prev = round(rng.uniform(20.0, 900.0), 2)
        first = round(prev * (1 + rng.uniform(-0.01, 0.01)), 2)
        return cls(first, prev, first, first, first, rng.randrange(10_000, 5_000_000))

    def step(self, rng: random.Random) -> None:
        self.price = round(max(0.01, self.price * (1 + rng.gauss(0.0, 0.0005))), 2)
        self.high = max(self.high, self.price)
        self.low = min(self.low, self.price)
        self.volume += rng.randrange(1, 500)


def price_update(ticker: str, seq: int, timestamp_ms: float, q: Quote) -> str:
    """The contract's `price_update` (DESIGN.md, wire protocol v1), compact JSON, in order."""
    change = q.price - q.prev_close
    return (
        f'{{"type":"price_update","ticker":"{ticker}","seq":{seq},'
        f'"timestamp":{timestamp_ms:.3f},"data":{{"price":{q.price},'
        f'"change":{round(change, 4)},"change_percent":{round(change / q.prev_close * 100, 4)},'
        f'"volume":{q.volume},"open":{q.open},"high":{q.high},"low":{q.low},'
        f'"prev_close":{q.prev_close},"market_time":{int(timestamp_ms) // 1000 * 1000}}}}}'
    )


@dataclass(slots=True)
class TickerLog:
    """What was published on one ticker during one run: seq `first` .. `first + len - 1`."""

    first: int
    timestamps: array[float] = field(default_factory=lambda: array("d"))

    @property
    def last(self) -> int:
        return self.first + len(self.timestamps) - 1


def publish(
    client: redis.Redis,
    tickers: list[str],
    rate: float,
    duration: float,
    seqs: dict[str, int],
    quotes: dict[str, Quote],
    rng: random.Random,
) -> dict[str, Any]:
    logs = {t: TickerLog(seqs.get(t, 0) + 1) for t in tickers}
    channels = {t: f"market:{t}" for t in tickers}
    for t in tickers:
        quotes.setdefault(t, Quote.start(rng))
    total = int(rate * duration)
    sent = 0
    nt = len(tickers)
    max_lag = 0.0
    t0 = time.monotonic()
    wall0 = time.time()
    last_batch = t0 - TICK_S
    while sent < total:
        now = time.monotonic()
        due = min(total, int(rate * (now - t0)) + 1)
        if due > sent:
            max_lag = max(max_lag, (due - sent - 1) / rate)
            last_batch = now
            pipe = client.pipeline(transaction=False)
            for _ in range(min(due - sent, MAX_BATCH)):
                ticker = tickers[sent % nt]
                quote = quotes[ticker]
                quote.step(rng)
                seq = seqs.get(ticker, 0) + 1
                seqs[ticker] = seq
                ts = time.time() * 1000.0
                logs[ticker].timestamps.append(round(ts, 3))
                pipe.publish(channels[ticker], price_update(ticker, seq, ts, quote))
                sent += 1
            pipe.execute()
            continue
        # Sleep until the next message is due, but batch at most once per TICK_S: waking up
        # costs more than a message.
        wake = max(t0 + sent / rate, last_batch + TICK_S)
        time.sleep(max(0.0, min(0.05, wake - time.monotonic())))
    elapsed = time.monotonic() - t0
    return {
        "sent": sent,
        "started_at": wall0,
        "elapsed_s": elapsed,
        "rate": sent / elapsed if elapsed > 0 else 0.0,
        "max_lag_s": max_lag,
        "logs": {t: (log.first, log.timestamps) for t, log in logs.items()},
    }


def publisher_main(conn: Connection, redis_url: str, seed: int) -> None:
    """Serve `("publish", tickers, rate, duration)` requests until `("stop",)` or EOF."""
    client = redis.Redis.from_url(redis_url)
    client.ping()
    rng = random.Random(seed)
    seqs: dict[str, int] = {}
    quotes: dict[str, Quote] = {}
    conn.send(("ready",))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            break
        if request[0] == "stop":
            break
        _, tickers, rate, duration = request
        try:
            conn.send(("done", publish(client, tickers, rate, duration, seqs, quotes, rng)))
        except redis.RedisError as exc:
            conn.send(("error", f"publishing to Redis failed: {exc}"))
    client.close()


class Publisher:
    """Handle on the publisher process (the parent side)."""

    def __init__(self, redis_url: str, seed: int = 1) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=publisher_main,
            args=(child, redis_url, seed),
            name="bench-publisher",
            daemon=True,
        )
        self.process.start()
        child.close()
        if not self._conn.poll(30) or self._conn.recv()[0] != "ready":
            raise RuntimeError(f"the publisher could not reach Redis at {redis_url}")

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def start(self, tickers: list[str], rate: float, duration: float) -> None:
        self._conn.send(("publish", tickers, rate, duration))

    def wait(self, timeout: float) -> dict[str, Any]:
        if not self._conn.poll(timeout):
            raise TimeoutError("the publisher did not finish in time")
        kind, payload = self._conn.recv()
        if kind == "error":
            raise RuntimeError(payload)
        result: dict[str, Any] = payload
        return result

    def close(self) -> None:
        try:
            self._conn.send(("stop",))
        except OSError:
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
