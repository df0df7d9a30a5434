"""Rules the code keeps that no linter checks for us.

A module writes only its own private attributes: `x._name = ...` (or `+=`, `del`) where
`x` is not `self`/`cls` is allowed only when `_name` belongs to a class of the same
module (a factory filling in its own class's instance). Anything else reaches into
another module's state behind its back: give that class a public way instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stockfeed

SRC = Path(stockfeed.__file__).parent

# (module, attribute): why the write cannot go through a public way.
ALLOWED = {
    # uvicorn's FlowControl makes an asyncio.Event per connection and has no public way
    # to pass another: a lighter flag takes its place (a third-party object, not ours).
    ("server/fast_http.py", "_is_writable_event"): "uvicorn's FlowControl",
}


def _own_names(tree: ast.AST) -> set[str]:
    """Private attributes the module's own classes define (through `self.` or `cls.`,
    in `__slots__`, or in a class body)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                elif isinstance(item, ast.Assign):
                    for target in item.targets:
                        if isinstance(target, ast.Name):
                            names.add(target.id)
                        if isinstance(target, ast.Name) and target.id == "__slots__":
                            for elt in ast.walk(item.value):
                                if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                                    names.add(elt.value)
    return {n for n in names if n.startswith("_")}


def _written(tree: ast.AST) -> list[ast.Attribute]:
    out: list[ast.Attribute] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for leaf in target.elts if isinstance(target, ast.Tuple | ast.List) else [target]:
                if isinstance(leaf, ast.Attribute):
                    out.append(leaf)
    return out


def foreign_private_writes(source: str, module: str) -> list[str]:
    tree = ast.parse(source)
    own = _own_names(tree)
    found = []
    for attr in _written(tree):
        name = attr.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        if isinstance(attr.value, ast.Name) and attr.value.id in ("self", "cls"):
            continue
        if name in own or (module, name) in ALLOWED:
            continue
        found.append(f"{module}:{attr.lineno}: {ast.unparse(attr)}")
    return found


def test_no_module_writes_another_modules_private_attribute() -> None:
    found: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        found += foreign_private_writes(path.read_text(), module)
    assert not found, "writes of another module's private attributes:\n" + "\n".join(found)


def test_the_rule_sees_a_foreign_write() -> None:
    sample = """
class Mine:
    def __init__(self) -> None:
        self._own = 0

def fill(mine: Mine, other: object, sink: object) -> None:
    mine._own = 1
    sink._pending += 1
    other._hidden, x = 2, 3
    del other._gone
"""
    found = foreign_private_writes(sample, "sample.py")
    assert [f.split(": ")[1] for f in found] == ["sink._pending", "other._hidden", "other._gone"]
