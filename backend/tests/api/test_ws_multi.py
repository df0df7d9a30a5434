"""`/ws`: many tickers on one connection, per-ticker errors, and gap-free resume."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import StartServer
from tests.wsutil import MessageSocket, contract_update, recv_json, recv_until, wait_subscribed

pytestmark = pytest.mark.process

FAST_SIM = ("--source", "sim", "--sim-tick-interval", "0.05")


async def subscribe(ws: ClientConnection, tickers: list[Any], **extra: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"action": "subscribe", "tickers": tickers, **extra}))
    return await recv_until(ws, "subscribed")


async def collect(ws: MessageSocket, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    """The next `count` price_update/snapshot messages (other types skipped)."""
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(out) < count:
        msg = await recv_json(ws, max(0.01, deadline - loop.time()))
        if msg["type"] in ("price_update", "snapshot"):
            out.append(msg)
    return out


async def test_many_tickers_with_per_ticker_errors_on_redis(
    start_server: StartServer, redis_url: str
) -> None:
    # On the memory broker it runs in-process (test_ws_endpoints.py).
    server = start_server(
        *FAST_SIM, "--broker", redis_url, env={"STOCKFEED_MAX_SUBSCRIPTIONS": "3"}
    )
    async with connect(server.ws + "/ws") as ws:
        await check_many_tickers_with_per_ticker_errors(ws)


async def check_many_tickers_with_per_ticker_errors(ws: MessageSocket) -> None:
    """A subscribe of good and bad tickers, the per-connection limit, an unsubscribe and
    bad requests, on a `/ws` session (a real socket or in-process) allowing 3 tickers."""
    await ws.send(
        json.dumps({"action": "subscribe", "tickers": ["aapl", "BAD TICKER", 42, "MSFT"]})
    )
    errors = [await recv_until(ws, "error"), await recv_until(ws, "error")]
    assert [e["code"] for e in errors] == ["invalid_ticker", "invalid_ticker"]
    assert errors[0]["ticker"] == "BAD TICKER"
    ack = await recv_until(ws, "subscribed")
    assert ack["tickers"] == ["AAPL", "MSFT"]
    assert set(ack["epochs"]) == {"AAPL", "MSFT"}
    got = await collect(ws, 20)
    assert {m["ticker"] for m in got} == {"AAPL", "MSFT"}
    for ticker in ("AAPL", "MSFT"):
        seqs = [m["seq"] for m in got if m["ticker"] == ticker]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (ticker, seqs)

    # Over the limit: a per-ticker error, the others still subscribed.
    await ws.send(json.dumps({"action": "subscribe", "tickers": ["GOOGL", "TSLA"]}))
    limit = await recv_until(ws, "error")
    assert limit["code"] == "subscription_limit" and limit["ticker"] == "TSLA"
    assert (await recv_until(ws, "subscribed"))["tickers"] == ["AAPL", "GOOGL", "MSFT"]

    await ws.send(json.dumps({"action": "unsubscribe", "tickers": ["MSFT", "GOOGL"]}))
    assert (await recv_until(ws, "unsubscribed"))["tickers"] == ["AAPL"]
    # Drain what was in flight, then only AAPL arrives.
    await asyncio.sleep(0.3)
    while True:
        try:
            await asyncio.wait_for(ws.recv(), 0.05)
        except TimeoutError:
            break
    later = await collect(ws, 10)
    assert {m["ticker"] for m in later} == {"AAPL"}

    for bad in [
        {"action": "subscribe", "tickers": []},
        {"action": "subscribe", "tickers": "AAPL"},
        {"action": "subscribe", "tickers": ["AAPL"], "resume": [1]},
        {"action": "subscribe", "tickers": ["AAPL"], "resume": {"AAPL": -1}},
        {"action": "subscribe", "tickers": ["AAPL"], "resume": {"AAPL": {"seq": "x"}}},
        {"action": "subscribe", "tickers": ["A"] * 200},
        {"action": "dance"},
    ]:
        await ws.send(json.dumps(bad))
        assert (await recv_until(ws, "error"))["code"] == "bad_message", bad


async def read_then_leave(url: str, count: int) -> tuple[int, str]:
    """Subscribe to AAPL, read `count` updates, and return (last seq, epoch)."""
    async with connect(url) as ws:
        ack = await subscribe(ws, ["AAPL"])
        got = await collect(ws, count)
    return got[-1]["seq"], ack["epochs"]["AAPL"]


async def resume_and_check(url: str, last: int, epoch: str | None, outage: float) -> int:
    """Resume after `last`; every seq after it must come exactly once, in order."""
    point: Any = last if epoch is None else {"seq": last, "epoch": epoch}
    async with connect(url) as ws:
        ack = await subscribe(ws, ["AAPL"], resume={"AAPL": point})
        if epoch is not None:
            assert ack["epochs"]["AAPL"] == epoch
        got = await collect(ws, int(outage / 0.05) + 40)
    assert all(m["type"] == "price_update" for m in got), "a snapshot came instead of a replay"
    seqs = [m["seq"] for m in got]
    assert seqs == list(range(last + 1, last + 1 + len(seqs))), seqs[:10]
    return len(seqs)


async def test_resume_after_an_outage_sees_every_seq_once(
    start_server: StartServer, broker_url: str
) -> None:
    server = start_server(*FAST_SIM, "--broker", broker_url, "--tickers", "AAPL")
    last, epoch = await read_then_leave(server.ws + "/ws", 10)
    await asyncio.sleep(3)  # the client is away; ~60 updates go by
    await resume_and_check(server.ws + "/ws", last, epoch, 3)
    # Resume without an epoch works too (the current one is assumed).
    last, _ = await read_then_leave(server.ws + "/ws", 5)
    await asyncio.sleep(1)
    await resume_and_check(server.ws + "/ws", last, None, 1)
    health = server.health()
    assert health["replayed"] > 60


async def test_resume_on_another_process_uses_the_shared_history(
    start_server: StartServer, redis_url: str
) -> None:
    args = (*FAST_SIM, "--broker", redis_url, "--tickers", "AAPL")
    a = start_server(*args)
    b = start_server(*args)
    last, epoch = await read_then_leave(a.ws + "/ws", 10)
    await asyncio.sleep(2)
    # B never had a client on AAPL: its replay comes from the updater's history in Redis.
    await resume_and_check(b.ws + "/ws", last, epoch, 2)


async def test_wrong_epoch_or_lost_history_gets_a_gap_snapshot(
    start_server: StartServer, broker_url: str
) -> None:
    server = start_server(*FAST_SIM, "--broker", broker_url, "--tickers", "AAPL")
    last, epoch = await read_then_leave(server.ws + "/ws", 5)
    for point in ({"seq": last, "epoch": epoch + "x"}, last + 10_000):
        async with connect(server.ws + "/ws") as ws:
            await subscribe(ws, ["AAPL"], resume={"AAPL": point})
            first, *rest = await collect(ws, 10)
        assert first["type"] == "snapshot" and first["gap"] is True
        assert first["epoch"] == epoch
        seqs = [first["seq"]] + [m["seq"] for m in rest]
        assert seqs == list(range(seqs[0], seqs[0] + 10))


async def test_relay_resume_and_publisher_restart(
    start_server: StartServer, redis_url: str
) -> None:
    server = start_server("--source", "none", "--broker", redis_url)
    r = aioredis.Redis.from_url(redis_url)
    url = server.ws + "/ws"
    async with connect(url) as ws:
        ack = await subscribe(ws, ["RELAYR"])
        await wait_subscribed(r, "market:RELAYR")
        for seq in range(1, 11):
            await r.publish("market:RELAYR", contract_update("RELAYR", seq))
        got = await collect(ws, 10)
    assert [m["seq"] for m in got] == list(range(1, 11))
    for seq in range(11, 31):  # published while the client is away
        await r.publish("market:RELAYR", contract_update("RELAYR", seq))
    async with connect(url) as ws:
        await subscribe(
            ws, ["RELAYR"], resume={"RELAYR": {"seq": 10, "epoch": ack["epochs"]["RELAYR"]}}
        )
        replayed = await collect(ws, 20)
        assert [m["seq"] for m in replayed] == list(range(11, 31))
        assert all(m["type"] == "price_update" for m in replayed)
        # The outside publisher restarts at seq 1: a gap snapshot in a new epoch, then live.
        await r.publish("market:RELAYR", contract_update("RELAYR", 1))
        await r.publish("market:RELAYR", contract_update("RELAYR", 2))
        restart = await collect(ws, 2)
    assert restart[0]["type"] == "snapshot" and restart[0]["gap"] is True
    assert restart[0]["seq"] == 1 and restart[0]["epoch"] != ack["epochs"]["RELAYR"]
    assert restart[1]["type"] == "price_update" and restart[1]["seq"] == 2
    await r.aclose()


async def test_failed_resume_with_nothing_cached_still_reports_the_gap(
    start_server: StartServer, redis_url: str
) -> None:
    """A relay that never carried the ticker has no snapshot: the next update is the gap."""
    server = start_server("--source", "none", "--broker", redis_url)
    r = aioredis.Redis.from_url(redis_url)
    async with connect(server.ws + "/ws") as ws:
        await subscribe(ws, ["NEVERSEEN"], resume={"NEVERSEEN": 5})
        # market_status ends the subscribe: updates published before it would come while
        # the client is held, and the gap snapshot would be the newest of them alone.
        await recv_until(ws, "market_status")
        await wait_subscribed(r, "market:NEVERSEEN")
        for seq in (40, 41):
            await r.publish("market:NEVERSEEN", contract_update("NEVERSEEN", seq))
        got = await collect(ws, 2)
    assert got[0]["type"] == "snapshot" and got[0]["gap"] is True and got[0]["seq"] == 40
    assert got[1]["type"] == "price_update" and got[1]["seq"] == 41
    await r.aclose()
