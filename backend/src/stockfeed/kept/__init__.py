"""The market-data store: what the deployment keeps for good (protocol v1.2 "Kept data").

Final bars of every interval the server builds (with revisions), each ticker's last
update (so a closed market always has its last price, after a linger, an eviction or a
restart), and optionally every update (`--keep-ticks`) under a retention budget. SQLite
in WAL mode by default (`sqlite.py`, a file under the data directory, no setup),
PostgreSQL for deployments that outgrow one machine (`postgres.py`): the same schema
(`schema.py`), versioned migrations applied at start.

It is named `kept` apart from `stockfeed.shared`, the live state the processes share
(latest quotes with a TTL, seq counters, the leader lock, recent updates for resume):
that one must be the same for every process *now* and forgets; this one remembers.

Who does what:

- `keeper.py`, in the elected updater only (the store's one writer): folds every update
  it publishes into bar books (the same fold as the wire's, fanout/bars.py) and hands
  the changed bars, the last quotes and the ticks to
- `writer.py`, a thread that writes them in batches, one transaction each: the fan-out
  path never waits for the store, and a crash loses at most the last batch (~0.5 s).
- Every process reads (`base.KeptStore`): `/api/history` through the history service
  (stockfeed/bar_history.py), the last quotes for snapshots and REST, the bar books'
  starting point, `stockfeed export`, and `--source replay --from ... --to ...`.
- `retention.py`: the ticks' budget in days and bytes, enforced in the background.
"""

from stockfeed.kept.base import (
    Batch,
    KeptBar,
    KeptQuote,
    KeptStore,
    KeptTick,
    KeptUnavailable,
    Span,
)

__all__ = [
    "Batch",
    "KeptBar",
    "KeptQuote",
    "KeptStore",
    "KeptTick",
    "KeptUnavailable",
    "Span",
]
