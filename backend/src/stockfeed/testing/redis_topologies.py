"""Real Redis topologies on free ports: a Cluster (primaries + replicas) and a Sentinel
deployment (primary, replica, three Sentinels). Each node is a `ManagedProcess` (its own
process group, its log in its own directory) and keeps nothing on disk beyond the
cluster's `nodes.conf` and the Sentinels' rewritten configs.

No pytest in here: the tests use it through fixtures (tests/broker/conftest.py, for the
broker/store contract and the topologies' own tests), the chaos scenarios
(chaos/failover.py) and the scale benchmark (bench/redis_scale.py) start the same
topologies. Run it to get one for trying things out:

    .venv/bin/python -m stockfeed.testing.redis_topologies cluster   # prints the --broker
    .venv/bin/python -m stockfeed.testing.redis_topologies sentinel
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from stockfeed.testing.processes import HOST, ManagedProcess, ProcessFailed, free_port

__all__ = [
    "ClusterTopology",
    "Node",
    "SentinelTopology",
    "have_redis_server",
    "main",
]


def have_redis_server() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Node:
    """One redis-server (or Sentinel) on its own port and directory. `args` may change
    until the first `start()`; a killed node starts again on the same port and
    directory (its log is appended to)."""

    dir: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None
    started: bool = False  # once up: a restart keeps its ports

    @property
    def name(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def argv(self) -> list[str]:
        return ["redis-server", *self.args, "--port", str(self.port)]

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.alive else None

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=timeout, decode_responses=True)

    def ping(self) -> bool:
        with self.client(0.5) as c:
            return bool(c.ping())

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it answers PING (ProcessFailed, with its log, if not).
        The first start takes new ports when one was taken meanwhile: they were picked
        free when the topology was made, and other tests' servers start in between."""
        for attempt in range(3):
            try:
                self._start(timeout)
            except ProcessFailed as exc:
                if attempt == 2 or self.started or "Address already in use" not in str(exc):
                    raise
                self._new_ports()
            else:
                self.started = True
                return

    def _new_ports(self) -> None:
        self.port = free_port()
        if "--cluster-port" in self.args:
            i = self.args.index("--cluster-port") + 1
            self.args[i] = str(free_port())
        self.process = None

    def _start(self, timeout: float) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.process is None or self.process.argv != self.argv:
            self.process = ManagedProcess(
                self.argv, self.dir / "server.log", cwd=self.dir, name=f"redis-server {self.name}"
            )
            self.process.stop_signal = signal.SIGKILL  # nothing on disk to lose
        self.process.start()
        self.process.wait_ready(self.ping, timeout=timeout)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None:
            self.process.stop(sig, timeout=5)


class ClusterTopology:
    """`primaries` shards with `replicas` replicas each, created with `redis-cli --cluster
    create`. `kill(node)` a primary and its replica takes over after the node timeout;
    `restart(node)` brings it back (it rejoins as a replica of the new primary)."""

    def __init__(
        self, workdir: Path, primaries: int = 3, replicas: int = 1, node_timeout_ms: int = 2000
    ) -> None:
        self.workdir = workdir
        self.primaries = primaries
        self.replicas = replicas
        self.nodes: list[Node] = []
        self._served: dict[str, list[int]] = {}
        for i in range(primaries * (1 + replicas)):
            bus = free_port()
            args = [
                "--bind",
                HOST,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(node_timeout_ms),
                # The bus port is normally port + 10000, which can pass 65535 for an
                # ephemeral port: give it its own free port (Redis 7).
                "--cluster-port",
                str(bus),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ]
            self.nodes.append(Node(workdir / f"node{i}", args))

    @property
    def url(self) -> str:
        """The stockfeed broker URL: every node as a seed (any one is enough)."""
        return "redis+cluster://" + ",".join(n.name for n in self.nodes)

    @property
    def seed_url(self) -> str:
        return f"redis+cluster://{self.nodes[0].name}"

    def start(self, timeout: float = 30.0) -> ClusterTopology:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(n.name for n in self.nodes),
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.alive]

    def _slots(self) -> list[tuple[int, int, str, list[str]]]:
        """(first slot, last slot, primary, replicas) as a live node reports them."""
        for node in self.live():
            try:
                with node.client() as c:
                    raw = c.execute_command("CLUSTER SLOTS")
            except (redis.RedisError, OSError):
                continue
            out = []
            for entry in raw:
                start, end, primary, *replicas = entry
                out.append(
                    (
                        int(start),
                        int(end),
                        f"{primary[0]}:{primary[1]}",
                        [f"{r[0]}:{r[1]}" for r in replicas],
                    )
                )
            return out
        raise RuntimeError("no live cluster node answers")

    def by_name(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def primary_for(self, key: str) -> Node:
        slot = key_slot(key.encode())
        for start, end, primary, _ in self._slots():
            if start <= slot <= end:
                return self.by_name(primary)
        raise RuntimeError(f"slot {slot} not covered")

    def primary_nodes(self) -> list[Node]:
        return [self.by_name(p) for p in sorted({s[2] for s in self._slots()})]

    def replicas_of(self, primary: Node) -> list[Node]:
        """The nodes that replicate `primary`, from its CLUSTER NODES (CLUSTER SLOTS
        leaves out a replica whose replication offset is still 0: nothing written yet)."""
        with primary.client() as c:
            me = c.execute_command("CLUSTER MYID")
            nodes = c.execute_command("CLUSTER NODES")  # {"ip:port": {...}}
        names = {addr for addr, info in nodes.items() if info["master_id"] == me}
        return [self.by_name(n) for n in sorted(names)]

    def slot_owners(self) -> dict[int, str]:
        """Every covered slot -> the name of its primary (16384 entries when healthy)."""
        return {
            slot: primary
            for start, end, primary, _ in self._slots()
            for slot in range(start, end + 1)
        }

    def healthy(self) -> bool:
        """Every live node says ok, agrees on the slots, and every live replica is synced."""
        live = self.live()
        views = set()
        for node in live:
            with node.client() as c:
                if c.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    return False
                repl = c.info("replication")
                if repl["role"] == "slave" and repl.get("master_link_status") != "up":
                    return False
                slots = c.execute_command("CLUSTER SLOTS")
                views.add(
                    tuple(sorted((int(s[0]), int(s[1]), f"{s[2][0]}:{s[2][1]}") for s in slots))
                )
        if len(views) != 1:
            return False
        (view,) = views
        covered = sum(end - start + 1 for start, end, _ in view)
        primaries = {p for _, _, p in view}
        return covered == 16384 and all(self.by_name(p).alive for p in primaries)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        _wait("the cluster to be ok", self.healthy, timeout)

    def kill(self, node: Node) -> None:
        """SIGKILL a node (its slots as of now are remembered for `wait_promoted`)."""
        self._served[node.name] = [s[0] for s in self._slots() if s[2] == node.name]
        node.kill()

    def wait_promoted(self, dead: Node, timeout: float = 20.0) -> Node:
        """Wait until none of the slots is served by `dead`; returns its successor."""

        def promoted() -> bool:
            return all(p != dead.name for _, _, p, _ in self._slots())

        _wait(f"a replica to take over from {dead.name}", promoted, timeout)
        first = self._served.get(dead.name) or [0]
        for start, end, primary, _ in self._slots():
            if start <= first[0] <= end:
                return self.by_name(primary)
        raise RuntimeError("the slots of the dead node are not covered")

    def restart(self, node: Node, timeout: float = 30.0) -> None:
        """Start a killed node again on its port, with its nodes.conf: it rejoins."""
        node.start()
        self.wait_healthy(timeout)

    def move_slot(self, key: str, to: Node) -> None:
        """Move the slot of `key` to the primary `to` (the slot must hold no keys)."""
        slot = key_slot(key.encode())
        source = self.primary_for(key)
        if source.name == to.name:
            return
        with to.client() as dst, source.client() as src:
            dst_id = dst.execute_command("CLUSTER MYID")
            src_id = src.execute_command("CLUSTER MYID")
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
            for k in src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000):
                src.migrate(HOST, to.port, [k], 0, 5000)
            dst.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
            src.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        for node in self.primary_nodes():
            if node.name not in (source.name, to.name):
                with node.client() as c:
                    c.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        self.wait_healthy()

    def flushall(self) -> None:
        for node in self.primary_nodes():
            with node.client() as c:
                c.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


class SentinelTopology:
    """A primary, `replicas` replicas and `sentinels` Sentinels watching them under
    `master_name`. `kill_primary()` and the Sentinels promote a replica after
    `down_after_ms` plus their election."""

    def __init__(
        self,
        workdir: Path,
        master_name: str = "stockfeed",
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.workdir = workdir
        self.master_name = master_name
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        common = ["--bind", HOST, "--save", "", "--appendonly", "no"]
        common += ["--protected-mode", "no"]
        self.servers = [Node(workdir / "primary", list(common))]
        for i in range(replicas):
            self.servers.append(Node(workdir / f"replica{i}", list(common)))
        self.sentinels = [Node(workdir / f"sentinel{i}", []) for i in range(sentinels)]
        self.quorum = sentinels // 2 + 1

    @property
    def url(self) -> str:
        hosts = ",".join(s.name for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.master_name}"

    def start(self, timeout: float = 30.0) -> SentinelTopology:
        try:
            primary = self.servers[0]
            primary.start()
            for replica in self.servers[1:]:
                replica.args += ["--replicaof", HOST, str(primary.port)]
                replica.start()
            for sentinel in self.sentinels:
                sentinel.dir.mkdir(parents=True, exist_ok=True)
                conf = sentinel.dir / "sentinel.conf"
                conf.write_text(
                    "\n".join(
                        [
                            f"bind {HOST}",
                            "protected-mode no",
                            f"port {sentinel.port}",
                            f"dir {sentinel.dir}",
                            f"sentinel monitor {self.master_name} {HOST} {primary.port} "
                            f"{self.quorum}",
                            f"sentinel down-after-milliseconds {self.master_name} "
                            f"{self.down_after_ms}",
                            f"sentinel failover-timeout {self.master_name} "
                            f"{self.failover_timeout_ms}",
                            f"sentinel parallel-syncs {self.master_name} 1",
                            "",
                        ]
                    )
                )
                sentinel.args = [str(conf), "--sentinel"]
                sentinel.start()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def master_address(self) -> str:
        for sentinel in self.sentinels:
            if not sentinel.alive:
                continue
            try:
                with sentinel.client() as c:
                    host, port = c.execute_command(
                        "SENTINEL GET-MASTER-ADDR-BY-NAME", self.master_name
                    )
                    return f"{host}:{port}"
            except (redis.RedisError, OSError):
                continue
        raise RuntimeError("no Sentinel answers")

    @property
    def primary(self) -> Node:
        return next(n for n in self.servers if n.name == self.master_address())

    def healthy(self) -> bool:
        """Every Sentinel agrees on a live primary, knows the live replicas and the other
        Sentinels, and every live replica is synced."""
        replicas = [n for n in self.servers if n.alive and n.name != self.master_address()]
        for sentinel in self.sentinels:
            with sentinel.client() as c:
                info = c.execute_command("SENTINEL MASTER", self.master_name)
                if f"{info['ip']}:{info['port']}" != self.master_address():
                    return False
                if "s_down" in info["flags"] or "o_down" in info["flags"]:
                    return False
                if int(info["num-other-sentinels"]) < len(self.sentinels) - 1:
                    return False
                if int(info["num-slaves"]) < len(replicas):
                    return False
        for replica in replicas:
            with replica.client() as c:
                if c.info("replication").get("master_link_status") != "up":
                    return False
        return self.primary.alive

    def wait_healthy(self, timeout: float = 30.0) -> None:
        _wait("the Sentinels to agree", self.healthy, timeout)

    def kill_primary(self) -> Node:
        node = self.primary
        node.kill()
        return node

    def wait_promoted(self, dead: Node, timeout: float = 30.0) -> Node:
        def promoted() -> bool:
            name = self.master_address()
            if name == dead.name:
                return False
            with self.primary.client() as c:
                return bool(c.info("replication")["role"] == "master")

        _wait(f"the Sentinels to promote a replica of {dead.name}", promoted, timeout)
        return self.primary

    def stop(self) -> None:
        for node in [*self.sentinels, *self.servers]:
            node.kill()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("cluster", "sentinel"):
        usage = "usage: python -m stockfeed.testing.redis_topologies cluster|sentinel"
        print(usage, file=sys.stderr)
        return 2
    if not have_redis_server():
        print("redis-server and redis-cli are needed (apt-get install redis)", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix=f"stockfeed-{argv[1]}-"))
    topology: ClusterTopology | SentinelTopology
    if argv[1] == "cluster":
        topology = ClusterTopology(workdir)
    else:
        topology = SentinelTopology(workdir)
    print(f"starting a Redis {argv[1]} in {workdir} ...", file=sys.stderr, flush=True)
    try:
        topology.start()
    except (ProcessFailed, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"could not start it: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    print(f"--broker {topology.url}", flush=True)
    print("Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        topology.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
