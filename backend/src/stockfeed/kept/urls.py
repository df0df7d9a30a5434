"""`--store`: which market-data store, from its URL.

- empty (the default): SQLite, `stockfeed.db` in `--data-dir` (default: the user's data
  directory, as platformdirs names it: ~/.local/share/stockfeed on Linux);
- `sqlite:///PATH`: SQLite at PATH (relative to the working directory; four slashes for
  an absolute path, `sqlite:////var/lib/stockfeed/kept.db`, as SQLAlchemy spells it);
- `postgresql://USER:PASSWORD@HOST:PORT/DB` (or `postgres://`): PostgreSQL;
- `none`: keep nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from stockfeed.config import Settings
    from stockfeed.kept.base import KeptStore

DEFAULT_FILE = "stockfeed.db"


class BadStoreURL(ValueError):
    pass


def check(url: str) -> None:
    value = url.strip()
    if value == "" or value.lower() == "none":
        return
    if value.startswith("sqlite://"):
        if not value.startswith("sqlite:///") or value == "sqlite:///":
            raise BadStoreURL("use sqlite:///PATH (sqlite:////ABSOLUTE/PATH for an absolute one)")
        return
    if re.match(r"postgres(ql)?://", value):
        if not urlsplit(value).hostname and "host=" not in value:
            raise BadStoreURL("a postgresql:// URL names its host: postgresql://USER@HOST/DB")
        return
    raise BadStoreURL(
        "use none, sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB "
        "(empty: SQLite in the data directory)"
    )


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("stockfeed", appauthor=False))


def sqlite_path(settings: Settings) -> Path | None:
    """Where the SQLite store of these settings is; None when it is not SQLite."""
    value = settings.store.strip()
    if value == "":
        base = Path(settings.data_dir) if settings.data_dir else default_data_dir()
        return base.expanduser() / DEFAULT_FILE
    if value.startswith("sqlite:///"):
        return Path(value[len("sqlite:///") :]).expanduser()
    return None


def redact(url: str) -> str:
    """A URL without its password, for logs and health."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def build(settings: Settings) -> KeptStore | None:
    """The store of these settings (not opened yet), or None for `none`."""
    if not settings.keeps:
        return None
    path = sqlite_path(settings)
    if path is not None:
        from stockfeed.kept.sqlite import SqliteStore

        return SqliteStore(path)
    from stockfeed.kept.postgres import PostgresStore

    return PostgresStore(settings.store.strip())
