"""A token bucket: how many messages a client may send, with a burst allowance."""

from __future__ import annotations

import time
from collections import OrderedDict


class TokenBucket:
    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def give_back(self) -> None:
        """Return a token taken for something that did not happen after all."""
        self._tokens = min(self.burst, self._tokens + 1.0)


# Keys (client IPs) whose buckets are kept at most: an attacker with many addresses
# evicts the least recently seen (which then start with a full burst again) instead of
# growing memory without bound.
MAX_TRACKED_KEYS = 16_384


class BucketsByKey:
    """A token bucket per key (a client IP), for at most `max_keys` keys."""

    __slots__ = ("_buckets", "burst", "max_keys", "rate")

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_TRACKED_KEYS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def get(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def clear(self) -> None:
        self._buckets.clear()
