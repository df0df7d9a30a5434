"""Broker URLs: which Redis deployment, and where.

    memory://
    redis://[[USER]:PASSWORD@]HOST:PORT/DB     (also rediss://, unix://): one Redis
    redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]         Redis Cluster
    redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]

Cluster: any reachable node is enough, the others are found through it. Sentinel: the
addresses are the Sentinels'; the credentials are the data nodes' (Sentinels without
authentication, as usual).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

Mode = Literal["single", "cluster", "sentinel"]

CLUSTER_SCHEME = "redis+cluster://"
SENTINEL_SCHEME = "redis+sentinel://"
SINGLE_SCHEMES = ("redis://", "rediss://", "unix://")


class BadBrokerURL(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RedisTarget:
    mode: Mode
    url: str
    hosts: tuple[tuple[str, int], ...] = ()  # cluster seeds, or the Sentinels
    master_name: str | None = None  # sentinel
    db: int = 0  # sentinel (a cluster has only db 0)
    username: str | None = None
    password: str | None = None


def redis_mode(url: str) -> Mode | None:
    """The Redis mode of a broker URL, None for memory:// (or anything else)."""
    if url.startswith(CLUSTER_SCHEME):
        return "cluster"
    if url.startswith(SENTINEL_SCHEME):
        return "sentinel"
    if url.startswith(SINGLE_SCHEMES):
        return "single"
    return None


def _host_port(item: str, url_kind: str) -> tuple[str, int]:
    host, colon, port = item.strip().rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadBrokerURL(f"{url_kind}: {item!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [::1]:7000
    return host, int(port)


def parse(url: str) -> RedisTarget:
    """The deployment a Redis broker URL names; BadBrokerURL says what is wrong."""
    mode = redis_mode(url)
    if mode is None:
        raise BadBrokerURL(f"not a Redis URL: {url.split('://', 1)[0]}://")
    if mode == "single":
        return RedisTarget("single", url)
    scheme = CLUSTER_SCHEME if mode == "cluster" else SENTINEL_SCHEME
    form = (
        "redis+cluster://HOST:PORT[,HOST:PORT...]"
        if mode == "cluster"
        else "redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]"
    )
    rest = url[len(scheme) :].split("?", 1)[0]
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else unquote(user)
        if not colon:
            username = None
    items = [item for item in netloc.split(",") if item.strip()]
    if not items:
        raise BadBrokerURL(f"no HOST:PORT in the URL: use {form}")
    hosts = tuple(_host_port(item, form) for item in items)
    parts = [p for p in path.split("/") if p]
    if mode == "cluster":
        if parts:
            raise BadBrokerURL(f"a cluster has no database or name in its URL: use {form}")
        return RedisTarget("cluster", url, hosts, username=username, password=password)
    if not parts or len(parts) > 2:
        raise BadBrokerURL(f"name the master: use {form}")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise BadBrokerURL(f"the database must be a number: use {form}")
        db = int(parts[1])
    return RedisTarget(
        "sentinel",
        url,
        hosts,
        master_name=unquote(parts[0]),
        db=db,
        username=username,
        password=password,
    )
