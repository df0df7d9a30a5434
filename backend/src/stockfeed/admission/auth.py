"""Who may connect: JSON Web Tokens checked with PyJWT, once per handshake or request.

Auth is on as soon as a key is configured (`Settings.auth_secret` for HS256, or
`Settings.auth_public_key_file` for RS256/ES256) and off otherwise. The accepted
algorithm is fixed by the configured key, never read from the token: a secret accepts
only HS256, an RSA key only RS256, an EC key only its curve's ES algorithm. So `alg:
none` and the classic "HS256 signed with the public key" confusion are refused.

Claims: `exp` is required (a token that never expires cannot be revoked); `iss` and
`aud` are checked when configured; `nbf`/`iat` are honoured; `leeway` absorbs clock
skew. An optional `tickers` claim (a list of tickers or `*`/`?` patterns) limits what
the token may subscribe to; without it every ticker is allowed.

Nothing here ever puts a token or a key into a message, a log line or an exception.
"""

from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from stockfeed.config import Settings
from stockfeed.protocol.codes import ErrorCode
from stockfeed.tickers import InvalidTicker, normalize_ticker

# The browser carriers (a browser cannot set `Authorization` on a WebSocket): the token
# as a second subprotocol next to this marker, or as this query parameter.
AUTH_SUBPROTOCOL = "bearer"
QUERY_PARAM = "access_token"
TICKERS_CLAIM = "tickers"

# What a 401 answer names (RFC 6750), for REST and WebSocket handshakes alike.
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}

# Several times any real token (they are well under 2 KiB); refusing early keeps
# hostile input cheap.
MAX_TOKEN_CHARS = 4096
_PATTERN_CHARS = re.compile(r"^[A-Z0-9.\-=^*?]{1,15}$")
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
MIN_RSA_BITS = 2048


class Refusal(Exception):
    """A token or connection refused: `code` is a wire error code (ErrorCode), `message`
    is safe to show the client. (The Python client has its own AuthError: what a client
    sees when a server refuses it.)"""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class KeyProblem(ValueError):
    """The configured key cannot be used (bad file, unsupported key type)."""


@dataclass(frozen=True, slots=True)
class TickerScope:
    """The `tickers` claim: exact names and glob patterns (`*`, `?`), upper-cased."""

    exact: frozenset[str]
    patterns: tuple[str, ...]

    def allows(self, ticker: str) -> bool:
        if ticker in self.exact:
            return True
        return any(fnmatch.fnmatchcase(ticker, p) for p in self.patterns)

    @classmethod
    def parse(cls, claim: object) -> TickerScope:
        if not isinstance(claim, list) or not all(isinstance(t, str) for t in claim):
            raise Refusal(ErrorCode.UNAUTHORIZED, "malformed token: tickers claim must be a list")
        exact: set[str] = set()
        patterns: list[str] = []
        for raw in claim:
            item = raw.strip().upper()
            if "*" in item or "?" in item:
                if not _PATTERN_CHARS.match(item):
                    raise Refusal(ErrorCode.UNAUTHORIZED, "malformed token: bad tickers pattern")
                patterns.append(item)
                continue
            try:
                exact.add(normalize_ticker(item))
            except InvalidTicker:
                raise Refusal(
                    ErrorCode.UNAUTHORIZED, "malformed token: bad ticker in claim"
                ) from None
        return cls(frozenset(exact), tuple(patterns))


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `tickers` None: every ticker is allowed."""

    subject: str
    expires_at: float  # epoch seconds, from `exp`
    tickers: TickerScope | None = None

    def may(self, ticker: str) -> bool:
        return self.tickers is None or self.tickers.allows(ticker)


class Verifier:
    """Checks tokens against one configured key and fixed algorithm(s)."""

    def __init__(
        self,
        key: Any,
        algorithm: str,
        *,
        issuer: str | None,
        audience: str | None,
        leeway: float,
    ) -> None:
        self._key = key
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        required = ["exp"]
        if issuer is not None:
            required.append("iss")
        if audience is not None:
            required.append("aud")
        # PyJWT refuses any token with an `aud` when no audience is given; audiences are
        # checked only when one is configured.
        self._options: Any = {"require": required, "verify_aud": audience is not None}

    def describe(self) -> str:
        """For the start-up log line: the algorithm and checks, never the key."""
        parts = [self.algorithm]
        if self.issuer is not None:
            parts.append(f"iss={self.issuer}")
        if self.audience is not None:
            parts.append(f"aud={self.audience}")
        parts.append(f"leeway={self.leeway:g}s")
        return ", ".join(parts)

    def verify(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise Refusal(ErrorCode.UNAUTHORIZED, "malformed token")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options=self._options,
            )
        except jwt.ExpiredSignatureError:
            raise Refusal(ErrorCode.UNAUTHORIZED, "token expired") from None
        except jwt.InvalidAlgorithmError:
            raise Refusal(
                ErrorCode.UNAUTHORIZED, f"algorithm not allowed (expected {self.algorithm})"
            ) from None
        except jwt.InvalidSignatureError:
            raise Refusal(ErrorCode.UNAUTHORIZED, "bad signature") from None
        except jwt.InvalidIssuerError:
            raise Refusal(ErrorCode.UNAUTHORIZED, "wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise Refusal(ErrorCode.UNAUTHORIZED, "wrong audience") from None
        except jwt.ImmatureSignatureError:
            raise Refusal(ErrorCode.UNAUTHORIZED, "token not valid yet") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Refusal(ErrorCode.UNAUTHORIZED, f"token lacks the {exc.claim} claim") from None
        except jwt.PyJWTError:
            # DecodeError and friends: their text may quote parts of the token.
            raise Refusal(ErrorCode.UNAUTHORIZED, "malformed token") from None
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Refusal(ErrorCode.UNAUTHORIZED, "malformed token: exp must be a number")
        subject = claims.get("sub")
        scope = claims.get(TICKERS_CLAIM)
        return Principal(
            subject=subject if isinstance(subject, str) else "",
            expires_at=float(exp),
            tickers=None if scope is None else TickerScope.parse(scope),
        )

    def seconds_left(self, principal: Principal) -> float:
        """Until the token stops being accepted (its `exp` plus the leeway)."""
        return principal.expires_at + self.leeway - time.time()


def algorithm_for_key(key: object) -> str:
    """The one algorithm a key may verify (or sign) with."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyProblem(f"RSA keys need at least {MIN_RSA_BITS} bits (got {key.key_size})")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise KeyProblem(f"unsupported EC curve {key.curve.name} (use P-256, P-384, P-521)")
        return algorithm
    raise KeyProblem("unsupported key type: use an RSA or EC (P-256/384/521) key")


def load_public_key(path: str) -> tuple[Any, str]:
    """A PEM public key and its algorithm. A private key is refused: the server only
    verifies, and a signing key has no business on it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyProblem(f"cannot read {path}: {exc.strerror or exc}") from None
    if b"PRIVATE KEY" in data:
        raise KeyProblem(f"{path} holds a private key: give the server the public key only")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise KeyProblem(f"{path} is not a PEM public key") from None
    return key, algorithm_for_key(key)


def build_verifier(settings: Settings) -> Verifier | None:
    """The verifier for these settings; None when no key is configured (auth off).
    Raises KeyProblem with a message naming the problem (never the key)."""
    if settings.auth_secret is not None:
        key: Any = settings.auth_secret.get_secret_value().encode()
        algorithm = "HS256"
    elif settings.auth_public_key_file:
        key, algorithm = load_public_key(settings.auth_public_key_file)
    else:
        return None
    return Verifier(
        key,
        algorithm,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        leeway=settings.auth_leeway,
    )


def describe_auth(verifier: Verifier | None) -> str:
    if verifier is None:
        return "auth: off (no key configured) — anyone can connect"
    return f"auth: on ({verifier.describe()})"


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer …` header; None when it is another scheme."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def redact_query(query_string: bytes) -> bytes:
    """The query string with the `access_token` value replaced, for access logs."""
    if b"access_token" not in query_string:
        return query_string
    parts = []
    for part in query_string.split(b"&"):
        name, eq, _ = part.partition(b"=")
        parts.append(name + b"=REDACTED" if eq and name == b"access_token" else part)
    return b"&".join(parts)
