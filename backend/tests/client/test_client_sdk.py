"""The Python client (`stockfeed.client`) against real servers, including restarts.

A scripted WebSocket server (real sockets, in this process) covers what a real server
does not do on demand: hostile frames, duplicates, an epoch change, an oversized frame,
and checks the exact resume request the client sends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import signal
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from websockets.asyncio.server import ServerConnection, serve

from stockfeed.client import (
    AuthError,
    Backoff,
    Bar,
    BarData,
    Bars,
    ConnectError,
    ConnectionState,
    ErrorMessage,
    Message,
    Pong,
    PriceUpdate,
    ProtocolError,
    ServerShutdown,
    Snapshot,
    StockfeedClient,
    Subscribed,
    UnknownMessage,
    Unsubscribed,
    parse_message,
    ws_url,
)
from tests.servers import StartServer, free_port

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")
# Come back quickly after a graceful stop, so the restart tests stay short.
QUICK_RETRY = {"STOCKFEED_SHUTDOWN_RETRY_AFTER_MS": "300"}
Price = PriceUpdate | Snapshot


def quick_backoff() -> Backoff:
    return Backoff(initial=0.1, maximum=1.0)


async def read_until(
    client: StockfeedClient, done: Callable[[Message], bool], timeout: float = 20.0
) -> list[Message]:
    """Messages up to and including the first one `done` accepts."""
    out: list[Message] = []
    async with asyncio.timeout(timeout):
        async for msg in client:
            out.append(msg)
            if done(msg):
                return out
    raise AssertionError(f"stream ended before the awaited message: {out[-5:]}")


async def read_prices(client: StockfeedClient, count: int, timeout: float = 20.0) -> list[Message]:
    """Messages until `count` price messages (updates or snapshots) have come."""
    seen = 0

    def enough(msg: Message) -> bool:
        nonlocal seen
        seen += isinstance(msg, Price)
        return seen >= count

    return await read_until(client, enough, timeout)


def prices_of(messages: list[Message], ticker: str | None = None) -> list[Price]:
    return [m for m in messages if isinstance(m, Price) and (ticker is None or m.ticker == ticker)]


def assert_no_silent_gap(messages: list[Message]) -> None:
    """Per ticker: seq strictly increasing; every jump is a gap snapshot (or conflation)."""
    for ticker in {m.ticker for m in prices_of(messages)}:
        got = prices_of(messages, ticker)
        for before, after in itertools.pairwise(got):
            assert after.seq > before.seq, (ticker, before.seq, after.seq)
            if after.seq != before.seq + 1:
                assert isinstance(after, Snapshot) and after.gap, (ticker, before, after)


def restart_on(start_server: StartServer, old: Any, *args: str, env: dict[str, str]) -> Any:
    """A new server process on the old one's port (the last --port flag wins)."""
    server = start_server(*args, "--port", str(old.port), env=env, wait=False)
    server.port, server.base, server.ws = old.port, old.base, old.ws
    return server.wait_ready()


async def test_subscribe_unsubscribe_and_ticker_errors(start_server: StartServer) -> None:
    server = start_server(*FAST_SIM)
    all_seen: list[Message] = []
    async with StockfeedClient(server.ws, ["aapl"], ping_interval=0.2) as client:
        assert client.state == ConnectionState.CONNECTED
        first = await read_until(client, lambda m: isinstance(m, Subscribed))
        ack = first[-1]
        assert isinstance(ack, Subscribed) and ack.tickers == ("AAPL",)
        assert client.epochs == {"AAPL": ack.epochs["AAPL"]}

        await client.subscribe("msft", "BAD TICKER")
        answer = await read_until(client, lambda m: isinstance(m, Subscribed))
        errors = [m for m in answer if isinstance(m, ErrorMessage)]
        assert [(e.code, e.ticker) for e in errors] == [("invalid_ticker", "BAD TICKER")]
        assert isinstance(answer[-1], Subscribed) and answer[-1].tickers == ("AAPL", "MSFT")
        # The refused ticker is forgotten: a reconnect will not ask for it again.
        assert client.tickers == ("AAPL", "MSFT")
        both = await read_prices(client, 30)
        assert {m.ticker for m in prices_of(both)} == {"AAPL", "MSFT"}

        await client.unsubscribe("MSFT")
        left = await read_until(client, lambda m: isinstance(m, Unsubscribed))
        assert isinstance(left[-1], Unsubscribed) and left[-1].tickers == ("AAPL",)
        after = await read_prices(client, 20)
        # Updates in flight when we unsubscribed are dropped by the client.
        assert {m.ticker for m in prices_of(left + after)} <= {"AAPL"}
        assert prices_of(after)

        # The client's own pings measure the round trip; their pongs are not passed on.
        while client.latency_ms is None:
            all_seen += await read_prices(client, 1)
        assert client.latency_ms >= 0
        all_seen = first + answer + both + left + after + all_seen
    assert client.state == ConnectionState.CLOSED
    assert not [m for m in all_seen if isinstance(m, Pong | UnknownMessage)]
    assert_no_silent_gap(all_seen)
    # Nothing was missed on one connection: consecutive seq for every ticker.
    for ticker in ("AAPL", "MSFT"):
        seqs = [m.seq for m in prices_of(all_seen, ticker)]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (ticker, seqs[:10])


async def test_restart_mid_stream_with_redis_resumes_without_gap(
    start_server: StartServer, redis_url: str
) -> None:
    """The client's server restarts while another keeps publishing: the client resumes on
    the new process, which replays what it missed from the history in Redis."""
    args = (*FAST_SIM, "--broker", redis_url, "--tickers", "AAPL,MSFT", "--leader-ttl", "1")
    start_server(*args)  # the other process: keeps the feed going during the restart
    server = start_server(*args, env=QUICK_RETRY)
    async with StockfeedClient(server.ws, ["AAPL", "MSFT"], backoff=quick_backoff()) as client:
        before = await read_prices(client, 30)
        epochs = dict(client.epochs)
        stopping = asyncio.create_task(asyncio.to_thread(server.stop))
        notice = await read_until(client, lambda m: isinstance(m, ServerShutdown))
        assert isinstance(notice[-1], ServerShutdown) and notice[-1].retry_after_ms == 300
        await stopping
        assert client.state == ConnectionState.RECONNECTING  # no server: cannot be connected
        restarted = restart_on(start_server, server, *args, env=QUICK_RETRY)
        # Read until both tickers are live again (the replay of each comes first).
        caught_up = {t: max(m.seq for m in prices_of(before, t)) + 20 for t in ("AAPL", "MSFT")}
        pending = set(caught_up)

        def live_again(msg: Message) -> bool:
            if isinstance(msg, Price) and msg.seq >= caught_up[msg.ticker]:
                pending.discard(msg.ticker)
            return not pending

        after = await read_until(client, live_again)
        assert client.reconnects == 1
        assert client.epochs == epochs  # the epoch lives in Redis: same seq space
    assert restarted.health()["replayed"] > 0  # what was published meanwhile came back
    stream = before + notice + after
    assert_no_silent_gap(stream)
    # seq and history live in Redis: the resume replays, nothing is lost or repeated.
    assert not [m for m in prices_of(after) if isinstance(m, Snapshot)]
    for ticker in ("AAPL", "MSFT"):
        seqs = [m.seq for m in prices_of(stream, ticker)]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (ticker, seqs)


async def test_killed_memory_server_comes_back_with_a_gap_snapshot(
    start_server: StartServer,
) -> None:
    """A memory-broker restart loses seq and history: the client must say so (new epoch)."""
    server = start_server(*FAST_SIM, "--tickers", "AAPL")
    async with StockfeedClient(server.ws, ["AAPL"], backoff=quick_backoff()) as client:
        before = await read_prices(client, 10)
        old_epoch = client.epochs["AAPL"]
        await asyncio.to_thread(server.stop, signal.SIGKILL)  # no goodbye: the socket drops
        restart_on(start_server, server, *FAST_SIM, "--tickers", "AAPL", env={})
        after = await read_prices(client, 10)
        assert client.reconnects == 1
    first = prices_of(after)[0]
    assert isinstance(first, Snapshot) and first.gap, first
    assert first.epoch is not None and first.epoch != old_epoch
    assert client.epochs["AAPL"] == first.epoch
    assert_no_silent_gap(after)
    assert prices_of(before)  # the old stream was seen before the crash


async def test_connection_failures_are_clear() -> None:
    dead = f"ws://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectError, match="connection refused"):
        async with StockfeedClient(dead, ["AAPL"]):
            pass
    # Retrying from the start, and giving up after the allowed attempts.
    client = StockfeedClient(
        dead,
        ["AAPL"],
        retry_first_connect=True,
        max_reconnect_attempts=3,
        backoff=Backoff(initial=0.01, maximum=0.05),
    )
    async with client:
        with pytest.raises(ConnectError, match="connection refused"):
            await read_until(client, lambda m: False, timeout=10)
    assert client.connects == 0
    for bad in ("ftp://example.com", "AAPL", ""):
        with pytest.raises(ValueError, match="not a WebSocket URL"):
            StockfeedClient(bad)


def test_ws_url_and_token() -> None:
    assert ws_url("ws://h:1") == "ws://h:1/ws"
    assert ws_url("http://h:1/") == "ws://h:1/ws"
    assert ws_url("https://h/feed/ws?x=1") == "wss://h/feed/ws?x=1"
    with_token = ws_url("ws://h:1", token="a b&c")
    assert with_token == "ws://h:1/ws?access_token=a+b%26c"
    # A token already in the URL is replaced, never sent twice.
    assert ws_url("ws://h:1/ws?access_token=old", token="new") == "ws://h:1/ws?access_token=new"
    client = StockfeedClient("ws://h:1", token="secret")
    assert "secret" not in client.url  # what is shown and logged carries no token


def test_backoff_grows_with_jitter_and_caps() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(12)]
    steps = [min(8.0, 0.5 * 2**n) for n in range(12)]
    for delay, step in zip(delays, steps, strict=True):
        assert step / 2 <= delay <= step
    assert len(set(delays)) == len(delays)  # jittered, not one fixed schedule
    backoff.reset()
    assert backoff.next_delay() <= 0.5
    for _ in range(100):
        assert 2.0 <= backoff.after_hint(2.0) <= 3.0


@pytest.mark.parametrize(
    "frame",
    [
        b"\xff\xfe",
        "not json",
        "[1,2]",
        '"text"',
        "{}",
        '{"type":7}',
        '{"type":"price_update","ticker":"AAPL","seq":"7","timestamp":1,"data":{"price":1}}',
        '{"type":"price_update","ticker":"AAPL","seq":true,"timestamp":1,"data":{"price":1}}',
        '{"type":"price_update","ticker":"AAPL","seq":1,"timestamp":1,"data":{"price":"1"}}',
        '{"type":"price_update","ticker":"AAPL","seq":1,"timestamp":1,"data":[]}',
        '{"type":"snapshot","ticker":"AAPL","seq":1,"timestamp":1,"data":{"price":1},"gap":1}',
        '{"type":"subscribed","tickers":["A"],"epochs":{"A":1}}',
        '{"type":"conflated","ticker":"AAPL","dropped":1.5}',
        '{"type":"error","code":"x"}',
        '{"type":"pong","id":[1]}',
        '{"type":"bars","ticker":"AAPL","interval":"1m","seq":1,"bars":{}}',
        '{"type":"bar","ticker":"AAPL","interval":"1m","seq":1,"bar":{"time":1,"open":1,'
        '"high":1,"low":1,"close":1,"volume":1}}',
        '{"type":"bar","ticker":"AAPL","interval":"1m","seq":1,"bar":{"time":1,"open":"1",'
        '"high":1,"low":1,"close":1,"volume":1,"final":false}}',
        "[" * 100_000,
    ],
)
def test_malformed_frames_are_protocol_errors(frame: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_message(frame)


def test_messages_parse_to_types() -> None:
    raw = (
        '{"type":"snapshot","ticker":"AAPL","seq":4,"timestamp":1.5,"data":{"price":2,'
        '"change":null,"change_percent":null,"volume":10,"open":null,"high":null,"low":null,'
        '"prev_close":null,"market_time":1764101234000},"epoch":"e","stale":true,"age_ms":9,'
        '"extra":"kept in raw"}'
    )
    msg = parse_message(raw)
    assert isinstance(msg, Snapshot)
    assert (msg.ticker, msg.seq, msg.epoch, msg.stale, msg.gap, msg.age_ms) == (
        "AAPL",
        4,
        "e",
        True,
        False,
        9,
    )
    assert msg.data.price == 2.0 and msg.data.volume == 10 and msg.data.open is None
    assert msg.raw == raw and msg.type == "snapshot"
    future = parse_message('{"type":"new_thing","x":1}')
    assert isinstance(future, UnknownMessage) and future.fields == {"type": "new_thing", "x": 1}


def test_bars_parse_to_types_and_the_option_is_checked() -> None:
    bar = '{"time":60,"open":1,"high":2.5,"low":1,"close":2,"volume":null,"final":false}'
    head = '"ticker":"AAPL","interval":"1m"'
    bars = parse_message(f'{{"type":"bars",{head},"seq":4,"bars":[{bar}]}}')
    assert bars == Bars("AAPL", "1m", 4, (BarData(60, 1.0, 2.5, 1.0, 2.0, None, False),))
    one = parse_message(f'{{"type":"bar",{head},"seq":5,"bar":{bar}}}')
    assert isinstance(one, Bar) and one.bar.high == 2.5 and one.type == "bar"
    with pytest.raises(ValueError, match="unknown interval"):
        StockfeedClient("ws://127.0.0.1:1", ["AAPL"], bars=["2m"])


# -- a scripted server -----------------------------------------------------------------


def update(seq: int, price: float = 10.0) -> str:
    return json.dumps(
        {
            "type": "price_update",
            "ticker": "AAPL",
            "seq": seq,
            "timestamp": 1764101234567.0,
            "data": {"price": price, "market_time": 1764101234000},
        }
    )


def snapshot(seq: int, epoch: str, gap: bool = False) -> str:
    body = json.loads(update(seq))
    body.update({"type": "snapshot", "epoch": epoch, "gap": gap})
    return json.dumps(body)


async def test_scripted_server_resume_duplicates_hostile_frames_and_retry_hint() -> None:
    requests: list[dict[str, Any]] = []
    closed_at: list[float] = []
    opened_at: list[float] = []

    async def next_action(ws: ServerConnection) -> dict[str, Any]:
        while True:  # skip the client's pings
            frame = json.loads(await ws.recv())
            if "action" in frame:
                requests.append(frame)
                return dict(frame)

    async def handler(ws: ServerConnection) -> None:
        opened_at.append(time.monotonic())
        number = len(opened_at)
        await next_action(ws)
        if number == 1:
            await ws.send('{"type":"subscribed","tickers":["AAPL"],"epochs":{"AAPL":"e1"}}')
            for frame in [
                snapshot(5, "e1"),
                update(6),
                b"\xff binary garbage",
                "not json",
                '{"type":"price_update","ticker":"AAPL","seq":"x"}',
                '{"type":"brand_new","hello":1}',
                update(7),
                '{"type":"server_shutdown","retry_after_ms":500}',
            ]:
                await ws.send(frame)
            closed_at.append(time.monotonic())
            await ws.close(1001, "going away")
        elif number == 2:
            await ws.send('{"type":"subscribed","tickers":["AAPL"],"epochs":{"AAPL":"e1"}}')
            # A replay overlapping what the client has (7), then a new seq space.
            for frame in [update(6), update(7), update(8), snapshot(3, "e2", gap=True), update(4)]:
                await ws.send(frame)
            await ws.send("x" * 10_000)  # bigger than the client accepts: it must reconnect
            await ws.wait_closed()
        else:
            await ws.send('{"type":"subscribed","tickers":["AAPL"],"epochs":{"AAPL":"e2"}}')
            await ws.send(update(5))
            await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = StockfeedClient(
            f"ws://127.0.0.1:{port}",
            ["AAPL"],
            ping_interval=60,
            max_message_bytes=4096,
            backoff=quick_backoff(),
        )
        async with client:
            got = await read_until(client, lambda m: isinstance(m, PriceUpdate) and m.seq == 5)
            assert client.reconnects == 2
    kinds = [(type(m).__name__, getattr(m, "seq", None)) for m in got]
    assert kinds == [
        ("Subscribed", None),
        ("Snapshot", 5),
        ("PriceUpdate", 6),
        ("UnknownMessage", None),
        ("PriceUpdate", 7),
        ("ServerShutdown", None),
        ("Subscribed", None),
        ("PriceUpdate", 8),
        ("Snapshot", 3),
        ("PriceUpdate", 4),
        ("Subscribed", None),
        ("PriceUpdate", 5),
    ]
    assert client.malformed == 3 and client.duplicates == 2
    assert requests == [
        {"action": "subscribe", "tickers": ["AAPL"]},
        {"action": "subscribe", "tickers": ["AAPL"], "resume": {"AAPL": {"seq": 7, "epoch": "e1"}}},
        {"action": "subscribe", "tickers": ["AAPL"], "resume": {"AAPL": {"seq": 4, "epoch": "e2"}}},
    ]
    # The server asked for 500 ms before coming back; the client waited at least that.
    assert opened_at[1] - closed_at[0] >= 0.5


async def test_token_is_sent_and_refusals_are_final(start_server: StartServer) -> None:
    secret = "client-sdk-test-secret-0123456789abcdef"
    server = start_server("--source", "sim", env={"STOCKFEED_AUTH_SECRET": secret})
    token = jwt.encode({"sub": "sdk", "exp": int(time.time()) + 600}, secret, "HS256")
    async with StockfeedClient(server.ws, ["AAPL"], token=token) as client:
        got = await read_until(client, lambda m: isinstance(m, Subscribed))
        assert isinstance(got[-1], Subscribed) and got[-1].tickers == ("AAPL",)
    expired = jwt.encode({"sub": "sdk", "exp": int(time.time()) - 3600}, secret, "HS256")
    for bad in (None, "not-a-token", expired):
        client = StockfeedClient(server.ws, ["AAPL"], token=bad, backoff=quick_backoff())
        with pytest.raises(AuthError, match="401"):
            async with client:
                await read_until(client, lambda m: False)
        assert client.connects <= 1  # refused for good: no retry loop
    # A wrong path is refused at the handshake (403): final too, with a clear reason.
    with pytest.raises(AuthError, match="HTTP 403"):
        async with StockfeedClient(server.ws + "/not-here", ["AAPL"], token=token):
            pass


def bar_frame(kind: str, seq: int, *bars: tuple[int, float, bool]) -> str:
    items = [
        {"time": t, "open": c, "high": c, "low": c, "close": c, "volume": 10, "final": f}
        for t, c, f in bars
    ]
    body: dict[str, Any] = {"type": kind, "ticker": "AAPL", "interval": "1m", "seq": seq}
    if kind == "bars":
        body["bars"] = items
    else:
        body["bar"] = items[0]
    return json.dumps(body)


async def test_bars_are_asked_for_again_after_a_reconnect_and_merged_by_time() -> None:
    requests: list[dict[str, Any]] = []
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        while True:
            frame = json.loads(await ws.recv())
            if "action" in frame:
                requests.append(frame)
                break
        await ws.send('{"type":"subscribed","tickers":["AAPL"],"epochs":{"AAPL":"e1"}}')
        if connections == 1:
            for frame in [
                snapshot(5, "e1"),
                bar_frame("bars", 5, (0, 1.0, True), (60, 2.0, False)),
                update(6),
                bar_frame("bar", 6, (60, 2.5, False)),
            ]:
                await ws.send(frame)
            await ws.close(1012)  # a restart: reconnect
        else:
            # After the resume: the replay, then the bars afresh (the minute went final).
            for frame in [
                update(7),
                bar_frame("bars", 7, (60, 2.75, True), (120, 3.0, False)),
                update(8),
            ]:
                await ws.send(frame)
            await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = StockfeedClient(
            f"ws://127.0.0.1:{port}", ["AAPL"], bars=["1m"], backoff=quick_backoff()
        )
        async with client:
            got = await read_until(client, lambda m: isinstance(m, PriceUpdate) and m.seq == 8)
            candles = client.candles("aapl", "1m")
    assert [type(m).__name__ for m in got if isinstance(m, Bars | Bar)] == ["Bars", "Bar", "Bars"]
    assert requests == [
        {"action": "subscribe", "tickers": ["AAPL"], "bars": ["1m"]},
        {"action": "subscribe", "tickers": ["AAPL"], "bars": ["1m"],
         "resume": {"AAPL": {"seq": 6, "epoch": "e1"}}},
    ]  # fmt: skip
    assert [(b.time, b.close, b.final) for b in candles] == [
        (0, 1.0, True),
        (60, 2.75, True),
        (120, 3.0, False),
    ]
