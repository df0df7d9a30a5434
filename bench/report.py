"""The summary table (servers side by side, then stockfeed / peer ratios) and the JSON file."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

from bench.scenarios import Column, Scenario

# Left to right in the table, whatever order the scenarios ran in.
TABLE_ORDER = ["max", "rate", "bars", "conn", "fresh", "slow"]

Results = dict[str, dict[str, list[dict[str, Any]]]]  # server -> scenario -> one dict per repeat


def median_summary(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r["summary"].get(key) for r in runs if "summary" in r]
    numbers = [v for v in values if isinstance(v, int | float)]
    return statistics.median(numbers) if numbers else None


def _columns(scenarios: list[Scenario]) -> list[tuple[str, Column]]:
    chosen = sorted(
        scenarios,
        key=lambda s: TABLE_ORDER.index(s.name) if s.name in TABLE_ORDER else len(TABLE_ORDER),
    )
    return [(s.name, c) for s in chosen for c in s.columns]


def _ratio(subject: float | None, peer: float | None, floor: float) -> str:
    if subject is None or peer is None:
        return "n/a"
    if peer == 0 and subject == 0:
        return "="
    if peer == 0 or (floor > 0 and peer <= floor):
        return "n/a"
    return f"{subject / peer:.2f}x"


def table(results: Results, servers: list[str], subject: str, scenarios: list[Scenario]) -> str:
    columns = _columns(scenarios)
    headers = ["server", *(c.header for _, c in columns)]
    rows: list[list[str]] = []
    values: dict[str, list[float | None]] = {}
    for server in servers:
        per = results.get(server, {})
        row_values = [median_summary(per.get(name, []), c.key) for name, c in columns]
        values[server] = row_values
        cells = []
        for (name, c), v in zip(columns, row_values, strict=True):
            failed = any("error" in r for r in per.get(name, []))
            cells.append(
                "error" if v is None and failed else "n/a" if v is None else c.fmt.format(v)
            )
        rows.append([server, *cells])
    ratio_rows: list[list[str]] = []
    if subject in values:
        for server in servers:
            if server == subject:
                continue
            ratio_rows.append(
                [
                    f"{subject}/{server}",
                    *(
                        _ratio(a, b, c.ratio_floor)
                        for a, b, (_, c) in zip(
                            values[subject], values[server], columns, strict=True
                        )
                    ),
                ]
            )
    widths = [max(len(r[i]) for r in [headers, *rows, *ratio_rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    if ratio_rows:
        out.append(line(["-" * w for w in widths]))
        out += [line(r) for r in ratio_rows]
        higher = [c.header for _, c in columns if c.better == "higher"]
        out.append(
            f"ratios are {subject} / peer: below 1x is better"
            + (f", except for {', '.join(higher)} (above 1x is better)" if higher else "")
        )
    return "\n".join(out)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1, default=_plain))
    tmp.replace(path)
