"""The one settings object: environment `STOCKFEED_*`, overridden by CLI flags."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stockfeed.ticker_groups import TickerGroup
from stockfeed.tickers import InvalidTicker, normalize_ticker

# The sources built in; vendor plugins (sources/vendors/) add theirs by module name.
BUILTIN_SOURCES = ("auto", "sim", "yfinance", "replay", "none")
DEFAULT_TICKERS = ("AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA")
# An allowed_hosts entry: a host name, optionally `*.` or `.` before it (a whole domain).
_HOST_PATTERN = re.compile(r"(\*\.|\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKFEED_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    broker: str = "memory://"
    # One source, or a failover chain (see the Sources block below).
    source: str = "auto"
    # Comma-separated in the environment (DESIGN: list settings are comma-separated).
    tickers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_TICKERS))
    poll_interval: float = Field(15.0, gt=0, le=3600)
    quote_ttl: float = Field(60.0, gt=0, le=86400)
    heartbeat_interval: float = Field(30.0, gt=0, le=3600)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # text: the classic line; json: one JSON object per line (see logs.py).
    log_format: Literal["text", "json"] = "text"

    # Simulator. Without a seed, a fixed default (sources/sim.py DEFAULT_SEED): the same
    # history on every start and every machine.
    sim_seed: int | None = None
    sim_tick_interval: float = Field(1.0, gt=0, le=3600)
    # On: each instrument trades its market's hours (closed markets are quiet); off: every
    # instrument trades around the clock (demos at night), and market_status says so.
    sim_market_hours: bool = True

    # Replay
    replay_file: str | None = None  # default: the bundled real EA recording
    replay_speed: float = Field(1.0, gt=0, le=1_000_000)
    replay_loop: bool = True

    # yfinance
    yahoo_probe_timeout: float = Field(4.0, gt=0, le=60)
    yahoo_streamer_url: str = "wss://streamer.finance.yahoo.com/?version=2"
    yahoo_streaming: bool = True

    # Leader election (Redis broker with several processes).
    leader_ttl: float = Field(5.0, ge=1, le=300)

    # WebSocket limits.
    max_message_bytes: int = Field(4096, ge=64, le=1_048_576)
    client_queue_size: int = Field(1024, ge=1, le=1_000_000)
    # Resume: recent updates kept per ticker, and how long a ticker stays subscribed (its
    # history kept) after its last client left.
    resume_history: int = Field(2000, ge=1, le=100_000)
    resume_window: float = Field(300.0, ge=0, le=86400)
    # The fast fan-out path (stockfeed.server); off = uvicorn's stock protocol + send_text.
    fast_path: bool = True
    # A client whose socket stays full this long is closed with 4408.
    slow_client_timeout: float = Field(10.0, gt=0, le=3600)
    # Bytes the server holds for one client, whatever the message (fanout/connections.py):
    # past it, what cannot be conflated closes the client with 4408. Room for the biggest
    # reply one request can cause (a subscribe with max_bar_streams of `bars`).
    client_buffer_bytes: int = Field(1024 * 1024, ge=64 * 1024, le=2**30)
    client_messages_per_second: float = Field(20.0, gt=0)
    client_message_burst: int = Field(40, ge=1)
    max_subscriptions: int = Field(50, ge=1, le=10_000)
    # (ticker, interval) bar streams per connection (a subscribe's `bars`): what one
    # subscribe can make the server send at once (a `bars` message is up to 120 bars).
    # Room for a full watchlist (max_subscriptions) with a sparkline stream per ticker,
    # plus a chart's and a comparison's.
    max_bar_streams: int = Field(64, ge=0, le=10_000)
    shutdown_retry_after_ms: int = Field(2500, ge=0, le=600_000)

    # Security (admission/auth.py, gate.py; docs/protocol.md#authentication). Auth is on once
    # a key is configured: an HS256 secret (environment only: flags show in `ps`) or an
    # RS256/ES256 public key file.
    auth_secret: SecretStr | None = None
    auth_public_key_file: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_leeway: float = Field(30.0, ge=0, le=3600)
    # Browser origins allowed to open WebSockets besides the server's own (same host).
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Per client IP, per process; 0 = no cap. Exempt IPs/networks skip both limits.
    max_connections_per_ip: int = Field(256, ge=0, le=1_000_000)
    handshake_rate: float = Field(10.0, gt=0, le=1_000_000)
    handshake_burst: int = Field(30, ge=1, le=1_000_000)
    limit_exempt_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"]
    )

    # Ticker groups (ticker_groups.py, docs/scaling.md#ticker-groups): `K/N` makes this
    # process group K of N, serving only the tickers a load balancer's `hash` rule sends to
    # its group; unset, it serves every ticker.
    ticker_group: str | None = None

    # Process-wide budgets for what clients can make the process hold (docs/protocol.md#limits).
    # Tickers held at once (subscribed + lingering); a new one past it evicts the ticker
    # that has lingered longest, or is refused with `ticker_limit` when none lingers.
    max_tickers: int = Field(10_000, ge=1, le=1_000_000)
    # New tickers (not yet held by the process) one connection may bring in: a bucket of
    # `new_ticker_burst`, refilled at `new_tickers_per_minute`; refusals: `new_ticker_rate`.
    new_tickers_per_minute: float = Field(60.0, gt=0, le=1_000_000)
    new_ticker_burst: int = Field(50, ge=1, le=1_000_000)
    # The same per client IP across its connections (exempt IPs skip it). Unset: derived
    # from max_tickers (`ip_new_tickers_per_minute`, `ip_new_ticker_burst`): 120 and 100,
    # but never more than an eighth of max_tickers a minute or a quarter at once.
    new_tickers_per_minute_per_ip: float | None = Field(None, gt=0, le=1_000_000)
    new_ticker_burst_per_ip: int | None = Field(None, ge=1, le=1_000_000)
    # Subscriptions per client IP across its connections (exempt IPs skip it; 0: no cap).
    # Unset: a quarter of max_tickers (`ip_subscription_cap`), so no one address can take
    # the process's whole ticker budget.
    max_subscriptions_per_ip: int | None = Field(None, ge=0, le=10_000_000)
    # A ticker lingers after its last client left as long as it was watched, at least
    # `linger_min` and at most `resume_window` seconds: one only a flood touched goes soon.
    linger_min: float = Field(10.0, ge=0, le=86400)
    # Resume history kept by the process, in bytes, shared by all tickers (least recently
    # watched gives up first); `resume_history` still caps each ticker's count.
    resume_history_bytes: int = Field(48 * 1024 * 1024, ge=64 * 1024, le=2**40)
    # Milliseconds the broker's pub/sub link stops reading after a busy read, so that what
    # Redis sends meanwhile comes in one read (broker/base.py INGEST_REST); 0: never.
    ingest_rest_ms: float = Field(2.0, ge=0, le=50)

    # -- REST budgets (api/): filled in by the REST work --
    # Requests to /api/* per client IP (exempt IPs skip it; /api/ws/health never counts):
    # a bucket of `api_burst` refilled at `api_rate` per second; past it, HTTP 429
    # `rate_limited` with Retry-After. The burst covers a dashboard's page load.
    api_rate: float = Field(20.0, gt=0, le=1_000_000)
    api_burst: int = Field(60, ge=1, le=1_000_000)
    # Bytes of REST answers the process remembers (history bodies, ticker lookups, unknown
    # tickers); least recently used go first. What a flood of distinct requests can pin.
    rest_cache_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024, le=2**40)
    # Calls to the upstream provider (Yahoo) made for clients, process-wide: history and
    # ticker lookups take one each; past it, 503 `upstream_busy`. Keeps clients from
    # getting the server's address rate-limited or banned; the updater is not counted.
    upstream_calls_per_minute: float = Field(60.0, gt=0, le=1_000_000)
    upstream_burst: int = Field(30, ge=1, le=1_000_000)

    # -- HTTP edges (slow or oversized requests, idle sockets): filled in by the edge work --
    # (server.edge_limits.EdgeLimits; docs/protocol.md#http-limits.) Seconds from connect (or
    # from the first byte of a later request on a kept-alive connection) until the request
    # head is complete: a partial head then gets 408, a connection that sent nothing is closed.
    http_header_timeout: float = Field(10.0, gt=0, le=3600)
    # Request target (path and query) in bytes: longer gets 414.
    max_url_bytes: int = Field(8192, ge=256, le=1_048_576)
    # Header fields, in bytes (each `name: value` line) and in number: more gets 431.
    max_header_bytes: int = Field(16384, ge=1024, le=1_048_576)
    max_header_count: int = Field(100, ge=8, le=10_000)
    # Open connections (HTTP and WebSocket) per process, lowered to 90 % of the open-files
    # limit when above it; 0: that limit alone. A connection accepted past it gets 503
    # `server_busy` (Retry-After) to its request, or is closed after 1 s without one.
    max_open_connections: int = Field(20_000, ge=0, le=10_000_000)

    # -- Identity and exposure: filled in by the exposure work (docs/protocol.md#client-
    # identity, #host-names, #health-and-metrics). Reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed: addresses or networks, `*` for every peer; empty (the
    # default): none, the peer is the client. A forwarded client is never exempt.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Per-IP limits count an IPv6 client as its network of this many bits (one subscriber
    # gets a /64 and may use any address in it).
    ipv6_prefix: int = Field(64, ge=16, le=128)
    # Host names the server answers (DNS rebinding): `name`, `*.domain`, or `*`. Empty: when
    # listening on loopback only, just localhost names and IP literals; otherwise any name.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Bearer token that unlocks the detailed /api/ws/health and /metrics (ticker lists, host
    # names); environment only (flags show in `ps`). With auth on or this set, everyone
    # else gets counts only.
    metrics_token: SecretStr | None = None
    # Requests to /api/ws/health and /metrics per client IP (exempt IPs skip it): a bucket
    # of `status_burst` refilled at `status_rate` per second; past it, 429 `rate_limited`.
    status_rate: float = Field(5.0, gt=0, le=1_000_000)
    status_burst: int = Field(20, ge=1, le=1_000_000)
    # -- Sources (sources/, docs/sources.md): vendor streams, their keys, failover --
    # `source` is one name (auto, sim, yfinance, replay, none, or a vendor plugin:
    # alpaca, coinbase, massive, finnhub) or a comma-separated chain (`alpaca,yfinance`)
    # that fails each ticker over to the next source on a fatal error, a capacity limit,
    # or silence while its market is open, and back once the first is good again.
    # Seconds a subscribed ticker may stay silent while its market is open before it is
    # stale (a chain fails it over); a socket whose open tickers are all that silent is
    # mute and is replaced.
    source_mute_after: float = Field(60.0, ge=1, le=86400)
    # Longest wait between reconnects to a vendor (capped exponential backoff, jittered).
    source_reconnect_max: float = Field(60.0, ge=0.1, le=3600)
    # Seconds a chain's better source must stay good before its tickers come back to it.
    source_fail_back_after: float = Field(30.0, ge=0, le=86400)
    # Alpaca (sources/vendors/alpaca.py). Keys from Alpaca's own variables; never logged.
    alpaca_feed: Literal["iex", "sip", "delayed_sip"] = "iex"
    # The stocks stream; default wss://stream.data.alpaca.markets/v2/{feed}. Its 24/7 test
    # stream is .../v2/test (symbol FAKEPACA).
    alpaca_url: str | None = None
    alpaca_crypto_url: str = "wss://stream.data.alpaca.markets/v1beta3/crypto/us"
    alpaca_rest_url: str = "https://data.alpaca.markets"  # history
    # The assets directory (/api/symbols); default: the live API, then the paper one.
    alpaca_trading_url: str | None = None
    # Symbols with trades and quotes per connection (the rest get minute bars); default by
    # feed: 30 for iex (Alpaca's free plan), none for sip.
    alpaca_symbol_limit: int | None = Field(None, ge=0, le=1_000_000)
    alpaca_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("APCA_API_KEY_ID", "STOCKFEED_ALPACA_KEY_ID")
    )
    alpaca_secret_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("APCA_API_SECRET_KEY", "STOCKFEED_ALPACA_SECRET_KEY"),
    )
    # Coinbase Advanced Trade market data (sources/vendors/coinbase.py): keyless.
    coinbase_url: str = "wss://advanced-trade-ws.coinbase.com"
    coinbase_rest_url: str = "https://api.coinbase.com"  # products, candles
    # Massive, formerly Polygon (sources/vendors/massive.py): US stocks, real time or 15
    # minutes delayed. The key from Massive's own variable; never logged.
    massive_feed: Literal["realtime", "delayed"] = "realtime"
    # The stocks stream; default wss://socket.massive.com/stocks (realtime) or
    # wss://delayed.massive.com/stocks (delayed).
    massive_url: str | None = None
    massive_rest_url: str = "https://api.massive.com"  # history, tickers, daily closes
    massive_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("MASSIVE_API_KEY", "STOCKFEED_MASSIVE_API_KEY")
    )
    # Finnhub (sources/vendors/finnhub.py): US stock trades. The key goes in the socket's
    # URL (`?token=`): masked wherever a URL is shown.
    finnhub_url: str = "wss://ws.finnhub.io"
    finnhub_rest_url: str = "https://finnhub.io/api/v1"  # symbols, quotes, candles
    finnhub_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("FINNHUB_API_KEY", "STOCKFEED_FINNHUB_API_KEY")
    )

    # -- Market-data store (stockfeed/kept/, docs/store.md): what the deployment keeps --
    # Where: `sqlite:///PATH` (relative; `sqlite:////abs/path` absolute), by default
    # `stockfeed.db` in `data_dir`; `postgresql://USER:PASSWORD@HOST:PORT/DB`; or `none`
    # (keep nothing: history from the source only, as before the store).
    store: str = ""
    # The SQLite store's directory; default: the user's data directory (platformdirs:
    # ~/.local/share/stockfeed on Linux).
    data_dir: str | None = None
    # Keep every update too (replay from the store, exports), for `keep_ticks_days` days.
    keep_ticks: bool = False
    keep_ticks_days: float = Field(30.0, gt=0, le=36_500)
    # The store's size at most (bytes, 0: no cap): past it the oldest day of ticks goes
    # (bars and last quotes are never deleted by it).
    store_max_bytes: int = Field(10 * 2**30, ge=0, le=2**50)
    # `--source replay --from T [--to T]`: replay the store's kept updates of that time
    # (ISO 8601, UTC unless it says otherwise, or epoch seconds) instead of a file.
    replay_from: str | None = None
    replay_to: str | None = None

    @field_validator("ticker_group")
    @classmethod
    def _valid_ticker_group(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return str(TickerGroup.parse(value))  # BadTickerGroup is a ValueError: a clear error

    @property
    def group(self) -> TickerGroup | None:
        """This process's ticker group, or None: it serves every ticker."""
        return None if self.ticker_group is None else TickerGroup.parse(self.ticker_group)

    @field_validator("source")
    @classmethod
    def _valid_source(cls, value: str) -> str:
        from stockfeed.sources import vendors

        known = [*BUILTIN_SOURCES, *vendors.names()]
        chain = [part.strip().lower() for part in value.split(",") if part.strip()]
        if not chain:
            raise ValueError(f"name a source: {', '.join(known)}")
        for name in chain:
            if name not in known:
                raise ValueError(f"unknown source {name!r}: use {', '.join(known)}")
        if len(chain) > 1:
            for alone in ("auto", "none"):
                if alone in chain:
                    raise ValueError(f"{alone} cannot be part of a chain")
            if len(set(chain)) != len(chain):
                raise ValueError("a chain names each source once")
        return ",".join(chain)

    @property
    def source_chain(self) -> list[str]:
        """The configured sources, first choice first."""
        return self.source.split(",")

    @field_validator(
        "alpaca_url",
        "alpaca_trading_url",
        "alpaca_key_id",
        "alpaca_secret_key",
        "massive_url",
        "massive_api_key",
        "finnhub_api_key",
        mode="before",
    )
    @classmethod
    def _empty_source_value_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    # -- HTTP edges, every phase (issue 20: every connection must make progress) --
    # (server/fast_http.py on the fast path; docs/protocol.md#http-limits.) Seconds from
    # the end of a request head until its body is complete: past it, 408 `request_timeout`
    # when no answer has begun, else a close.
    http_body_timeout: float = Field(10.0, gt=0, le=3600)
    # Seconds a response may wait on a client that does not read it: when the client takes
    # not one byte this long while its answers wait (our buffer full, pipelined answers
    # untaken, a closing connection's answer unsent), the connection is reset.
    http_write_timeout: float = Field(10.0, gt=0, le=3600)
    # Seconds from a WebSocket upgrade request until the app accepts or refuses it: past
    # it, 503 `server_busy`.
    http_upgrade_timeout: float = Field(10.0, gt=0, le=3600)
    # Seconds a kept-alive connection may sit idle between requests (uvicorn's default).
    http_keepalive_timeout: float = Field(5.0, gt=0, le=3600)
    # Open HTTP connections per socket peer (IPv6: per `ipv6_prefix`) per process, not yet
    # upgraded to WebSocket (max_connections_per_ip counts those); exempt IPs and trusted
    # proxies skip it; 0: no cap. Past it: 429 `too_many_connections` with Retry-After.
    max_http_connections_per_ip: int = Field(128, ge=0, le=1_000_000)

    @field_validator("tickers", mode="before")
    @classmethod
    def _split_tickers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in (p.strip() for p in value.split(",")) if part]
        return value

    @field_validator("tickers")
    @classmethod
    def _valid_tickers(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one ticker is needed")
        out: list[str] = []
        for raw in value:
            try:
                ticker = normalize_ticker(raw)
            except InvalidTicker as exc:
                raise ValueError(str(exc)) from None
            if ticker not in out:
                out.append(ticker)
        return out

    @field_validator(
        "auth_secret",
        "auth_public_key_file",
        "auth_issuer",
        "auth_audience",
        "metrics_token",
        "sim_seed",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator(
        "allowed_origins", "limit_exempt_ips", "trusted_proxies", "allowed_hosts", mode="before"
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in (p.strip() for p in value.split(",")) if part]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _valid_origins(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for origin in value:
            if origin != "*" and "://" not in origin:
                raise ValueError(f"an origin is SCHEME://HOST[:PORT] or *, not {origin!r}")
            out.append(origin.rstrip("/").lower())
        return out

    @field_validator("limit_exempt_ips")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or network: {item!r}") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address, network or *: {item!r}") from None
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _valid_hosts(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for item in value:
            name = item.lower().rstrip(".")
            if name != "*" and not _HOST_PATTERN.fullmatch(name):
                raise ValueError(f"a host is NAME, *.DOMAIN, .DOMAIN or *, not {item!r}")
            out.append(name)
        return out

    @field_validator("store")
    @classmethod
    def _valid_store(cls, value: str) -> str:
        from stockfeed.kept import urls

        try:
            urls.check(value)
        except urls.BadStoreURL as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @field_validator("replay_from", "replay_to")
    @classmethod
    def _valid_time(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        from stockfeed.kept.times import parse_time

        parse_time(value)  # raises ValueError with the reason
        return value

    @property
    def replay_span(self) -> tuple[float, float]:
        """[from, to) of a replay from the store, epoch seconds."""
        from stockfeed.kept.times import parse_time

        since = parse_time(self.replay_from) if self.replay_from else 0.0
        until = parse_time(self.replay_to) if self.replay_to else float(2**40)
        return since, until

    @property
    def keeps(self) -> bool:
        """Whether a market-data store is on (`--store none` turns it off)."""
        return self.store.strip().lower() != "none"

    @field_validator("broker")
    @classmethod
    def _valid_broker(cls, value: str) -> str:
        if value == "memory://" or value == "memory":
            return "memory://"
        from stockfeed.broker import urls

        if urls.redis_mode(value) is None:
            raise ValueError(
                "use memory://, redis://HOST:PORT/DB, redis+cluster://HOST:PORT[,HOST:PORT...]"
                " or redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]"
            )
        try:
            urls.parse(value)
        except urls.BadBrokerURL as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.workers > 1 and self.broker == "memory://":
            raise ValueError(
                "--workers > 1 needs the Redis broker (--broker redis://HOST:PORT/DB): "
                "the memory broker cannot share a feed between processes"
            )
        if self.auth_secret is not None and self.auth_public_key_file:
            raise ValueError(
                "set STOCKFEED_AUTH_SECRET (HS256) or --auth-public-key-file (RS256/ES256), "
                "not both"
            )
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 16:
            raise ValueError(
                "STOCKFEED_METRICS_TOKEN must be at least 16 characters (openssl rand -hex 16)"
            )
        if self.auth_secret is not None and len(self.auth_secret.get_secret_value()) < 32:
            # RFC 7518 3.2: an HS256 key has at least 256 bits. The value is never echoed.
            raise ValueError(
                "STOCKFEED_AUTH_SECRET must be at least 32 characters (openssl rand -hex 32)"
            )
        return self

    @property
    def ip_subscription_cap(self) -> int:
        """Subscriptions per client IP (0: no cap): set, or a quarter of max_tickers."""
        if self.max_subscriptions_per_ip is not None:
            return self.max_subscriptions_per_ip
        return max(1, self.max_tickers // 4)

    @property
    def ip_new_ticker_burst(self) -> int:
        if self.new_ticker_burst_per_ip is not None:
            return self.new_ticker_burst_per_ip
        return max(1, min(100, self.max_tickers // 4))

    @property
    def ip_new_tickers_per_minute(self) -> float:
        if self.new_tickers_per_minute_per_ip is not None:
            return self.new_tickers_per_minute_per_ip
        return max(1.0, min(120.0, self.max_tickers / 8))

    @property
    def uses_redis(self) -> bool:
        """Any Redis deployment: one server, a Cluster, or Sentinel-managed replicas."""
        return self.broker != "memory://"
