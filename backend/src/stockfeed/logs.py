"""Logging: one line per event, as text or JSON, with secrets masked.

`logging_config` builds one `dictConfig` for the whole process, uvicorn's loggers
included (they propagate to our root handler), so uvicorn can apply the very same config
in each worker process it spawns. Fields passed with `extra=` (a connection's `conn` id,
`remote`, `ticker`, ...) become JSON keys, or `key=value` after the text line.

Secrets never reach the output: `SecretFilter` masks the password of URLs
(`redis://:***@host`), `access_token=` / `token=` query parameters, `Bearer` tokens,
credential headers (`authorization`, `cookie`, ...) and anything shaped like a JWT, in
the message, its arguments, extras and tracebacks.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of msg
}

_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_QUERY_SECRET = re.compile(
    r"(?P<key>\b(?:access_token|token|api_key|apikey|password|secret)=)[^&\s\"'<>]+",
    re.IGNORECASE,
)
# RFC 6750 token68; 8+ characters so that prose ("the bearer token is missing") stays.
_BEARER = re.compile(r"(?P<key>\bBearer\s+)[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE)
# Header lines (uvicorn logs every handshake header at debug level): the whole value.
# Vendors' key headers too (Alpaca's, Finnhub's), should a client library log its requests.
_HEADER = re.compile(
    r"(?P<key>\b(?:authorization|proxy-authorization|cookie|set-cookie|x-api-key"
    r"|apca-api-key-id|apca-api-secret-key|x-finnhub-token)\s*:\s*)"
    r"[^\r\n]+",
    re.IGNORECASE,
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
MASK = "***"


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    # `redis://:pw@` and `redis://user:pw@` keep the user; `redis://pw@` hides it all.
    kept = f"{user}:{MASK}" if colon else MASK
    return f"{match.group('scheme')}{kept}@"


def redact(text: str) -> str:
    """`text` with passwords in URLs, tokens and bearer credentials masked."""
    if "@" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m.group("key") + MASK, text)
    if ":" in text:
        text = _HEADER.sub(lambda m: m.group("key") + MASK, text)
    text = _BEARER.sub(lambda m: m.group("key") + MASK, text)
    if "eyJ" in text:
        text = _JWT.sub(MASK, text)
    return text


class SecretFilter(logging.Filter):
    """Masks secrets in a record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):  # kept as args: formatters read uvicorn's
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let logging report it as it does
            return True
        masked = redact(message)  # what an argument's str() let through
        if masked != message:
            record.msg, record.args = masked, None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line as fields: its args are (client, method, path, http, status)."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return {}
    remote, method, path, _, status = args
    return {"remote": remote, "method": method, "path": path, "status": status}


class TextFormatter(logging.Formatter):
    """The classic line, plus `key=value` for each extra field."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if not extras:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the line
        fields = " ".join(f"{k}={v}" for k, v in extras.items())
        return f"{head} {fields}{sep}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_access_fields(record))
        out.update(_extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


def logging_config(level: str, fmt: LogFormat) -> dict[str, Any]:
    """A dictConfig for this process and uvicorn (which re-applies it in each worker)."""
    level = level.upper()
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    # uvicorn's loggers keep no handler of their own: they reach the root handler.
    uvicorn = {"handlers": [], "level": level, "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"secrets": {"()": SecretFilter}},
        "formatters": {"line": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["secrets"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": uvicorn,
            "uvicorn.error": uvicorn,
            "uvicorn.access": uvicorn,
        },
    }


def setup_logging(level: str, fmt: LogFormat = "text") -> None:
    logging.config.dictConfig(logging_config(level, fmt))
    logging.captureWarnings(True)  # warnings become log lines too (one format)
