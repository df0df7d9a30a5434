"""Garbage-collector settings for a server holding thousands of long-lived connections.

Measured with `make bench ARGS="conn --servers stockfeed"` (5,000 WebSocket clients
opened at once) and a gc callback: with CPython's defaults (700, 10, 10) the storm ran
~730 collections taking 0.8-0.96 s of the ~1.8 s it lasted, the longest a 212 ms full
collection. Each connection allocates a few dozen objects that all live on (they are the
connection), so the young generation fills every few handshakes and everything is
traversed again and again as it ages, along with the ~127,000 objects that the imports and
the exchange calendar leave behind.

So, once the process has started: `gc.freeze()` moves everything alive at that point
(modules, calendars, the app) out of the collector's sight for good, and a young
generation of 20,000 allocations makes collections rare: 41 collections instead of ~730,
connect p99 ~1.6 s -> ~0.86 s in the same benchmark, at +1.3 KiB RSS per idle connection
(15.2 -> 16.5 KiB: garbage freed in larger batches leaves more partly used memory pools).
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
