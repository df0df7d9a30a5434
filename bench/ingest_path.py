"""The Python of taking a message in, without sockets: µs per message by tickers held.

`make bench`'s `wide` scenario measures a real server, where each message also costs a
`write` (and, on loopback, the reader's side of it) and the event loop. This one feeds
RESP bytes, as Redis sends them, straight into the pub/sub link's `_received`, through the
broker's dispatch and the hub to one fast-path connection per ticker whose transport only
counts writes: what is left is the Python per message and the memory it touches. With
more tickers each message touches colder memory (its ticker's ring, latest, liveness, its
client's connection and sink), so the figure grows with the tickers held even though the
code run is the same.

    .venv/bin/python -m bench.ingest_path [--tickers 20,200,2000,8000] [--per-read 34]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, NamedTuple

import uvloop
from stockfeed import protocol
from stockfeed.broker.memory import MemoryBroker
from stockfeed.broker.pubsub_link import PubSubLink
from stockfeed.fanout.hub import Hub
from stockfeed.market_hours import MarketSession
from stockfeed.server.fast_websocket import Sink, broker_batch_hooks
from stockfeed.server.sink_connection import SinkConnection
from stockfeed.shared.memory import MemoryStore


class _Address(NamedTuple):
    host: str
    port: int


class _WebSocket:
    """What a connection reads of its WebSocket before anything is sent."""

    def __init__(self, port: int) -> None:
        self.client = _Address("198.51.100.7", port)
        self.scope: dict[str, Any] = {"type": "websocket", "extensions": {}}


class _Transport:
    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class _Protocol:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport = _Transport()


class _AlwaysOpen:
    def status(self, ticker: str, at: Any = None) -> MarketSession:
        return MarketSession("XNYS", True, "regular", None, None)


class _Hooks:
    def __init__(self) -> None:
        self.begin, self.end = broker_batch_hooks()

    def begin_batch(self) -> None:
        self.begin()

    def end_batch(self) -> None:
        self.end()


def _resp(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _update(ticker: str, seq: int) -> bytes:
    data = {"price": 100.0 + seq % 50, "change": 0.5, "change_percent": 0.5, "volume": seq}
    text = protocol.dumps(
        {"type": "price_update", "ticker": ticker, "seq": seq, "timestamp": 1.7e12, "data": data}
    )
    return text.encode()


async def _measure(tickers: int, per_read: int, messages: int) -> tuple[float, int]:
    """Best µs per message of three passes, and the writes made."""
    hub = Hub(
        broker=MemoryBroker(),
        store=MemoryStore(max_tickers=tickers * 4),
        clock=_AlwaysOpen(),  # type: ignore[arg-type]
        quote_ttl=60.0,
        heartbeat_interval=30.0,
        max_tickers=tickers,
    )
    await hub.refresh_epoch()
    loop = asyncio.get_running_loop()
    names = [f"T{i:05d}" for i in range(tickers)]
    sinks = []
    for i, name in enumerate(names):
        sink = Sink(_Protocol(loop))  # type: ignore[arg-type]
        conn = SinkConnection(_WebSocket(1024 + i), sink, stuck_timeout=10.0)  # type: ignore[arg-type]
        hub.connect(conn)
        if not await hub.subscribe(conn, name):
            raise SystemExit(f"the hub refused {name}")
        sinks.append(sink)
    await asyncio.sleep(0.05)  # the subscribes' last steps (their held updates released)
    channels = {f"market:{t}".encode(): t for t in names}

    def on_data(channel: bytes, payload: bytes) -> None:  # the Redis broker's dispatch
        hub.on_message(channels[channel], payload)

    link = PubSubLink(on_data, _Hooks(), rest=0)
    seqs = dict.fromkeys(names, 0)
    reads: list[bytes] = []
    step = 7919  # a prime: consecutive messages go to tickers far apart, as a market's do
    for start in range(0, messages, per_read):
        chunk = []
        for k in range(start, min(messages, start + per_read)):
            name = names[(k * step) % tickers]
            seqs[name] += 1
            chunk.append(_resp(b"message", f"market:{name}".encode(), _update(name, seqs[name])))
        reads.append(b"".join(chunk))
    third = len(reads) // 3
    best = float("inf")
    for part in range(3):
        started = time.perf_counter()
        for data in reads[part * third : (part + 1) * third]:
            link._received(data)
        best = min(best, time.perf_counter() - started)
    writes = sum(s._protocol.transport.writes for s in sinks)  # type: ignore[attr-defined]
    return 1e6 * best / (third * per_read), writes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", default="20,200,2000,8000", help="comma-separated")
    parser.add_argument("--per-read", type=int, default=34, help="messages per read from Redis")
    parser.add_argument("--messages", type=int, default=150_000)
    args = parser.parse_args(argv)
    print(f"{'tickers':>8}  {'us/msg':>7}  writes   ({args.per_read} messages a read, best of 3)")
    for n in (int(t) for t in args.tickers.split(",")):
        per_msg, writes = uvloop.run(_measure(n, args.per_read, args.messages))
        print(f"{n:>8,}  {per_msg:>7.2f}  {writes:,}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
