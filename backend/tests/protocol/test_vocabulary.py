"""The protocol's vocabulary has one home (stockfeed.protocol.codes); everything else that
names a message type, an error code or a close code must agree with it. Each test fails
when one of them drifts: the AsyncAPI document, docs/protocol.md, the Python client's
parsers and the TypeScript client's generated constants (clients/js, used by the dashboard)."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import yaml

from stockfeed import spec
from stockfeed.client import messages as client_messages
from stockfeed.market_hours import Session as SessionLiteral
from stockfeed.protocol import ClientMessage, CloseCode, ErrorCode, MessageType, Session
from stockfeed.protocol.typescript import render_typescript

ROOT = Path(__file__).parents[3]
SPEC = yaml.safe_load(Path(spec.__file__).with_name("asyncapi.yaml").read_text())
PROTOCOL_MD = (ROOT / "docs" / "protocol.md").read_text()
TS_CONSTANTS = ROOT / "clients" / "js" / "src" / "protocol.ts"


def _schema_consts(kind: str) -> set[str]:
    """The `type` (or `action`) constants of every message schema in the document."""
    out: set[str] = set()
    for schema in SPEC["components"]["schemas"].values():
        prop: dict[str, Any] = schema.get("properties", {}).get(kind, {})
        if "const" in prop:
            out.add(prop["const"])
        out.update(prop.get("enum", []))
    return out


def _md_table_codes(heading: str) -> set[str]:
    section = PROTOCOL_MD.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `?([a-z0-9_]+)`? \|", section, flags=re.M))


def test_asyncapi_names_every_message_type_and_no_other() -> None:
    server_types = _schema_consts("type") - {m.value for m in ClientMessage}
    assert server_types == {m.value for m in MessageType}


def test_asyncapi_client_messages_match() -> None:
    assert {m.value for m in ClientMessage} <= _schema_consts("type") | _schema_consts("action")


def test_asyncapi_error_examples_are_known_codes() -> None:
    examples = SPEC["components"]["schemas"]["Error"]["properties"]["code"]["examples"]
    assert set(examples) <= {c.value for c in ErrorCode}


def test_docs_list_every_close_code_and_no_other() -> None:
    listed = {int(c) for c in _md_table_codes("Close codes") if c.isdigit()}
    # 1007 comes from the WebSocket layer; the page says so below its table.
    assert listed | {CloseCode.INVALID_DATA} == {int(c) for c in CloseCode}


def test_docs_list_every_error_code() -> None:
    documented = set(re.findall(r"`([a-z][a-z0-9_]+)`", PROTOCOL_MD))
    missing = {c.value for c in ErrorCode} - documented
    assert not missing, f"error codes not in docs/protocol.md: {sorted(missing)}"


def test_sessions_are_one_vocabulary() -> None:
    # market_status's `session` and (v1.2) an update's `data.session` name the same
    # sessions as the server's market hours.
    names = {s.value for s in Session}
    assert set(SPEC["components"]["schemas"]["SessionName"]["enum"]) == names
    assert set(typing.get_args(SessionLiteral)) == names
    quote = SPEC["components"]["schemas"]["Quote"]["properties"]
    assert quote["session"]["$ref"].endswith("/SessionName")
    for session in names:
        assert f"`{session}`" in PROTOCOL_MD


def test_python_client_parses_every_message_type() -> None:
    assert set(client_messages._PARSERS) == {m.value for m in MessageType}


def test_typescript_constants_are_generated_from_the_enums() -> None:
    assert TS_CONSTANTS.read_text() == render_typescript(), (
        "clients/js/src/protocol.ts is stale: "
        "run `.venv/bin/python -m stockfeed.protocol.typescript > clients/js/src/protocol.ts`"
    )
