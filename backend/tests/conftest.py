"""The fixtures every test folder shares: real servers (`start_server`), a real Redis
and PostgreSQL, each test's own data directory, and the guard that fails a test not
marked `pytest.mark.process` when it starts one.

Tests never import this module: what they import (`Server`, `StartServer`,
`wait_health`...) is in tests/servers.py.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import redis

from stockfeed.testing import processes
from tests.servers import (
    POSTGRES_URL,
    REDIS_URL,
    RedisServer,
    Server,
    StartServer,
    redis_available,
    require_postgres,
)

_PROCESS_MODULE = "\npytestmark = pytest.mark.process"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under `-m "not process"` (`make test-fast`), a module whose every test is marked
    `process` is not imported at all: its tests would all be deselected, and importing
    them (schemathesis, hypothesis, the Redis topologies) was a third of the fast lane's
    time. The module-level mark is the only way a whole module is marked here."""
    if config.option.markexpr != "not process" or collection_path.suffix != ".py":
        return None
    if not collection_path.name.startswith("test_"):
        return None
    if _PROCESS_MODULE in collection_path.read_text(encoding="utf-8"):
        return True
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Starting a process fails a test not marked `process` (its fixtures included, even
    module-scoped ones, which are set up before any function-scoped autouse fixture)."""
    marked = item.get_closest_marker("process") is not None
    why = f"{item.nodeid} is not marked pytest.mark.process"
    processes.forbid_processes(None if marked else why)
    try:
        return (yield)
    finally:
        processes.forbid_processes(None)


@pytest.fixture(scope="session")
def session_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server for the session: the URL of its maintenance database."""
    if POSTGRES_URL:
        yield POSTGRES_URL
        return
    require_postgres()
    server = processes.PostgresServer(log_path=tmp_path_factory.mktemp("pg") / "postgres.log")
    server.start()
    yield server.url
    server.cleanup()


@pytest.fixture
def postgres_url(session_postgres: str) -> str:
    """An empty database of the test's own on the session's PostgreSQL."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(session_postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    base = session_postgres.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's market-data store is its own (an app made in-process reads the
    environment): nothing kept by one test is served in another."""
    path = tmp_path / "stockfeed-data"
    monkeypatch.setenv("STOCKFEED_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if REDIS_URL:
        yield REDIS_URL
        return
    RedisServer.require()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(session_redis: str) -> str:
    """A real Redis server, emptied for the test."""
    if not redis_available(session_redis):
        pytest.fail(f"Redis does not answer at {session_redis}")
    redis.Redis.from_url(session_redis).flushall()
    return session_redis


@pytest.fixture(params=["memory", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    servers: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None, wait: bool = True) -> Server:
        server = Server(tmp_path, *args, env=env)
        servers.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, so it can be killed without hurting the others."""
    RedisServer.require()
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()
