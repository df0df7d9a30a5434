"""Garbage-collector settings for a server holding thousands of long-lived connections.

Each connection allocates a few dozen objects that all live on (they are the
connection), so with CPython's defaults (700, 10, 10) the young generation fills every few
handshakes of a connect storm and everything is traversed again and again as it ages,
along with the objects that the imports and the exchange calendar leave behind: the
collector took about half of a storm (figures in docs/performance.md).

So, once the process has started: `gc.freeze()` moves everything alive at that point
(modules, calendars, the app) out of the collector's sight for good, and a young
generation of 20,000 allocations makes collections rare. The price is a little memory
per idle connection (garbage freed in larger batches leaves more partly used pools).
Cyclic garbage (a closed connection's task and exception chain) is still collected, just
in larger batches; everything else is freed at once by reference counting as before.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 50, 100)


def tune_gc() -> None:
    """Call once the app has started (after its imports and warm-up)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
