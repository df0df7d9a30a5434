"""A fixed-bucket latency histogram: cheap to fill per message, exact enough, easy to merge.

Buckets are 0.05 ms wide below 1 s and 10 ms wide from 1 s to 121 s; anything later lands in
the last bucket (the true maximum is kept separately).
"""

from __future__ import annotations

import math

FINE_MS = 0.05
FINE_BUCKETS = 20_000  # 0 .. 1000 ms
COARSE_MS = 10.0
COARSE_BUCKETS = 12_000  # 1 s .. 121 s
SIZE = FINE_BUCKETS + COARSE_BUCKETS + 1


def new() -> list[int]:
    return [0] * SIZE


def bucket(latency_ms: float) -> int:
    if latency_ms < 1000.0:
        return int(latency_ms * 20.0) if latency_ms > 0.0 else 0
    index = FINE_BUCKETS + int((latency_ms - 1000.0) / COARSE_MS)
    return index if index < SIZE else SIZE - 1


def upper_ms(index: int) -> float:
    """The upper edge of a bucket: percentiles are reported conservatively."""
    if index < FINE_BUCKETS:
        return (index + 1) * FINE_MS
    return 1000.0 + (index - FINE_BUCKETS + 1) * COARSE_MS


def sparse(hist: list[int]) -> dict[int, int]:
    return {i: n for i, n in enumerate(hist) if n}


def merge(parts: list[dict[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in parts:
        for index, count in part.items():
            out[index] = out.get(index, 0) + count
    return out


def percentile(hist: dict[int, int], q: float) -> float | None:
    """The q-th percentile (0-100) in ms, or None for an empty histogram."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(total * q / 100.0))
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= rank:
            return upper_ms(index)
    return upper_ms(max(hist))
