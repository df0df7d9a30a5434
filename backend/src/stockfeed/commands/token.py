"""`stockfeed token`: mint a token for development and tests; prints the token only.

    stockfeed token --sub alice --ttl 1h                     # HS256, STOCKFEED_AUTH_SECRET
    stockfeed token --sub bot --ttl 30m --tickers AAPL,BTC-*  # limited to those tickers
    stockfeed token --sub alice --key-file private.pem       # RS256/ES256 by key type

The secret comes from STOCKFEED_AUTH_SECRET (or `--secret`, which other users of the
machine can see in `ps`); a private key from `--key-file` or
STOCKFEED_AUTH_PRIVATE_KEY_FILE. `iss` / `aud` default to STOCKFEED_AUTH_ISSUER /
STOCKFEED_AUTH_AUDIENCE, so a token minted next to a server's environment passes it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from stockfeed.admission.auth import (
    TICKERS_CLAIM,
    KeyProblem,
    Refusal,
    TickerScope,
    algorithm_for_key,
)

_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL = 365 * 86400


def parse_ttl(text: str) -> int:
    """`3600`, `3600s`, `30m`, `1h`, `7d` -> seconds."""
    match = _TTL.match(text)
    if match is None:
        raise ValueError(f"bad --ttl {text!r}: use e.g. 3600s, 30m, 1h or 7d")
    seconds = round(float(match.group(1)) * _UNIT[match.group(2)])
    if not 1 <= seconds <= MAX_TTL:
        raise ValueError("--ttl must be between 1 second and 365 days")
    return seconds


def _signing_key(args: argparse.Namespace) -> tuple[Any, str]:
    key_file = args.key_file or os.environ.get("STOCKFEED_AUTH_PRIVATE_KEY_FILE") or None
    secret = args.secret or os.environ.get("STOCKFEED_AUTH_SECRET") or None
    if key_file and args.secret:
        raise ValueError("give --secret or --key-file, not both")
    if key_file:
        try:
            data = Path(key_file).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {key_file}: {exc.strerror or exc}") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ValueError(f"{key_file} is not an unencrypted PEM private key") from None
        try:
            return key, algorithm_for_key(key)
        except KeyProblem as exc:
            raise ValueError(str(exc)) from None
    if secret:
        if len(secret) < 32:
            raise ValueError("the secret must be at least 32 characters (openssl rand -hex 32)")
        return secret.encode(), "HS256"
    raise ValueError("no key: set STOCKFEED_AUTH_SECRET, or give --secret or --key-file")


def mint(args: argparse.Namespace) -> str:
    key, algorithm = _signing_key(args)
    now = int(time.time())
    claims: dict[str, Any] = {"sub": args.sub, "iat": now, "exp": now + parse_ttl(args.ttl)}
    issuer = args.iss or os.environ.get("STOCKFEED_AUTH_ISSUER")
    audience = args.aud or os.environ.get("STOCKFEED_AUTH_AUDIENCE")
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    if args.tickers is not None:
        tickers = [t.strip().upper() for t in args.tickers.split(",") if t.strip()]
        try:
            TickerScope.parse(tickers)  # the server would refuse what does not parse
        except Refusal:
            raise ValueError(f"bad --tickers {args.tickers!r}") from None
        claims[TICKERS_CLAIM] = tickers
    return jwt.encode(claims, key, algorithm=algorithm)


def _run(args: argparse.Namespace) -> None:
    try:
        token = mint(args)
    except ValueError as exc:
        print(f"stockfeed token: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(token)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "token",
        help="mint a JWT for development (prints the token only)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sub", required=True, help="subject: who the token is for")
    parser.add_argument("--ttl", default="1h", help="lifetime: 3600s, 30m, 1h, 7d (default 1h)")
    parser.add_argument(
        "--tickers", default=None, help="comma-separated tickers or patterns (BTC-*) it may read"
    )
    parser.add_argument("--secret", default=None, help="HS256 secret (default from environment)")
    parser.add_argument("--key-file", default=None, help="PEM private key (RSA or EC)")
    parser.add_argument("--iss", default=None, help="issuer (default STOCKFEED_AUTH_ISSUER)")
    parser.add_argument("--aud", default=None, help="audience (default STOCKFEED_AUTH_AUDIENCE)")
    parser.set_defaults(run=_run)
