"""The `stockfeed` command. `serve` lives here; other subcommands live in their own
modules (`stockfeed/commands/*.py`), each exposing `register(subparsers)` that adds its
parser with `set_defaults(run=callable taking the parsed args)`."""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import SecretStr, ValidationError

from stockfeed import __version__
from stockfeed.config import Settings
from stockfeed.logs import logging_config, redact, setup_logging

# flag -> (settings field, type, help)
_FLAGS: dict[str, tuple[str, type, str]] = {
    "--host": ("host", str, "interface to listen on (default 127.0.0.1)"),
    "--port": ("port", int, "TCP port (default 8000)"),
    "--workers": ("workers", int, "worker processes sharing the port (needs a Redis --broker)"),
    "--broker": (
        "broker",
        str,
        "memory:// (default), redis://HOST:PORT/DB, redis+cluster://HOST:PORT[,...] "
        "or redis+sentinel://HOST:PORT[,...]/MASTER[/DB]",
    ),
    "--source": (
        "source",
        str,
        "auto (default), sim, yfinance, replay, none (relay only), a vendor (alpaca, "
        "coinbase), or a failover chain such as alpaca,yfinance",
    ),
    "--tickers": ("tickers", str, "comma-separated default watchlist"),
    "--poll-interval": ("poll_interval", float, "seconds between yfinance polls (default 15)"),
    "--quote-ttl": ("quote_ttl", float, "seconds a cached quote counts as fresh (default 60)"),
    "--heartbeat-interval": ("heartbeat_interval", float, "seconds between heartbeats"),
    "--sim-seed": (
        "sim_seed",
        int,
        "seed for the simulator (default 0: the same history on every start and machine)",
    ),
    "--sim-tick-interval": ("sim_tick_interval", float, "seconds between simulated ticks"),
    "--replay-file": ("replay_file", str, "JSON Lines file of ticks for --source replay"),
    "--replay-speed": ("replay_speed", float, "replay speed factor (default 1)"),
    "--speed": ("replay_speed", float, "the same as --replay-speed"),
    "--from": (
        "replay_from",
        str,
        "with --source replay: replay the store's kept updates from this time (ISO 8601, "
        "UTC unless it says, or epoch s; kept with --keep-ticks)",
    ),
    "--to": ("replay_to", str, "with --from: until this time (default: the newest)"),
    "--leader-ttl": ("leader_ttl", float, "seconds of the updater lock (default 5)"),
    "--log-level": ("log_level", str, "debug, info, warning or error"),
    "--log-format": ("log_format", str, "text (default) or json: one JSON object per line"),
    # Security (the HS256 secret is STOCKFEED_AUTH_SECRET only: flags show in `ps`).
    "--auth-public-key-file": (
        "auth_public_key_file",
        str,
        "PEM public key (RSA or EC) that verifies RS256/ES256 tokens; turns auth on",
    ),
    "--auth-issuer": ("auth_issuer", str, "required `iss` of tokens"),
    "--auth-audience": ("auth_audience", str, "required `aud` of tokens"),
    "--auth-leeway": ("auth_leeway", float, "seconds of clock skew allowed (default 30)"),
    "--allowed-origins": (
        "allowed_origins",
        str,
        "comma-separated browser origins allowed besides the server's own, or *",
    ),
    "--max-connections-per-ip": (
        "max_connections_per_ip",
        int,
        "open WebSockets per client IP (default 256, 0 = no cap)",
    ),
    "--handshake-rate": ("handshake_rate", float, "WebSocket handshakes/s per IP (default 10)"),
    "--handshake-burst": ("handshake_burst", int, "handshake burst per IP (default 30)"),
    "--trusted-proxies": (
        "trusted_proxies",
        str,
        "comma-separated proxy addresses/networks whose X-Forwarded-For is believed, or *"
        " (default: none)",
    ),
    "--allowed-hosts": (
        "allowed_hosts",
        str,
        "comma-separated Host names served (NAME, *.DOMAIN, or *); default: localhost names"
        " and IPs when listening on loopback, any otherwise",
    ),
    "--ticker-group": (
        "ticker_group",
        str,
        "K/N: serve only the tickers of group K of N, as a load balancer's hash rule routes"
        " them (docs/scaling.md#ticker-groups; default: every ticker)",
    ),
    # The market-data store (docs/store.md).
    "--store": (
        "store",
        str,
        "where kept data goes: sqlite:///PATH, postgresql://USER:PASSWORD@HOST:PORT/DB or "
        "none (default: stockfeed.db in --data-dir)",
    ),
    "--data-dir": (
        "data_dir",
        str,
        "the SQLite store's directory (default: the user's data directory, "
        "~/.local/share/stockfeed on Linux)",
    ),
    "--keep-ticks": ("keep_ticks", bool, "keep every update too (replay, export)"),
    "--keep-ticks-days": ("keep_ticks_days", float, "days updates are kept (default 30)"),
    "--store-max-bytes": (
        "store_max_bytes",
        int,
        "the store's size at most, oldest ticks deleted past it (default 10 GiB, 0: none)",
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockfeed", description="Live stock prices, pushed.")
    parser.add_argument("--version", action="version", version=f"stockfeed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the feed server")
    for flag, (_, kind, text) in _FLAGS.items():
        if kind is bool:  # a switch: present means on
            serve_parser.add_argument(
                flag, action="store_const", const=True, default=None, help=text
            )
        else:
            serve_parser.add_argument(flag, type=kind, default=None, help=text)
    serve_parser.set_defaults(run=_run_serve)
    for register in _command_registrars():
        register(sub)
    return parser


def _command_registrars() -> list[Callable[[Any], None]]:
    """Every `stockfeed/commands/<name>.py` module's `register`, in name order."""
    import importlib
    import pkgutil

    from stockfeed import commands

    found: list[Callable[[Any], None]] = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"stockfeed.commands.{info.name}")
        found.append(module.register)
    return found


def _flag_for(field: str) -> str:
    for flag, (name, _, _) in _FLAGS.items():
        if name == field:
            return f"{flag} / STOCKFEED_{field.upper()}"
    return f"STOCKFEED_{field.upper()}"


def load_settings(overrides: dict[str, object]) -> Settings:
    """Settings from the environment and flags, or exit with one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        where = f"setting {_flag_for(loc)}" if loc else "settings"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        value = err.get("input")
        shown = f" (got {redact(repr(value))})" if loc and not isinstance(value, dict) else ""
        print(f"stockfeed: invalid {where}: {message}{shown}", file=sys.stderr)
        raise SystemExit(2) from None


def preflight(settings: Settings) -> None:
    """Checks that need more than the settings themselves, before anything starts."""
    from stockfeed.sources.factory import problems

    for problem in problems(settings):
        print(f"stockfeed: invalid setting --source / STOCKFEED_SOURCE: {problem}", file=sys.stderr)
        raise SystemExit(2)
    if settings.source == "replay" and settings.replay_file:
        from stockfeed.sources.replay_format import load_jsonl

        try:
            load_jsonl(settings.replay_file)
        except (OSError, ValueError) as exc:
            print(
                f"stockfeed: invalid setting --replay-file / STOCKFEED_REPLAY_FILE: {exc}",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
    if settings.auth_public_key_file:
        from stockfeed.admission.auth import KeyProblem, build_verifier

        try:
            build_verifier(settings)
        except KeyProblem as exc:
            print(
                "stockfeed: invalid setting --auth-public-key-file / "
                f"STOCKFEED_AUTH_PUBLIC_KEY_FILE: {exc}",
                file=sys.stderr,
            )
            raise SystemExit(2) from None


def _raise_open_files_limit() -> int:
    """10,000 clients need 10,000 descriptors: lift the soft limit to the hard one.
    Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def _edge_options(settings: Settings, open_files: int) -> dict[str, object]:
    """The HTTP edges (server.edge_limits.EdgeLimits): ours on the fast path; with the stock
    protocol only what uvicorn offers (its 503 past `limit_concurrency`, for plain HTTP)."""
    from stockfeed.server.edge_limits import EdgeLimits, configure_edges

    limits = EdgeLimits.from_settings(settings)
    log = logging.getLogger("stockfeed.cli")
    if limits.max_connections != settings.max_open_connections:
        # A warning when someone asked for more; the default just says what it became.
        asked = "max_open_connections" in settings.model_fields_set
        log.log(
            logging.WARNING if asked else logging.INFO,
            "open connections capped at %d per process, not %s: the open-files limit is %d",
            limits.max_connections,
            settings.max_open_connections or "unlimited",
            open_files,
        )
    # Between requests on a kept-alive connection (on the fast path, kept by its clock).
    options: dict[str, object] = {"timeout_keep_alive": settings.http_keepalive_timeout}
    if settings.fast_path:
        configure_edges(limits)
    else:
        options["limit_concurrency"] = limits.max_connections or None
    return options


def _log_auth(settings: Settings) -> None:
    """One line saying whether anyone can connect; the key itself never appears."""
    from stockfeed.admission.auth import build_verifier, describe_auth

    verifier = build_verifier(settings)
    log = logging.getLogger("stockfeed.admission.auth")
    if verifier is None:
        log.warning(describe_auth(None))
    else:
        log.info(describe_auth(verifier))


def serve(settings: Settings) -> None:
    import uvicorn

    from stockfeed.server.asgi import UVICORN_OPTIONS

    setup_logging(settings.log_level, settings.log_format)
    open_files = _raise_open_files_limit()
    _log_auth(settings)
    common: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # Ours, not uvicorn's default: uvicorn applies it here and in each worker.
        "log_config": logging_config(settings.log_level, settings.log_format),
        "ws": "stockfeed.server.fast_websocket:FastWebSocketProtocol"
        if settings.fast_path
        else "websockets-sansio",
        "ws_max_size": settings.max_message_bytes,
        # Same as uvicorn's httptools protocol, but frees itself at once after an upgrade.
        "http": "stockfeed.server.fast_http:FastHttpProtocol"
        if settings.fast_path
        else "httptools",
        # Frames are built once for every client, uncompressed; per-connection zlib
        # state would cost ~46 KiB a connection (measured) and defeat encode-once.
        "ws_per_message_deflate": False,
        "backlog": 8192,
        **UVICORN_OPTIONS,  # see server/asgi.py
        **_edge_options(settings, open_files),
        "timeout_graceful_shutdown": 5,
        "lifespan": "on",
    }
    if settings.workers > 1:
        # Workers are new processes: hand them the same settings through the environment.
        for name, value in settings.model_dump().items():
            if value is None:
                continue
            text = ",".join(value) if isinstance(value, list) else str(value)
            if isinstance(value, SecretStr):  # model_dump keeps it: str() is masked
                text = value.get_secret_value()
            os.environ[f"STOCKFEED_{name.upper()}"] = text
        uvicorn.run(
            "stockfeed.app:create_asgi_from_env",
            factory=True,
            workers=settings.workers,
            **common,  # type: ignore[arg-type]
        )
        return
    from stockfeed.app import create_asgi

    uvicorn.run(create_asgi(settings, server_process=True), **common)  # type: ignore[arg-type]


def _run_serve(args: argparse.Namespace) -> None:
    overrides = {
        field: getattr(args, flag[2:].replace("-", "_"))
        for flag, (field, _, _) in _FLAGS.items()
        if getattr(args, flag[2:].replace("-", "_")) is not None
    }
    settings = load_settings(overrides)
    preflight(settings)
    serve(settings)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
