"""State shared by the processes of one deployment: quote cache, seq, leader lock."""

from stockfeed.store.base import SharedStore, StoredQuote, StoreUnavailable

__all__ = ["SharedStore", "StoreUnavailable", "StoredQuote"]
