"""Who a client is for the per-IP limits (its key, whether it is exempt), the per-IP shares
of the process budgets, and which `Host` names a server answers: in-process, where no
socket is the point (tests/admission/test_client_identity.py and test_host_names.py hit
each over real sockets)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stockfeed.admission.gate import IpLimits
from stockfeed.admission.hosts import HostPolicy, host_name, listens_on_loopback_only
from stockfeed.admission.identity import ClientIdentity, ProxiedAddress
from stockfeed.admission.ip_keys import client_key
from stockfeed.admission.subscription_limits import SubscriptionLimits
from stockfeed.api.rest_limits import RestRateLimiter
from stockfeed.config import Settings


def test_ipv6_clients_are_keyed_by_their_network() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_key("2001:db8:1:3::1", 48) == "2001:db8:1::/48"
    assert client_key("2001:db8::1", 128) == "2001:db8::1"
    # An IPv4 client on a dual-stack socket is its IPv4 address, not "::/64" with everyone.
    assert client_key("::ffff:198.51.100.4") == "198.51.100.4"
    assert client_key("not an address") == "not an address"
    assert client_key("") == ""
    # A key is its own key: releasing by key or by address is the same.
    assert client_key(client_key("2001:db8::5")) == "2001:db8::/64"


def test_exemption_is_for_the_peer_never_for_a_forwarded_address() -> None:
    identity = ClientIdentity(["127.0.0.1", "::1", "10.0.0.0/8"])
    assert identity.exempt("127.0.0.1") and identity.exempt("::1") and identity.exempt("10.2.3.4")
    assert not identity.exempt("127.0.0.2") and not identity.exempt("junk")
    assert not identity.exempt(ProxiedAddress("127.0.0.1"))
    assert not identity.exempt(ProxiedAddress("10.2.3.4"))
    # Asked in either order: the memo of plain answers never leaks to a forwarded one.
    assert not ClientIdentity(["127.0.0.1"]).exempt(ProxiedAddress("127.0.0.1"))
    assert not ClientIdentity([]).exempt("127.0.0.1")


def test_every_per_ip_limit_counts_an_ipv6_network_as_one_client() -> None:
    settings = Settings(
        limit_exempt_ips=[],
        max_connections_per_ip=2,
        handshake_burst=2,
        handshake_rate=0.001,
        api_burst=3,
        api_rate=0.001,
        max_subscriptions_per_ip=2,
    )
    a, b, c = "2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:7:dead:beef:0:3"
    other = "2001:db8:7:8::1"
    ip = IpLimits(settings)
    assert ip.acquire(a) and ip.acquire(b) and not ip.acquire(c)
    assert ip.acquire(other)
    ip.release(c)  # any address of the network gives the slot back
    assert ip.acquire(a)
    assert ip.handshake_allowed(a) and ip.handshake_allowed(b) and not ip.handshake_allowed(c)
    rest = RestRateLimiter(settings)
    assert rest.allow(a, 2) and not rest.allow(b, 2) and rest.allow(other, 3)
    subs = SubscriptionLimits(settings, lambda _ip: False)
    one, two = subs.for_connection(a), subs.for_connection(b)
    one.added(2)
    assert two.refuse_subscription() == "at most 2 subscriptions per address across its connections"
    assert subs.ip_subscriptions == {"2001:db8:7:7::/64": 2}
    assert subs.for_connection(other).refuse_subscription() is None
    # The prefix is a setting.
    wide = SubscriptionLimits(settings.model_copy(update={"ipv6_prefix": 32}), lambda _ip: False)
    wide.for_connection(a).added(2)
    assert wide.for_connection(other).refuse_subscription() is not None


def test_per_ip_shares_are_a_fraction_of_the_process_budget() -> None:
    default = Settings()
    assert default.max_tickers == 10_000 and default.ip_subscription_cap == 2500
    assert (default.ip_new_ticker_burst, default.ip_new_tickers_per_minute) == (100, 120.0)
    small = Settings(max_tickers=40)
    assert small.ip_subscription_cap == 10
    assert (small.ip_new_ticker_burst, small.ip_new_tickers_per_minute) == (10, 5.0)
    assert Settings(max_tickers=1).ip_subscription_cap == 1
    # An explicit value is honoured, 0 included (no cap).
    assert Settings(max_subscriptions_per_ip=7).ip_subscription_cap == 7
    assert Settings(max_subscriptions_per_ip=0).ip_subscription_cap == 0
    explicit = Settings(
        max_tickers=40, new_ticker_burst_per_ip=30, new_tickers_per_minute_per_ip=90
    )
    assert (explicit.ip_new_ticker_burst, explicit.ip_new_tickers_per_minute) == (30, 90.0)
    subs = SubscriptionLimits(small, lambda _ip: False)
    assert (subs.max_per_ip, subs.per_ip_burst) == (10, 10)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("trusted_proxies", "127.0.0.1,proxy.example"),
        ("allowed_hosts", "good.example,bad host"),
        ("allowed_hosts", "http://app.example"),
        ("metrics_token", "short"),
        ("ipv6_prefix", "8"),
    ],
)
def test_bad_settings_are_refused(setting: str, value: str, monkeypatch: Any) -> None:
    monkeypatch.setenv(f"STOCKFEED_{setting.upper()}", value)
    with pytest.raises(ValidationError):
        Settings()


def test_list_settings_are_comma_separated(monkeypatch: Any) -> None:
    monkeypatch.setenv("STOCKFEED_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")
    monkeypatch.setenv("STOCKFEED_ALLOWED_HOSTS", "App.Example.com., *.corp.example")
    settings = Settings()
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.0.2.1"]
    assert settings.allowed_hosts == ["app.example.com", "*.corp.example"]
    assert Settings().model_copy().trusted_proxies == ["10.0.0.0/8", "192.0.2.1"]
    monkeypatch.delenv("STOCKFEED_TRUSTED_PROXIES")
    assert Settings().trusted_proxies == []  # none by default


def test_host_names_a_loopback_server_answers() -> None:
    policy = HostPolicy([], "127.0.0.1")
    for ok in (
        "localhost",
        "localhost:8000",
        "LOCALHOST.:8000",
        "app.localhost:5173",
        "127.0.0.1:8000",
        "127.0.0.2",
        "[::1]:8000",
        "192.0.2.10:80",
        None,
    ):
        assert policy.allows(ok), ok
    for bad in ("evil.example:8000", "evil.example", "localhost.evil.example", "", "[junk]:80"):
        assert not policy.allows(bad), bad
    configured = HostPolicy(["app.example.com", "*.corp.example"], "::1")
    assert configured.allows("app.example.com:443") and configured.allows("corp.example")
    assert configured.allows("x.y.corp.example") and configured.allows("localhost:8000")
    assert not configured.allows("evil.example") and not configured.allows("evilcorp.example")
    assert not configured.allows("app.example.com.evil.example")


def test_a_server_listening_beyond_loopback_answers_any_name_unless_told() -> None:
    assert HostPolicy([], "0.0.0.0").any and HostPolicy([], "192.0.2.1").any
    assert HostPolicy([], "").any and HostPolicy(["*"], "127.0.0.1").any
    public = HostPolicy(["stocks.example"], "0.0.0.0")
    assert not public.any and public.allows("stocks.example") and not public.allows("x.example")
    assert listens_on_loopback_only("localhost") and listens_on_loopback_only("::1")
    assert listens_on_loopback_only("127.0.0.2") and not listens_on_loopback_only("myhost")
    assert host_name("[2001:DB8::1]:8000") == "2001:db8::1"
    assert host_name("Example.COM.:8080") == "example.com"
