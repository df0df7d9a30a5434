"""Fixtures of the in-process hub tests: a controllable store and a hub on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fakes import ControlledStore, make_hub, teardown

from stockfeed.fanout.hub import Hub


@pytest.fixture
async def store() -> ControlledStore:
    return ControlledStore()


@pytest.fixture
async def hub(store: ControlledStore) -> AsyncIterator[Hub]:
    hub = await make_hub(store)
    yield hub
    await teardown(hub)
