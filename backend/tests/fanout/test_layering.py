"""The fan-out core stands on its own: nothing in stockfeed/fanout imports uvicorn or the
uvicorn-level package (stockfeed.server), so the hub can be imported, tested and reused
without a server. The fast path reaches the core the other way round, through the sink's
ASGI extension."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stockfeed

FANOUT = Path(stockfeed.__file__).parent / "fanout"
FORBIDDEN = ("uvicorn", "stockfeed.server", "httptools", "websockets")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(FANOUT.glob("*.py")), ids=lambda p: p.name)
def test_fanout_imports_nothing_of_the_server(path: Path) -> None:
    bad = [n for n in _imports(path) if n.startswith(FORBIDDEN)]
    assert not bad, f"{path.name} imports {bad}: the fan-out core must not depend on them"


def test_the_check_sees_an_import() -> None:
    sample = FANOUT.parent / "server" / "sink_connection.py"
    assert any(n.startswith("stockfeed.fanout") for n in _imports(sample))
