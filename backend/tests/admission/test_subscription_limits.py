"""What one client may add to the process's subscriptions: new tickers per connection and
per IP (token buckets), subscriptions per IP across connections, and giving them back."""

from __future__ import annotations

from typing import Any

from stockfeed.admission.subscription_limits import SubscriptionLimits
from stockfeed.config import Settings

IP = "203.0.113.9"


def limits(exempt: tuple[str, ...] = (), **overrides: Any) -> SubscriptionLimits:
    base: dict[str, Any] = {
        "new_tickers_per_minute": 0.001,  # no refill within a test
        "new_ticker_burst": 3,
        "new_tickers_per_minute_per_ip": 0.001,
        "new_ticker_burst_per_ip": 100,
        "max_subscriptions_per_ip": 100,
    }
    return SubscriptionLimits(Settings(**(base | overrides)), lambda ip: ip in exempt)


def test_new_tickers_limited_per_connection() -> None:
    subs = limits(new_ticker_burst=3)
    budget = subs.for_connection(IP)
    assert [budget.refuse_new_ticker() for _ in range(3)] == [None, None, None]
    problem = budget.refuse_new_ticker()
    assert problem is not None and "per connection" in problem
    # Another connection from the same address has its own burst.
    assert subs.for_connection(IP).refuse_new_ticker() is None


def test_new_tickers_limited_per_ip_across_connections() -> None:
    subs = limits(new_ticker_burst=3, new_ticker_burst_per_ip=4)
    first, second = subs.for_connection(IP), subs.for_connection(IP)
    assert [first.refuse_new_ticker() for _ in range(3)] == [None, None, None]
    assert second.refuse_new_ticker() is None
    problem = second.refuse_new_ticker()
    assert problem is not None and "per address" in problem
    assert subs.for_connection("198.51.100.1").refuse_new_ticker() is None  # other IP


def test_per_ip_refusal_gives_the_connection_token_back() -> None:
    subs = limits(new_ticker_burst=2, new_ticker_burst_per_ip=2)
    other = subs.for_connection(IP)
    assert [other.refuse_new_ticker() for _ in range(2)] == [None, None]  # the IP's tokens
    budget = subs.for_connection(IP)
    for _ in range(5):  # refused per IP: none of these may cost the connection a token
        assert "per address" in (budget.refuse_new_ticker() or "")
    subs._ip_buckets.clear()  # the IP's bucket is full again (as after a minute)
    assert budget.refuse_new_ticker() is None
    assert budget.refuse_new_ticker() is None  # both of its own tokens were still there
    assert "per connection" in (budget.refuse_new_ticker() or "")


def test_exempt_ip_skips_per_ip_rate_never_per_connection() -> None:
    subs = limits(exempt=(IP,), new_ticker_burst=2, new_ticker_burst_per_ip=1)
    budget = subs.for_connection(IP)
    assert budget.refuse_new_ticker() is None
    assert budget.refuse_new_ticker() is None  # past the per-IP burst: exempt
    assert "per connection" in (budget.refuse_new_ticker() or "")
    assert IP not in subs._ip_buckets


def test_subscriptions_per_ip_across_connections() -> None:
    subs = limits(max_subscriptions_per_ip=3)
    a, b = subs.for_connection(IP), subs.for_connection(IP)
    a.added(2)
    assert b.refuse_subscription() is None
    assert b.refuse_subscription(pending=1) is not None  # a batch counts what it adds
    b.added()
    problem = a.refuse_subscription()
    assert problem is not None and "at most 3 subscriptions per address" in problem
    assert subs.for_connection("198.51.100.1").refuse_subscription() is None
    a.removed()
    assert b.refuse_subscription() is None
    assert subs.ip_subscriptions == {IP: 2}


def test_removed_never_gives_back_more_than_held() -> None:
    subs = limits(max_subscriptions_per_ip=3)
    a, b = subs.for_connection(IP), subs.for_connection(IP)
    a.added(1)
    b.added(2)
    a.removed(5)  # only its own one
    assert subs.ip_subscriptions == {IP: 2} and a.held == 0
    a.removed()
    assert subs.ip_subscriptions == {IP: 2}


def test_release_gives_back_everything_the_connection_held() -> None:
    subs = limits(max_subscriptions_per_ip=3)
    a, b = subs.for_connection(IP), subs.for_connection(IP)
    a.added(3)
    assert b.refuse_subscription() is not None
    a.release()
    assert a.held == 0 and subs.ip_subscriptions == {}  # no entry left for an idle IP
    assert b.refuse_subscription() is None
    a.release()  # twice: nothing more
    assert subs.ip_subscriptions == {}


def test_no_per_ip_cap_when_zero_and_exempt_not_counted() -> None:
    uncapped = limits(max_subscriptions_per_ip=0).for_connection(IP)
    uncapped.added(10_000)
    assert uncapped.refuse_subscription() is None
    subs = limits(exempt=(IP,), max_subscriptions_per_ip=1)
    exempt = subs.for_connection(IP)
    exempt.added(5)
    assert exempt.refuse_subscription() is None and subs.ip_subscriptions == {}
