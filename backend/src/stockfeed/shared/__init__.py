"""The live state the processes of one deployment share: the latest quote of each ticker
(fresh with a TTL, and the last known), per-ticker `seq` counters, the updater's leader
lock, the tickers clients want, the recent updates for resume, and bar books'
checkpoints. In memory for one process (`memory.py`), in Redis for several (`redis.py`).

It is named `shared` for what it is for: state that must be the same for every process
*now*. It keeps nothing for long (quotes expire, histories are capped, a memory store
ends with its process). What is kept for good, on disk or in PostgreSQL (bars, last
quotes, every update if asked), is the market-data store: `stockfeed.kept`.
"""

from stockfeed.shared.base import SharedStore, StoredQuote, StoreUnavailable

__all__ = ["SharedStore", "StoreUnavailable", "StoredQuote"]
