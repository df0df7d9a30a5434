"""What one client may add to the process's subscriptions: new tickers per minute (per
connection and per client IP) and subscriptions per client IP across its connections.

The process-wide cap on tickers held is the hub's (`max_tickers`); these limits keep one
client from taking all of it. A "new" ticker is one the process does not hold yet:
subscribing to it starts a broker subscription, a history ring and, with a source, its
production (and with yfinance, a lookup upstream). Subscribing to a ticker the process
already holds is cheap and never counts against the new-ticker rate.

Refusals are per-ticker `error`s: `new_ticker_rate` and `subscription_limit`
(docs/protocol.md#limits). Clients in `limit_exempt_ips` skip the per-IP limits, never
the per-connection ones. Per-IP means per `client_key` (admission/ip_keys.py): an IPv6
client counts as its /64. By default one address may hold at most a quarter of the
process's ticker budget (config.py `ip_subscription_cap`).
"""

from __future__ import annotations

from collections.abc import Callable

from stockfeed.admission.ip_keys import client_key
from stockfeed.admission.token_bucket import BucketsByKey, TokenBucket
from stockfeed.config import Settings


class SubscriptionLimits:
    """One per process: the per-IP state, and a `ClientBudget` per connection."""

    def __init__(self, settings: Settings, exempt: Callable[[str], bool]) -> None:
        self.per_connection_rate = settings.new_tickers_per_minute / 60.0
        self.per_connection_burst = settings.new_ticker_burst
        self.per_ip_rate = settings.ip_new_tickers_per_minute / 60.0
        self.per_ip_burst = settings.ip_new_ticker_burst
        self.max_per_ip = settings.ip_subscription_cap
        self.max_per_connection = settings.max_subscriptions
        self.ipv6_prefix = settings.ipv6_prefix
        self._exempt = exempt
        self._ip_buckets = BucketsByKey(self.per_ip_rate, self.per_ip_burst)
        # Per client key (IPv6: its /64), only keys holding some: bounded by them.
        self.ip_subscriptions: dict[str, int] = {}

    def for_connection(self, ip: str) -> ClientBudget:
        """`ip` as the connection's scope has it (exemption is decided on it, a forwarded
        address never being exempt); its limits are counted under its client key."""
        return ClientBudget(self, client_key(ip, self.ipv6_prefix), self._exempt(ip))

    def _ip_bucket(self, ip: str) -> TokenBucket:
        return self._ip_buckets.get(ip)


class ClientBudget:
    """One connection's side of the limits."""

    __slots__ = ("_bucket", "exempt", "held", "ip", "limits")

    def __init__(self, limits: SubscriptionLimits, ip: str, exempt: bool) -> None:
        self.limits = limits
        self.ip = ip  # the client key
        self.exempt = exempt
        self.held = 0  # subscriptions this connection counts against its IP
        self._bucket = TokenBucket(limits.per_connection_rate, limits.per_connection_burst)

    def refuse_new_ticker(self) -> str | None:
        """Take one new-ticker token from the connection and its IP, or say why not."""
        if not self._bucket.take():
            return (
                f"at most {self.limits.per_connection_burst} new tickers at once and "
                f"{self.limits.per_connection_rate * 60:g} a minute per connection: "
                "subscribe to it later"
            )
        if not self.exempt and not self.limits._ip_bucket(self.ip).take():
            self._bucket.give_back()
            return (
                f"at most {self.limits.per_ip_rate * 60:g} new tickers a minute per "
                "address: subscribe to it later"
            )
        return None

    def refuse_subscription(self, pending: int = 0) -> str | None:
        """Whether one more subscription (after `pending` not yet counted) would take
        the client's IP over its limit across connections."""
        limit = self.limits.max_per_ip
        if self.exempt or not limit:
            return None
        if self.limits.ip_subscriptions.get(self.ip, 0) + pending >= limit:
            return f"at most {limit} subscriptions per address across its connections"
        return None

    def added(self, count: int = 1) -> None:
        if self.exempt:
            return
        self.held += count
        counts = self.limits.ip_subscriptions
        counts[self.ip] = counts.get(self.ip, 0) + count

    def removed(self, count: int = 1) -> None:
        count = min(count, self.held)
        if self.exempt or count <= 0:
            return
        self.held -= count
        counts = self.limits.ip_subscriptions
        left = counts.get(self.ip, 0) - count
        if left > 0:
            counts[self.ip] = left
        else:
            counts.pop(self.ip, None)

    def release(self) -> None:
        """The connection ended: give back everything it held."""
        self.removed(self.held)
