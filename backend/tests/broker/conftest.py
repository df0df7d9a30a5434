"""The Redis topologies the broker tests share: a real 3-primary, 3-replica Redis Cluster,
and a primary with a replica and 3 Sentinels. Each starts once per session (per xdist
worker), when a test first asks for it, and is made whole and empty for every test: the
broker/store contract (test_broker_store.py) and the topologies' own tests use the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stockfeed.testing.redis_topologies import (
    ClusterTopology,
    SentinelTopology,
    have_redis_server,
)
from tests.servers import IN_CI


def require_tools() -> None:
    """Missing redis-server/redis-cli fails under CI (.ci/run installs them), skips here."""
    if not have_redis_server():
        if IN_CI:
            pytest.fail("redis-server and redis-cli are required under CI")
        pytest.skip("no redis-server / redis-cli")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterTopology]:
    require_tools()
    topology = ClusterTopology(tmp_path_factory.mktemp("cluster")).start()
    yield topology
    topology.stop()


@pytest.fixture
def cluster_url(cluster: ClusterTopology) -> str:
    """The cluster, whole again (a killed node restarted) and emptied for the test."""
    for node in cluster.nodes:
        if not node.alive:
            cluster.restart(node)
    cluster.wait_healthy()
    cluster.flushall()
    return cluster.url


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    require_tools()
    topology = SentinelTopology(tmp_path_factory.mktemp("sentinel")).start()
    yield topology
    topology.stop()


@pytest.fixture
def sentinel_url(sentinel: SentinelTopology) -> str:
    """Sentinel's primary (whichever it is now, after a failover), emptied for the test."""
    sentinel.wait_healthy()
    with sentinel.primary.client() as r:
        r.flushall()
    return sentinel.url
