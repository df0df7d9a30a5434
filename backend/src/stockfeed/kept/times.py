"""Times as people type them on the command line (`--from`, `--to`)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: str) -> float:
    """Epoch seconds from an ISO 8601 time (UTC unless it says otherwise; a date alone is
    its 00:00 UTC; `Z` allowed) or a number of epoch seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {value!r} (2026-12-01T14:30Z or epoch s)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
