"""Small helpers for talking to a real server over a real WebSocket.

Every message read through these helpers is checked against the AsyncAPI document the
server ships (`stockfeed/spec/asyncapi.yaml`): the schema of its `type`, or a failure
naming the message and what is wrong. `SEEN` counts the types checked, so a test can
tell that every server message type was seen at least once.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import redis.asyncio as aioredis
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from websockets.asyncio.client import ClientConnection, connect

from stockfeed import spec

SPEC_URI = "urn:stockfeed:asyncapi"
SEEN: Counter[str] = Counter()


@dataclass(frozen=True)
class Spec:
    """The AsyncAPI document, with a validator per message it names."""

    doc: dict[str, Any]
    server: dict[str, Draft202012Validator]  # by `type`
    client: dict[str, Draft202012Validator]  # by `type` (ping) or `action`
    payloads: dict[str, str]  # JSON pointer of each message's payload, by message key

    def errors(self, msg: object, *, from_server: bool = True) -> list[str]:
        """What is wrong with `msg` as a message of that direction (empty: valid)."""
        if not isinstance(msg, dict):
            return [f"not a JSON object: {msg!r}"]
        table = self.server if from_server else self.client
        key = msg.get("type") if from_server else msg.get("type", msg.get("action"))
        validator = table.get(key) if isinstance(key, str) else None
        if validator is None:
            side = "server" if from_server else "client"
            return [f"{side} message {key!r} is not in the AsyncAPI document"]
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in validator.iter_errors(msg)
        ]


def _pointer(doc: dict[str, Any], ref: str) -> tuple[Any, str]:
    """Follow a local `#/a/b` reference (and any reference it lands on)."""
    while True:
        if not ref.startswith("#/"):
            raise AssertionError(f"only local references are used, not {ref!r}")
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        if isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            continue
        return node, ref[1:]


def _resolved(doc: dict[str, Any], node: dict[str, Any], pointer: str) -> tuple[Any, str]:
    if "$ref" in node:
        return _pointer(doc, node["$ref"])
    return node, pointer


@cache
def load_spec() -> Spec:
    doc = spec.load()
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(doc))
    server: dict[str, Draft202012Validator] = {}
    client: dict[str, Draft202012Validator] = {}
    payloads: dict[str, str] = {}

    def add(table: dict[str, Draft202012Validator], ref: str) -> None:
        message, pointer = _pointer(doc, ref)
        payload, payload_pointer = _resolved(doc, message["payload"], pointer + "/payload")
        props = payload.get("properties", {})
        discriminator = props.get("type", props.get("action", {})).get("const")
        if not isinstance(discriminator, str):
            raise AssertionError(f"{ref}: the payload has no const `type` or `action`")
        validator = Draft202012Validator(
            {"$ref": f"{SPEC_URI}#{payload_pointer}"}, registry=registry
        )
        table[discriminator] = validator
        payloads[pointer.rsplit("/", 1)[-1]] = payload_pointer

    for operation in doc.get("operations", {}).values():
        sent_by_server = operation["action"] == "send"
        for ref in operation.get("messages", []):
            add(server if sent_by_server else client, ref["$ref"])
        for ref in operation.get("reply", {}).get("messages", []):
            # The reply to what a client sends comes from the server, and vice versa.
            add(client if sent_by_server else server, ref["$ref"])
    return Spec(doc, server, client, payloads)


def check_server_message(msg: object) -> None:
    """Fail unless `msg` is valid as the server message its `type` names."""
    problems = load_spec().errors(msg)
    if problems:
        raise AssertionError(
            f"server message does not match asyncapi.yaml: {'; '.join(problems)}\n{msg!r}"
        )
    assert isinstance(msg, dict)
    SEEN[msg["type"]] += 1


class MessageSocket(Protocol):
    """What the readers below use of a session: a `websockets` client, or an in-process
    one (tests/inprocess.py)."""

    async def recv(self) -> str | bytes: ...

    async def send(self, data: str | bytes) -> None: ...


async def recv_json(ws: MessageSocket, timeout: float = 10.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    value: dict[str, Any] = json.loads(raw)
    check_server_message(value)
    return value


async def recv_until(ws: MessageSocket, msg_type: str, timeout: float = 10.0) -> dict[str, Any]:
    """Read messages until one of `msg_type` arrives (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        msg = await recv_json(ws, max(0.01, deadline - loop.time()))
        if msg["type"] == msg_type:
            return msg


async def recv_updates(
    ws: MessageSocket,
    count: int,
    timeout: float = 20.0,
    types: tuple[str, ...] = ("price_update",),
) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out: list[dict[str, Any]] = []
    while len(out) < count:
        msg = await recv_json(ws, max(0.01, deadline - loop.time()))
        if msg["type"] in types:
            out.append(msg)
    return out


def contract_update(ticker: str, seq: int, **extra: Any) -> str:
    msg = {
        "type": "price_update",
        "ticker": ticker,
        "seq": seq,
        "timestamp": time.time() * 1000,
        "data": {
            "price": 100 + seq / 100,
            "change": 1.0,
            "change_percent": 1.0,
            "volume": 1000 + seq,
            "open": 99.0,
            "high": 120.0,
            "low": 98.0,
            "prev_close": 99.0,
            "market_time": int(time.time() * 1000),
        },
        **extra,
    }
    return json.dumps(msg)


async def wait_subscribed(r: aioredis.Redis, channel: str, count: int = 1) -> None:
    for _ in range(100):
        numsub = dict(await r.pubsub_numsub(channel))
        if numsub.get(channel.encode(), 0) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nobody subscribed to {channel}")


async def slow_client(url: str) -> ClientConnection:
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    # max_queue=1: the client library stops reading its socket after one frame.
    return await connect(url, sock=sock, max_queue=1, max_size=None)
