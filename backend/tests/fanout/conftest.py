"""The fan-out tests' hub, written once: a `Hub` on a memory broker and a `ControlledStore`
(tests/fanout/fakes.py), stopped cleanly when the test ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stockfeed.fanout.hub import Hub
from tests.fanout.fakes import ControlledStore, make_hub, stop_hub


@pytest.fixture
async def store() -> ControlledStore:
    return ControlledStore()


@pytest.fixture
async def hub(store: ControlledStore) -> AsyncIterator[Hub]:
    hub = await make_hub(store)
    yield hub
    await stop_hub(hub)
