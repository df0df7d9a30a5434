"""The AsyncAPI document (`stockfeed/spec/asyncapi.yaml`) against the real server.

- The document is valid AsyncAPI 3.0.0: checked against the official JSON Schema of the
  specification (vendored from @asyncapi/specs, see fixtures/asyncapi/README.md), every
  reference resolves, every schema compiles as JSON Schema 2020-12, every example fits.
- A real server is driven to send every server->client message type; each one read is
  validated (wsutil does it for every message it reads), and a type never seen fails.
- Wrong messages fail the validation, so the check can fail.
- The server serves the very file.
"""

from __future__ import annotations

import copy
import json
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from stockfeed import spec
from tests.servers import StartServer
from tests.wsutil import (
    SEEN,
    check_server_message,
    contract_update,
    load_spec,
    recv_json,
    recv_until,
    slow_client,
    wait_subscribed,
)

pytestmark = pytest.mark.process

SPEC_FILE = Path(spec.__file__).with_name("asyncapi.yaml")
OFFICIAL_SCHEMA = Path(__file__).parents[1] / "fixtures" / "asyncapi" / "asyncapi-3.0.0.schema.json"
PROTOCOL_MD = Path(__file__).parents[3] / "docs" / "protocol.md"


def official_validator() -> Draft7Validator:
    return Draft7Validator(json.loads(OFFICIAL_SCHEMA.read_text()))


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def lookup(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


# -- the document ------------------------------------------------------------------------


def test_document_is_valid_asyncapi_3() -> None:
    doc = yaml.safe_load(SPEC_FILE.read_text())
    assert doc["asyncapi"] == "3.0.0"
    problems = [f"{e.json_path}: {e.message}" for e in official_validator().iter_errors(doc)]
    assert problems == []
    for ref in refs(doc):
        lookup(doc, ref)
    for name, operation in doc["operations"].items():
        channel = operation["channel"]["$ref"]
        for ref in [m["$ref"] for m in operation["messages"]]:
            # AsyncAPI 3: an operation's messages are messages of its own channel.
            assert ref.startswith(channel + "/messages/"), (name, ref)
        reply = operation.get("reply")
        if reply:
            for ref in [m["$ref"] for m in reply["messages"]]:
                assert ref.startswith(reply["channel"]["$ref"] + "/messages/"), (name, ref)
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {"/ws", "/ws/stocks/{ticker}"}


def test_every_schema_compiles_and_every_example_fits() -> None:
    doc = yaml.safe_load(SPEC_FILE.read_text())
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)  # raises SchemaError naming the problem
        assert name
    checked = load_spec()
    examples = 0
    for key, message in doc["components"]["messages"].items():
        Draft202012Validator.check_schema(message["payload"])
        sent_by_server = message["name"] in checked.server
        assert sent_by_server or message["name"] in checked.client, key
        for example in message.get("examples", []):
            assert checked.errors(example["payload"], from_server=sent_by_server) == [], key
            examples += 1
    assert examples >= len(doc["components"]["messages"])


def test_document_lists_the_messages_of_protocol_md() -> None:
    """The prose and the document name the same server messages."""
    text = PROTOCOL_MD.read_text()
    section = text.split("## Server → client messages", 1)[1].split("## Client → server", 1)[0]
    documented = {
        name
        for heading in re.findall(r"^### (.+)$", section, re.MULTILINE)
        for name in re.findall(r"`([a-z_]+)`", heading)
    }
    assert documented == set(load_spec().server)
    assert "asyncapi.yaml" in text


def test_the_official_schema_rejects_a_broken_document() -> None:
    doc = yaml.safe_load(SPEC_FILE.read_text())
    validator = official_validator()
    broken_action = copy.deepcopy(doc)
    broken_action["operations"]["streamPing"]["action"] = "publish"  # AsyncAPI 2 wording
    assert list(validator.iter_errors(broken_action))
    no_version = copy.deepcopy(doc)
    no_version["asyncapi"] = "2.6.0"
    assert list(validator.iter_errors(no_version))
    stray = copy.deepcopy(doc)
    stray["channels"]["stream"]["publish"] = {}
    assert list(validator.iter_errors(stray))


GOOD_UPDATE: dict[str, Any] = {
    "type": "price_update",
    "ticker": "AAPL",
    "seq": 3,
    "timestamp": 1764101234567.125,
    "data": {
        "price": 189.12,
        "change": None,
        "change_percent": None,
        "volume": 100,
        "open": None,
        "high": None,
        "low": None,
        "prev_close": None,
        "market_time": 1764101234000,
    },
}


@pytest.mark.parametrize(
    ("wrong", "complaint"),
    [
        ({**GOOD_UPDATE, "seq": "3"}, "seq"),
        ({**GOOD_UPDATE, "seq": 0}, "seq"),
        ({**GOOD_UPDATE, "ticker": "aapl"}, "ticker"),
        ({k: v for k, v in GOOD_UPDATE.items() if k != "data"}, "data"),
        ({**GOOD_UPDATE, "data": {**GOOD_UPDATE["data"], "price": None}}, "price"),
        ({**GOOD_UPDATE, "type": "snapshot"}, "epoch"),
        ({"type": "heartbeat"}, "timestamp"),
        ({"type": "heartbeat", "timestamp": 1.0, "extra": 1}, "extra"),
        ({"type": "pong", "id": [1]}, "id"),
        ({"type": "error", "code": "Bad Code", "message": "x"}, "code"),
        ({"type": "market_status", "market": "XNYS", "is_open": True}, "session"),
        ({"type": "market_status", "market": "LSE", "is_open": True, "session": "regular",
          "next_open": None, "next_close": None}, "LSE"),
        ({"type": "conflated", "ticker": "AAPL", "dropped": 0}, "dropped"),
        ({"type": "subscribed", "tickers": ["AAPL"]}, "epochs"),
        ({"type": "server_shutdown", "retry_after_ms": -1}, "retry_after_ms"),
        ({"type": "bar", "ticker": "AAPL", "interval": "2m", "seq": 1,
          "bar": {"time": 1, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1,
                  "final": False}}, "2m"),
        ({"type": "bars", "ticker": "AAPL", "interval": "1m", "seq": 1,
          "bars": [{"time": 1, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}]},
         "final"),
        ({"type": "no_such_type"}, "not in the AsyncAPI document"),
        ([1, 2], "not a JSON object"),
    ],
)  # fmt: skip
def test_wrong_messages_fail_validation(wrong: Any, complaint: str) -> None:
    problems = load_spec().errors(wrong)
    assert problems, f"{wrong!r} passed"
    assert complaint in " ".join(problems)
    with pytest.raises(AssertionError, match=r"does not match asyncapi\.yaml"):
        check_server_message(wrong)


def test_client_messages_the_server_accepts_fit_the_document() -> None:
    checked = load_spec()
    for good in [
        {"type": "ping", "id": 7},
        {"type": "ping"},
        {"action": "subscribe", "tickers": ["aapl", "BTC-USD"]},
        {"action": "subscribe", "tickers": ["AAPL"], "resume": {"AAPL": 1041}},
        {"action": "subscribe", "tickers": ["AAPL"], "resume": {"AAPL": {"seq": 1, "epoch": "k"}}},
        {"action": "unsubscribe", "tickers": ["MSFT"]},
        {"action": "subscribe", "tickers": ["AAPL"], "bars": ["1m", "5m"]},
    ]:
        assert checked.errors(good, from_server=False) == [], good
    for bad in [
        {"action": "subscribe", "tickers": []},
        {"action": "subscribe", "tickers": ["AAPL"], "resume": {"AAPL": -1}},
        {"action": "subscribe"},
        {"action": "resubscribe", "tickers": ["AAPL"]},
        {"action": "subscribe", "tickers": ["AAPL"], "bars": ["2m"]},
        {"action": "subscribe", "tickers": ["AAPL"], "bars": "1m"},
    ]:
        assert checked.errors(bad, from_server=False), bad


# -- the real server -----------------------------------------------------------------------

SERVER_TYPES = set(load_spec().server)


async def send(ws: ClientConnection, msg: dict[str, Any]) -> None:
    """Send a client message, checked against the document's client half first."""
    assert load_spec().errors(msg, from_server=False) == [], msg
    await ws.send(json.dumps(msg))


async def test_every_server_message_type_matches_the_document(start_server: StartServer) -> None:
    before = Counter(SEEN)
    server = start_server(
        "--source", "sim", "--sim-tick-interval", "0.1", "--heartbeat-interval", "0.5"
    )
    async with connect(server.ws + "/ws/stocks/AAPL") as ws:
        await recv_until(ws, "price_update")
        await send(ws, {"type": "ping", "id": "one"})
        assert (await recv_until(ws, "pong"))["id"] == "one"
        await recv_until(ws, "heartbeat")
    async with connect(server.ws + "/ws/stocks/NOT%20VALID") as ws:
        error = await recv_json(ws)
        assert error["code"] == "invalid_ticker"
        with pytest.raises(ConnectionClosed):
            await recv_json(ws)
    async with connect(server.ws + "/ws") as ws:
        await send(ws, {"action": "subscribe", "tickers": ["MSFT", "btc-usd", "eurusd=x"]})
        await recv_until(ws, "subscribed")
        await recv_until(ws, "snapshot")
        await recv_until(ws, "price_update")
        # Candles (v1.1), added to a ticker the connection holds: `bars`, then each `bar`.
        await send(ws, {"action": "subscribe", "tickers": ["BTC-USD"], "bars": ["1m"]})
        assert (await recv_until(ws, "bars"))["interval"] == "1m"
        assert (await recv_until(ws, "bar"))["ticker"] == "BTC-USD"
        await send(ws, {"action": "unsubscribe", "tickers": ["MSFT"]})
        assert (await recv_until(ws, "unsubscribed"))["tickers"] == ["BTC-USD", "EURUSD=X"]
        # A resume from another epoch cannot replay: a gap snapshot stands in.
        resume = {"AAPL": {"seq": 1, "epoch": "not-this-one"}}
        await send(ws, {"action": "subscribe", "tickers": ["AAPL"], "resume": resume})
        gap = await recv_until(ws, "snapshot")
        assert gap["gap"] is True and gap["ticker"] == "AAPL"
        await ws.send("not json")
        assert (await recv_until(ws, "error"))["code"] == "bad_message"
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["BAD TICKER!"]}))
        assert (await recv_until(ws, "error"))["ticker"] == "BAD TICKER!"

        # The served document is the file, byte for byte, and the same as JSON.
        async with httpx.AsyncClient(base_url=server.base) as http:
            served = await http.get("/asyncapi.yaml")
            assert served.status_code == 200
            assert served.headers["content-type"].startswith("application/yaml")
            assert served.content == SPEC_FILE.read_bytes()
            as_json = await http.get("/asyncapi.json")
            assert as_json.json() == yaml.safe_load(SPEC_FILE.read_text())
            for method in ("POST", "PUT", "DELETE"):
                refused = await http.request(method, "/asyncapi.yaml", content=b"x" * 10_000)
                assert refused.status_code == 405
                assert refused.json()["error"]["code"] == "http_error"
            missing = await http.get("/asyncapi.yaml/../../etc/passwd")
            assert missing.status_code == 404 and "error" in missing.json()

        # SIGTERM: the notice, then 1001.
        server.proc.send_signal(signal.SIGTERM)
        await recv_until(ws, "server_shutdown")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await recv_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    seen = set((SEEN - before).keys())
    # `conflated` needs a slow reader and a fast publisher: the Redis test below.
    missing = SERVER_TYPES - {"conflated"} - seen
    assert not missing, f"never seen: {missing}"


async def test_stale_snapshot_and_conflated_notice_match_the_document(
    start_server: StartServer, redis_url: str
) -> None:
    before = Counter(SEEN)
    server = start_server(
        "--source",
        "none",
        "--broker",
        redis_url,
        env={"STOCKFEED_SLOW_CLIENT_TIMEOUT": "60"},
    )
    r = aioredis.Redis.from_url(redis_url)
    # An old quote (published two hours ago): its snapshot is marked stale.
    url = server.ws + "/ws/stocks/OLDQ"
    async with connect(url) as first:
        await recv_until(first, "market_status")
        await wait_subscribed(r, "market:OLDQ")
        old = json.loads(contract_update("OLDQ", 5))
        old["timestamp"] = time.time() * 1000 - 2 * 3600 * 1000
        await r.publish("market:OLDQ", json.dumps(old))
        await recv_until(first, "price_update")
    async with connect(url) as second:
        snap = await recv_until(second, "snapshot")
    assert snap["stale"] is True and snap["age_ms"] >= 2 * 3600 * 1000 - 60_000

    # A client that does not read gets its updates conflated, with a notice.
    url = server.ws + "/ws/stocks/CONFQ"
    slow = await slow_client(url)
    await wait_subscribed(r, "market:CONFQ")
    pad = "x" * 30_000
    count = 400  # 12 MB: far more than the socket buffers hold
    pipe = r.pipeline(transaction=False)
    for seq in range(1, count + 1):
        pipe.publish("market:CONFQ", contract_update("CONFQ", seq, pad=pad))
    await pipe.execute()
    got: list[dict[str, Any]] = []
    while not got or got[-1].get("seq") != count:
        got.append(await recv_json(slow, 20))
    await slow.close()
    notices = [m for m in got if m["type"] == "conflated"]
    assert notices, "the slow client was never conflated"
    await r.aclose()
    seen = set((SEEN - before).keys())
    assert {"snapshot", "conflated", "price_update", "market_status"} <= seen
