"""Vendor plugins: one module per vendor, found by its name (`--source coinbase` imports
`stockfeed.sources.vendors.coinbase`).

A plugin module defines:

- `build(settings, clock) -> Source`: the configured source (a `plugin.VendorSource`);
- `check(settings) -> str | None`: what is missing to run it (a key), said before the
  server starts, or None.

The other modules here are what plugins share: `connection.py` (one socket kept alive:
backoff, resubscribe, gaps, mute sockets), `plugin.py` (the source around its
connections: one state, directory, history, previous closes), `errors.py` (the three
error classes), `http.py` (REST GETs), `rest_bars.py` (vendors' REST bars as /api/history
serves them). Adding a vendor is one module here and one fake
server in backend/tests/sources/vendor_fakes/ (docs/sources.md, "Adding a source").
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

SHARED = frozenset({"connection", "errors", "http", "plugin", "rest_bars"})


def names() -> list[str]:
    """Every vendor plugin's name, sorted."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if info.name not in SHARED and not info.name.startswith("_")
    )


def module(name: str) -> ModuleType:
    if name not in names():
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}")
