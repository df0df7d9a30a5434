"""The protocol's vocabulary (codes.py) rendered as TypeScript constants."""

from __future__ import annotations

from stockfeed.protocol.codes import (
    CLOSE_RECONNECTS,
    ClientMessage,
    CloseCode,
    ErrorCode,
    MessageType,
    Session,
)


def render_typescript() -> str:
    """The same vocabulary as TypeScript constants, for the TypeScript client package
    `@stockfeed/client` (which the dashboard uses):
    `python -m stockfeed.protocol.typescript > clients/js/src/protocol.ts`.
    tests/protocol/test_vocabulary.py fails when the committed file differs."""
    lines = [
        "// Generated from backend/src/stockfeed/protocol/codes.py by",
        "// `python -m stockfeed.protocol.typescript`: do not edit by hand.",
        "",
    ]

    def block(name: str, members: dict[str, str | int]) -> None:
        lines.append(f"export const {name} = {{")
        for key, value in members.items():
            shown = value if isinstance(value, int) else f'"{value}"'
            lines.append(f"  {_camel(key)}: {shown},")
        lines.append("} as const;")
        lines.append(f"export type {name} = (typeof {name})[keyof typeof {name}];")
        lines.append("")

    block("MessageType", {m.name: m.value for m in MessageType})
    block("ClientMessage", {m.name: m.value for m in ClientMessage})
    block("ErrorCode", {m.name: m.value for m in ErrorCode})
    block("Session", {m.name: m.value for m in Session})
    block("CloseCode", {m.name: int(m.value) for m in CloseCode})
    reconnects = ", ".join(f"CloseCode.{_camel(c.name)}" for c in sorted(CLOSE_RECONNECTS))
    lines.append("/** Close codes after which a client reconnects (with its backoff). */")
    lines.append(f"export const CLOSE_RECONNECTS: ReadonlySet<number> = new Set([{reconnects}]);")
    return "\n".join(lines) + "\n"


def _camel(name: str) -> str:
    first, *rest = name.lower().split("_")
    return first + "".join(part.capitalize() for part in rest)


if __name__ == "__main__":
    print(render_typescript(), end="")
