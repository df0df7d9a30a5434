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


SRC = Path(stockfeed.__file__).parent


def _module_path(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "stockfeed":
        return None
    base = SRC.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _reachable(start: str) -> set[str]:
    """Every stockfeed module `start` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        path = _module_path(todo.pop())
        if path is None:
            continue
        for name in _imports(path):
            if name.startswith("stockfeed") and name not in seen and _module_path(name):
                seen.add(name)
                todo.append(name)
    return seen


def test_the_hub_imports_nothing_that_imports_it() -> None:
    # Its parts (linger, recovery, bar_feed...) get narrow interfaces, not the hub.
    assert "stockfeed.fanout.hub" not in _reachable("stockfeed.fanout.hub")
    assert "stockfeed.fanout.hub" not in _reachable("stockfeed.fanout.bar_feed")


@pytest.mark.parametrize("module", ["stockfeed.metrics", "stockfeed.api.health"])
def test_metrics_and_health_import_nothing_of_the_server(module: str) -> None:
    path = _module_path(module)
    assert path is not None
    bad = [n for n in _imports(path) if n.startswith("stockfeed.server")]
    assert not bad, f"{module} imports {bad}: they read `Connection.fast_path` instead"


def test_the_reach_check_sees_a_cycle() -> None:
    assert "stockfeed.fanout.connections" in _reachable("stockfeed.fanout.hub")
    assert "stockfeed.fanout.stats" in _reachable("stockfeed.metrics")
