"""One source for the protocol's types (issue 16): the fields of every server message.

test_vocabulary.py checks the names (message types, codes); this checks the shapes. Each
server message schema of the AsyncAPI document (the schemas with a `type` const, $ref and
allOf resolved) is compared with the Python client's dataclass for that type (the one its
`_PARSERS` entry builds) and with the TypeScript interface whose `type` is that literal
(clients/js/src/messages.ts, read by a small strict parser): the same field names, each
required or optional alike, a list on both sides or on neither, and nested objects (`data`,
`bar`, `bars[]`) compared the same way. An intended difference is listed in DOCUMENTED
with its reason; any other difference fails, and so does a listed one that went away.
Pure in-process: no server, no network, no node.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from stockfeed import spec
from stockfeed.client import messages as client_messages
from stockfeed.protocol import ClientMessage, MessageType

ROOT = Path(__file__).parents[3]
SPEC: dict[str, Any] = yaml.safe_load(Path(spec.__file__).with_name("asyncapi.yaml").read_text())
TS_MESSAGES = ROOT / "clients" / "js" / "src" / "messages.ts"
SERVER_TYPES = {m.value for m in MessageType}
CLIENT_TYPES = {m.value for m in ClientMessage}

# Intended differences from the document: (client, path, in the document, in the client)
# -> why. Anything not listed here is drift.
DOCUMENTED: dict[tuple[str, str, str, str], str] = {
    ("ts", "price_update.stale", "absent", "optional"): (
        "PriceUpdate also types REST quotes (GET /api/quotes, the polling fallback), which "
        "carry stale/age_ms when old (docs/protocol.md#rest-api); on the wire a price_update "
        "never has them (the schema allows extra fields: additionalProperties)"
    ),
    ("ts", "price_update.age_ms", "absent", "optional"): "as price_update.stale",
    ("ts", "bars.bars.final", "required", "optional"): (
        "the TS Bar also types REST history bars, which have no `final` (DESIGN.md v1.1: a "
        "wire bar is a REST bar plus `final`); the wire always sends it"
    ),
    ("ts", "bar.bar.final", "required", "optional"): "as bars.bars.final",
}
# Dataclass fields that are not wire fields.
PY_BOOKKEEPING = {
    "raw": "the frame's original text, for tools that pass it on",
    "type": "the discriminator: checked to equal the message type, not compared as a field",
}


@dataclasses.dataclass(frozen=True)
class Field:
    required: bool
    many: bool = False  # a list (of `nested` objects when it has them)
    nested: dict[str, Field] | None = None  # an object's own fields


Shape = dict[str, Field]
Diff = tuple[str, str, str]  # (path, in the document, in the client)


# -- the document -------------------------------------------------------------------------


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs are understood: {ref}"
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def _object(doc: dict[str, Any], node: dict[str, Any]) -> tuple[dict[str, Any], set[str]] | None:
    """(properties, required) of an object schema, allOf merged; None if it names none."""
    node = _resolve(doc, node)
    for word in ("oneOf", "anyOf", "not"):
        assert word not in node, f"{word} in a server message is not understood: {node}"
    props: dict[str, Any] = {}
    required: set[str] = set()
    for part in node.get("allOf", []):
        sub = _object(doc, part)
        assert sub is not None, f"an allOf part without properties: {part}"
        props.update(sub[0])
        required |= sub[1]
    props.update(node.get("properties", {}))
    required |= set(node.get("required", []))
    return (props, required) if props else None


def _spec_shape(doc: dict[str, Any], props: dict[str, Any], required: set[str]) -> Shape:
    shape: Shape = {}
    for name, prop in props.items():
        if name == "type":
            continue
        node = _resolve(doc, prop)
        kind = node.get("type")
        many = kind == "array" or (isinstance(kind, list) and "array" in kind)
        if many:
            node = _resolve(doc, node.get("items", {}))
        obj = _object(doc, node)
        nested = None if obj is None else _spec_shape(doc, *obj)
        shape[name] = Field(name in required, many, nested)
    return shape


def spec_messages(doc: dict[str, Any]) -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for name, schema in doc["components"]["schemas"].items():
        choices = schema.get("oneOf", []) + schema.get("anyOf", [])
        if choices:  # e.g. ResumePoint; a message written as a choice is not understood
            for choice in choices:
                assert "type" not in _resolve(doc, choice).get("properties", {}), name
            continue
        obj = _object(doc, schema)
        if obj is None or "type" not in obj[0]:
            continue
        kind = _resolve(doc, obj[0]["type"]).get("const")
        if kind is None or kind in CLIENT_TYPES:
            continue
        assert kind not in out, f"two schemas for {kind!r}"
        assert "type" in obj[1], f"{name}: `type` is not required"
        out[kind] = _spec_shape(doc, *obj)
    return out


def spec_examples(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The first example payload of each message."""
    return {
        m["name"]: m["examples"][0]["payload"]
        for m in doc["components"]["messages"].values()
        if m.get("examples")
    }


# -- the Python client --------------------------------------------------------------------


def _py_field(hint: Any, required: bool) -> Field:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _py_field(rest[0], required)
        return Field(required)
    if typing.get_origin(hint) in (tuple, list):
        item = _py_field(args[0], required)
        return Field(required, True, item.nested)
    if dataclasses.is_dataclass(hint):
        return Field(required, False, python_shape(typing.cast(type, hint)))
    return Field(required)


def python_shape(cls: type) -> Shape:
    hints = typing.get_type_hints(cls)
    shape: Shape = {}
    for f in dataclasses.fields(cls):
        if f.name in PY_BOOKKEEPING:
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        shape[f.name] = _py_field(hints[f.name], required)
    return shape


def python_messages(doc: dict[str, Any]) -> dict[str, Shape]:
    """Each `_PARSERS` entry's dataclass: the type it builds from the document's example."""
    examples = spec_examples(doc)
    out: dict[str, Shape] = {}
    for kind, parser in client_messages._PARSERS.items():
        assert kind in examples, f"the document has no example of {kind!r}"
        built = parser(examples[kind], json.dumps(examples[kind]))
        assert dataclasses.is_dataclass(built), f"{kind}: {built!r}"
        assert built.type == kind, f"the parser of {kind!r} built a {built.type!r}"
        out[kind] = python_shape(type(built))
    return out


# -- the TypeScript client: a strict reader of the subset messages.ts uses --------------


class TsSyntaxError(AssertionError):
    """messages.ts uses syntax this reader does not understand: teach it, don't skip it."""


class Tok(NamedTuple):
    kind: str
    text: str
    line: int


_LEXEME = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>//[^\n]*|/\*.*?\*/)
    |(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<num>\d[\w.]*)|(?P<name>[A-Za-z_$][\w$]*)
    |(?P<punct>=>|\.\.\.|\?\?=?|\?\.|[=!]==?|[<>]=|&&|\|\||[-+*/%]=|\+\+|--|[{}()\[\];:,.?<>=|&!+\-*/%~^@])""",
    re.S | re.X,
)
_BEFORE_REGEX = set("([{,;:=!&|?}") | {"return", "typeof", "=>", "&&", "||", "==", "==="}


def _skip_quoted(src: str, i: int) -> int:
    quote, i = src[i], i + 1
    while i < len(src) and src[i] != quote:
        i += 2 if src[i] == "\\" else 1
    return i + 1


def _skip_template(src: str, i: int) -> int:
    i += 1
    while i < len(src):
        if src[i] == "\\":
            i += 2
        elif src[i] == "`":
            return i + 1
        elif src.startswith("${", i):
            depth, i = 1, i + 2
            while depth and i < len(src):
                c = src[i]
                if c in "\"'":
                    i = _skip_quoted(src, i)
                    continue
                if c == "`":
                    i = _skip_template(src, i)
                    continue
                depth += {"{": 1, "}": -1}.get(c, 0)
                i += 1
        else:
            i += 1
    raise TsSyntaxError("unterminated template literal")


def _skip_regex(src: str, i: int) -> int:
    j, in_class = i + 1, False
    while j < len(src) and src[j] != "\n":
        c = src[j]
        if c == "\\":
            j += 2
            continue
        if c == "/" and not in_class:
            j += 1
            while j < len(src) and src[j].isalpha():
                j += 1
            return j
        in_class = (in_class or c == "[") and c != "]"
        j += 1
    raise TsSyntaxError(f"unterminated regular expression at line {src.count(chr(10), 0, i) + 1}")


def ts_tokens(src: str) -> list[Tok]:
    out: list[Tok] = []
    i, line = 0, 1
    while i < len(src):
        start, c = i, src[i]
        if c == "`":
            i = _skip_template(src, i)
            out.append(Tok("template", "`", line))
        elif (
            c == "/"
            and src[i + 1 : i + 2] not in ("/", "*")
            and (not out or out[-1].text in _BEFORE_REGEX)
        ):
            i = _skip_regex(src, i)
            out.append(Tok("regex", "/", line))
        else:
            m = _LEXEME.match(src, i)
            if m is None:
                raise TsSyntaxError(f"line {line}: cannot read {src[i : i + 20]!r}")
            i = m.end()
            if m.lastgroup not in ("ws", "comment"):
                out.append(Tok(str(m.lastgroup), m.group(), line))
        line += src.count("\n", start, i)
    return out


@dataclasses.dataclass(frozen=True)
class TsRef:
    name: str
    args: tuple[tuple[TsType, ...], ...] = ()


@dataclasses.dataclass(frozen=True)
class TsLiteral:
    text: str


@dataclasses.dataclass(frozen=True)
class TsArray:
    item: tuple[TsType, ...]


@dataclasses.dataclass(frozen=True)
class TsObject:
    members: dict[str, TsMember]


TsType = TsRef | TsLiteral | TsArray | TsObject


@dataclasses.dataclass(frozen=True)
class TsMember:
    optional: bool
    type: tuple[TsType, ...]  # the alternatives of a union


_TS_BUILTINS = {"string", "number", "boolean", "unknown", "null", "undefined", "true", "false"}
_TS_BUILTINS |= {"Record", "Readonly", "object", "bigint"}
_CLOSE = {"(": ")", "[": "]", "{": "}"}


class TsFile:
    """The declarations of a module: object types (interfaces, and type aliases of an
    object literal) parsed member by member; other type aliases, imports, consts,
    functions and classes skipped as balanced token runs. Anything else raises."""

    def __init__(self, src: str) -> None:
        self.toks = ts_tokens(src)
        self.pos = 0
        self.objects: dict[str, dict[str, TsMember]] = {}
        self.aliases: set[str] = set()
        while self.pos < len(self.toks):
            self._declaration()

    # token helpers
    def _peek(self, ahead: int = 0) -> Tok:
        i = self.pos + ahead
        return self.toks[i] if i < len(self.toks) else Tok("eof", "", -1)

    def _next(self) -> Tok:
        tok = self._peek()
        if tok.kind == "eof":
            raise TsSyntaxError("unexpected end of file")
        self.pos += 1
        return tok

    def _fail(self, tok: Tok, what: str) -> TsSyntaxError:
        return TsSyntaxError(f"messages.ts line {tok.line}: {what} (at {tok.text!r})")

    def _expect(self, text: str) -> Tok:
        tok = self._next()
        if tok.text != text:
            raise self._fail(tok, f"expected {text!r}")
        return tok

    def _accept(self, text: str) -> bool:
        if self._peek().text == text:
            self.pos += 1
            return True
        return False

    def _name(self) -> str:
        tok = self._next()
        if tok.kind != "name":
            raise self._fail(tok, "expected a name")
        return tok.text

    def _skip_balanced(self) -> None:
        """Past the group that opens at the current token."""
        stack = [_CLOSE[self._next().text]]
        while stack:
            tok = self._next()
            if tok.text in _CLOSE:
                stack.append(_CLOSE[tok.text])
            elif tok.text in (")", "]", "}"):
                if tok.text != stack.pop():
                    raise self._fail(tok, "unbalanced brackets")

    def _skip_statement(self, *, in_type: bool = False) -> None:
        """Past the next `;` outside brackets. In a type alias, a `type: "literal"` (a
        message shape outside an object type this reader parses) is refused."""
        while not self._accept(";"):
            tok = self._peek()
            if tok.text in _CLOSE:
                start = self.pos
                self._skip_balanced()
                inner = self.toks[start : self.pos]
                if in_type and any(
                    a.text == "type" and b.text == ":" and c.kind == "str"
                    for a, b, c in zip(inner, inner[1:], inner[2:], strict=False)
                ):
                    raise self._fail(tok, "a message shape inside a type expression")
            else:
                self._next()

    def _skip_angles(self) -> None:
        depth = 0
        while True:
            tok = self._next()
            depth += {"<": 1, ">": -1}.get(tok.text, 0)
            if depth == 0:
                return

    # declarations
    def _declaration(self) -> None:
        tok = self._next()
        if tok.text == "export":
            tok = self._next()
        if tok.text == "import":
            self._skip_statement()
        elif tok.text == "interface":
            name = self._name()
            if self._peek().text != "{":
                raise self._fail(self._peek(), "only `interface Name {` is understood")
            self._add_object(name)
        elif tok.text == "type":
            name = self._name()
            if self._peek().text == "<":
                self._skip_angles()
            self._expect("=")
            if self._peek().text == "{":
                self._add_object(name)
                self._expect(";")
            else:
                self.aliases.add(name)
                self._skip_statement(in_type=True)
        elif tok.text in ("const", "let"):
            self._skip_statement()
        elif tok.text in ("function", "async"):
            if tok.text == "async":
                self._expect("function")
            self._name()
            if self._peek().text == "<":
                self._skip_angles()
            self._skip_balanced()  # the parameters
            if self._accept(":"):
                self._type()
            if not self._accept(";"):  # an overload has no body
                if self._peek().text != "{":
                    raise self._fail(self._peek(), "expected a function body")
                self._skip_balanced()
        elif tok.text == "class":
            while self._peek().text != "{":
                self._next()
            self._skip_balanced()
        else:
            raise self._fail(tok, "not a declaration this reader knows")

    def _add_object(self, name: str) -> None:
        if name in self.objects or name in self.aliases:
            raise TsSyntaxError(f"{name} is declared twice")
        self.objects[name] = self._object_body()

    def _object_body(self) -> dict[str, TsMember]:
        self._expect("{")
        members: dict[str, TsMember] = {}
        while not self._accept("}"):
            tok = self._next()
            if tok.text == "readonly":
                tok = self._next()
            if tok.text == "[":  # an index signature: [key: string]: T
                self._name()
                self._expect(":")
                self._expect("string")
                self._expect("]")
                key = "[index]"
            elif tok.kind in ("name", "str"):
                key = tok.text.strip("\"'")
            else:
                raise self._fail(tok, "expected a member name")
            optional = self._accept("?")
            if self._peek().text != ":":
                raise self._fail(self._peek(), "only `name?: type` members are understood")
            self._next()
            if key in members:
                raise self._fail(tok, "a member declared twice")
            members[key] = TsMember(optional, self._type())
            if not (self._accept(";") or self._accept(",") or self._peek().text == "}"):
                raise self._fail(self._peek(), "expected `;` after a member")
        return members

    def _type(self) -> tuple[TsType, ...]:
        self._accept("|")
        alternatives = [self._postfix_type()]
        while self._accept("|"):
            alternatives.append(self._postfix_type())
        if self._peek().text == "&":
            raise self._fail(self._peek(), "intersection types are not understood")
        return tuple(alternatives)

    def _postfix_type(self) -> TsType:
        tok = self._peek()
        atom: TsType
        if tok.kind in ("str", "num"):
            self._next()
            atom = TsLiteral(tok.text)
        elif tok.text == "{":
            atom = TsObject(self._object_body())
        elif tok.text == "(":
            self._next()
            inner = self._type()
            self._expect(")")
            if len(inner) != 1:
                raise self._fail(tok, "a parenthesized union is not understood")
            atom = inner[0]
        elif tok.kind == "name" and tok.text not in ("typeof", "keyof", "infer", "readonly"):
            self._next()
            args: list[tuple[TsType, ...]] = []
            if self._accept("<"):
                args.append(self._type())
                while self._accept(","):
                    args.append(self._type())
                self._expect(">")
            atom = TsRef(tok.text, tuple(args))
        else:
            raise self._fail(tok, "a type this reader does not understand")
        while self._peek().text == "[" and self._peek(1).text == "]":
            self.pos += 2
            atom = TsArray((atom,))
        return atom

    # shapes
    def _field(self, alternatives: tuple[TsType, ...], required: bool, where: str) -> Field:
        rest = [a for a in alternatives if a not in (TsRef("null"), TsRef("undefined"))]
        if len(rest) != 1:
            for a in rest:  # a union of object types is not a shape this test can compare
                if isinstance(a, TsObject | TsArray) or (
                    isinstance(a, TsRef) and a.name in self.objects
                ):
                    raise TsSyntaxError(f"{where}: a union of object types is not understood")
                self._field((a,), required, where)  # every name must be known
            return Field(required)
        atom = rest[0]
        if isinstance(atom, TsArray):
            return dataclasses.replace(self._field(atom.item, required, where), many=True)
        if isinstance(atom, TsObject):
            return Field(required, False, self._shape(atom.members, where))
        if isinstance(atom, TsRef):
            if atom.name in self.objects:
                return Field(required, False, self._shape(self.objects[atom.name], where))
            if atom.name not in _TS_BUILTINS | self.aliases:
                raise TsSyntaxError(f"{where}: unknown type {atom.name!r}")
        return Field(required)

    def _shape(self, members: dict[str, TsMember], where: str) -> Shape:
        if "[index]" in members:
            raise TsSyntaxError(f"{where}: an index signature in a message is not understood")
        return {
            name: self._field(m.type, not m.optional, f"{where}.{name}")
            for name, m in members.items()
            if name != "type"
        }

    def messages(self) -> dict[str, Shape]:
        """The object types whose `type` is a string literal, by that literal."""
        out: dict[str, Shape] = {}
        for name, members in self.objects.items():
            discriminant = members.get("type")
            if discriminant is None or not isinstance(discriminant.type[0], TsLiteral):
                continue
            if discriminant.optional or len(discriminant.type) != 1:
                raise TsSyntaxError(f"{name}: `type` must be one required literal")
            kind = discriminant.type[0].text.strip("\"'")
            if kind in CLIENT_TYPES:
                continue
            if kind in out:
                raise TsSyntaxError(f"two interfaces with type {kind!r}")
            out[kind] = self._shape(members, kind)
        return out


def ts_messages(src: str) -> dict[str, Shape]:
    return TsFile(src).messages()


# -- the comparison -----------------------------------------------------------------------


def _state(f: Field | None) -> str:
    return "absent" if f is None else "required" if f.required else "optional"


def _compare_shapes(path: str, doc: Shape, client: Shape, out: set[Diff]) -> None:
    for name in sorted(doc.keys() | client.keys()):
        a, b, where = doc.get(name), client.get(name), f"{path}.{name}"
        if _state(a) != _state(b):
            out.add((where, _state(a), _state(b)))
        if a is None or b is None:
            continue
        if a.many != b.many:
            out.add((where, "list" if a.many else "not a list", "list" if b.many else "not a list"))
        if (a.nested is None) != (b.nested is None):
            out.add(
                (
                    where,
                    "an object" if a.nested else "no object",
                    "an object" if b.nested else "no object",
                )
            )
        elif a.nested is not None and b.nested is not None:
            _compare_shapes(where, a.nested, b.nested, out)


def compare(doc: dict[str, Shape], client: dict[str, Shape]) -> set[Diff]:
    out: set[Diff] = set()
    for kind in sorted(doc.keys() | client.keys()):
        if kind not in doc or kind not in client:
            out.add(
                (
                    kind,
                    "message" if kind in doc else "absent",
                    "message" if kind in client else "absent",
                )
            )
        else:
            _compare_shapes(kind, doc[kind], client[kind], out)
    return out


def _check(client: str, found: set[Diff]) -> None:
    allowed = {key[1:] for key in DOCUMENTED if key[0] == client}
    assert not found - allowed, (
        f"{client} drifted from the AsyncAPI document: {sorted(found - allowed)}"
    )
    assert not allowed - found, (
        f"documented {client} differences gone (drop them): {sorted(allowed - found)}"
    )


# -- the checks ---------------------------------------------------------------------------

DOC = spec_messages(SPEC)


def test_the_document_has_every_server_message() -> None:
    assert set(DOC) == SERVER_TYPES
    assert {k for k, shape in DOC.items() for f in shape.values() if f.nested} == {
        "price_update",
        "snapshot",
        "bars",
        "bar",
    }


def test_python_dataclasses_match_the_document() -> None:
    py = python_messages(SPEC)
    assert set(py) == SERVER_TYPES
    _check("py", compare(DOC, py))


def test_typescript_types_match_the_document() -> None:
    ts = ts_messages(TS_MESSAGES.read_text())
    assert set(ts) == SERVER_TYPES
    _check("ts", compare(DOC, ts))


def test_every_documented_difference_has_a_reason() -> None:
    for key, reason in DOCUMENTED.items():
        assert key[0] in ("py", "ts") and len(reason) > 10, key


# -- drift is detected --------------------------------------------------------------------


@pytest.fixture
def doc_copy() -> dict[str, Any]:
    return copy.deepcopy(SPEC)


@pytest.mark.parametrize(
    ("schema", "field", "required", "expected"),
    [
        ("PriceUpdate", "venue", False, ("price_update.venue", "optional", "absent")),
        ("Heartbeat", "interval_ms", True, ("heartbeat.interval_ms", "required", "absent")),
        ("Quote", "vwap", False, ("snapshot.data.vwap", "optional", "absent")),
        ("Candle", "trades", True, ("bars.bars.trades", "required", "absent")),
        ("Snapshot", "epoch", False, ("snapshot.epoch", "optional", "required")),
    ],
)
def test_a_schema_drift_is_detected(
    doc_copy: dict[str, Any], schema: str, field: str, required: bool, expected: Diff
) -> None:
    node = doc_copy["components"]["schemas"][schema]
    node["properties"].setdefault(field, {"type": "integer"})
    node["required"] = [r for r in node["required"] if r != field] + ([field] if required else [])
    drifted = spec_messages(doc_copy)
    assert expected in compare(drifted, python_messages(doc_copy))
    assert expected in compare(drifted, ts_messages(TS_MESSAGES.read_text()))


def test_allof_is_resolved(doc_copy: dict[str, Any]) -> None:
    schemas = doc_copy["components"]["schemas"]
    schemas["Stamped"] = {
        "type": "object",
        "required": ["timestamp"],
        "properties": {"timestamp": {}},
    }
    schemas["Heartbeat"] = {
        "allOf": [
            {"$ref": "#/components/schemas/Stamped"},
            {"required": ["type"], "properties": {"type": {"const": "heartbeat"}}},
        ]
    }
    assert spec_messages(doc_copy) == DOC
    schemas["Stamped"]["properties"]["interval_ms"] = {}
    assert ("heartbeat.interval_ms", "optional", "absent") in compare(
        spec_messages(doc_copy), python_messages(doc_copy)
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "export interface Heartbeat {\n",
            "export interface Heartbeat {\n  interval_ms: number;\n",
            ("heartbeat.interval_ms", "absent", "required"),
        ),
        (
            "  epoch: string;\n  stale?: boolean;\n  age_ms?: number;\n  gap?: boolean;",
            "  epoch?: string;\n  stale?: boolean;\n  age_ms?: number;\n  gap?: boolean;",
            ("snapshot.epoch", "required", "optional"),
        ),
        (
            "  close: number;\n",
            "  close: number;\n  trades?: number;\n",
            ("bar.bar.trades", "absent", "optional"),
        ),
        (
            "  tickers: string[];\n}\n\nexport interface Conflated",
            "  tickers: string;\n}\n\nexport interface Conflated",
            ("unsubscribed.tickers", "list", "not a list"),
        ),
        ('  type: "pong";\n', '  type: "pongg";\n', ("pong", "message", "absent")),
    ],
)
def test_a_typescript_drift_is_detected(old: str, new: str, expected: Diff) -> None:
    src = TS_MESSAGES.read_text()
    assert src.count(old) == 1, f"the fixture text is gone from messages.ts: {old!r}"
    assert expected in compare(DOC, ts_messages(src.replace(old, new)))


def test_a_python_drift_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class Heartbeat:
        timestamp: float
        interval_ms: int | None = None
        raw: str = ""
        type: str = "heartbeat"

    def parser(obj: dict[str, Any], raw: str) -> Heartbeat:
        return Heartbeat(obj["timestamp"], raw=raw)

    monkeypatch.setitem(client_messages._PARSERS, "heartbeat", parser)
    assert ("heartbeat.interval_ms", "absent", "optional") in compare(DOC, python_messages(SPEC))


@pytest.mark.parametrize(
    "snippet",
    [
        "export enum Side { Buy, Sell }",
        "export interface Tick extends Heartbeat { price: number; }",
        'export interface Tick { type: "tick"; price(): number; }',
        'export interface Tick { type: "tick"; price: Heartbeat & Pong; }',
        'export interface Tick { type: "tick"; price: Decimal; }',
        'export interface Tick { type: "tick"; price: number }\nexport interface Tick { a: 1 }',
        'export type Tick = Heartbeat & { type: "tick"; price: number };',
        'export type Tick = { type: "tick"; price: number } & Heartbeat;',
        "export default FIELDS;",
        "declare const tick: number;",
    ],
)
def test_typescript_syntax_the_reader_does_not_know_fails_loudly(snippet: str) -> None:
    with pytest.raises(TsSyntaxError):
        ts_messages(TS_MESSAGES.read_text() + "\n" + snippet + "\n")
