"""A real redis-server process for the failover tests, on a free port in a
temp dir, without persistence. A missing redis-server fails the test loudly
(scripts/run-tests.sh installs it); it is never skipped."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis

START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def redis_server_process(port: int | None = None) -> Iterator[str]:
    """Start redis-server; yield its URL; stop it on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server; see scripts/run-tests.sh)")
    port = port or _free_port()
    with tempfile.TemporaryDirectory(prefix="tickroom-redis-") as tmp:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server did not answer PING in {START_TIMEOUT_S} s")
                time.sleep(0.02)
            client.close()
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- a Sentinel group: one master, one replica, three Sentinels ------------------

SENTINEL_SERVICE = "tickroom"
DOWN_AFTER_MS = 1000  # a master silent this long is down (the promotion's first part)


def _wait(check, what: str, timeout: float = START_TIMEOUT_S) -> None:
    """Poll ``check()`` until it is truthy, under a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class SentinelGroup:
    master_port: int
    replica_port: int
    sentinel_ports: list[int]
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)  # by port

    @property
    def url(self) -> str:
        """The --redis-url of the group."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SENTINEL_SERVICE}/0"

    def master(self) -> tuple[str, int] | None:
        """Where the first Sentinel that answers says the master is."""
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
            try:
                host, master_port = client.sentinel_get_master_addr_by_name(SENTINEL_SERVICE)
                return host, int(master_port)
            except (redis.RedisError, TypeError):
                continue
            finally:
                client.close()
        return None

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait()


def _start(binary: str, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def redis_sentinel_group() -> Iterator[SentinelGroup]:
    """Start a master, its replica and three Sentinels watching it (quorum
    2) on loopback; yield once the Sentinels know the replica and each
    other (so a promotion can be voted); stop them all on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server; see scripts/run-tests.sh)")
    group = SentinelGroup(_free_port(), _free_port(), [_free_port() for _ in range(3)])
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with tempfile.TemporaryDirectory(prefix="tickroom-sentinel-") as tmp:
        try:
            for port, extra in (
                (group.master_port, []),
                (group.replica_port, ["--replicaof", "127.0.0.1", str(group.master_port)]),
            ):
                os.makedirs(f"{tmp}/{port}")
                group.procs[port] = _start(binary, ["--port", str(port), *common, "--dir", f"{tmp}/{port}", *extra])
            replica = redis.Redis(port=group.replica_port, socket_timeout=0.5, socket_connect_timeout=0.5)
            _wait(lambda: replica.info("replication").get("master_link_status") == "up", "the replica to sync")
            replica.close()
            for port in group.sentinel_ports:
                conf = f"{tmp}/sentinel-{port}.conf"
                with open(conf, "w") as f:  # Sentinel rewrites its config file: one each
                    f.write(
                        f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
                        f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {group.master_port} 2\n"
                        f"sentinel down-after-milliseconds {SENTINEL_SERVICE} {DOWN_AFTER_MS}\n"
                        f"sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
                        f"sentinel parallel-syncs {SENTINEL_SERVICE} 1\n"
                    )
                group.procs[port] = _start(binary, [conf, "--sentinel"])

            def discovered() -> bool:
                for port in group.sentinel_ports:
                    client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
                    try:
                        if len(client.sentinel_slaves(SENTINEL_SERVICE)) < 1:
                            return False
                        if len(client.sentinel_sentinels(SENTINEL_SERVICE)) < len(group.sentinel_ports) - 1:
                            return False
                    finally:
                        client.close()
                return True

            _wait(discovered, "the Sentinels to find the replica and each other", timeout=30)
            yield group
        finally:
            _stop_all(group.procs.values())


# -- a Redis Cluster: three masters with one replica each ------------------------

CLUSTER_NODE_TIMEOUT_MS = 1000  # a master silent this long is failed over by its replica


@dataclass
class ClusterGroup:
    ports: list[int]  # the first three are the masters at creation
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The --redis-url of the cluster (every node a seed)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def masters(self) -> dict[int, int]:
        """Slot range start -> master port, as a live node answers."""
        for port in self.ports:
            if self.procs[port].poll() is not None:
                continue
            client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
            try:
                return {int(r[0]): int(r[2][1]) for r in client.execute_command("CLUSTER", "SLOTS")}
            except redis.RedisError:
                continue
            finally:
                client.close()
        return {}

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait()


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too; Redis
    refuses ports above 55535 in cluster mode."""
    for _ in range(200):
        port = random.randint(20000, 55000)  # noqa: S311  # nosec B311 - a test port, not security
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@contextmanager
def redis_cluster_group() -> Iterator[ClusterGroup]:
    """Start six cluster-enabled redis-servers on loopback, join them with
    ``redis-cli --cluster create`` (three masters, one replica each), yield
    once every node says cluster_state:ok; stop them all on exit."""
    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if binary is None or cli is None:
        raise RuntimeError(
            "redis-server/redis-cli are not installed (apt-get install redis-server; see scripts/run-tests.sh)"
        )
    group = ClusterGroup([_free_cluster_port() for _ in range(6)])
    with tempfile.TemporaryDirectory(prefix="tickroom-cluster-") as tmp:
        try:
            for port in group.ports:
                os.makedirs(f"{tmp}/{port}")
                group.procs[port] = _start(
                    binary,
                    [
                        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--dir", f"{tmp}/{port}", "--cluster-enabled", "yes",
                        "--cluster-config-file", f"{tmp}/{port}/nodes.conf",
                        "--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS), "--repl-diskless-sync-delay", "0",
                    ],
                )  # fmt: skip
            for port in group.ports:
                client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
                _wait(client.ping, f"redis-server on {port}")
                client.close()
            subprocess.run(
                [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in group.ports), "--cluster-replicas", "1", "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
            )  # fmt: skip

            def ok() -> bool:
                for port in group.ports:
                    client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
                    try:
                        info = client.execute_command("CLUSTER", "INFO")
                        text = info.decode() if isinstance(info, bytes) else str(info)
                        if "cluster_state:ok" not in text:
                            return False
                        # A replica that never synced cannot take over its master's slots.
                        replication = client.info("replication")
                        if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                            return False
                    finally:
                        client.close()
                return len(group.masters()) == 3

            _wait(ok, "the cluster to form", timeout=30)
            yield group
        finally:
            _stop_all(group.procs.values())


def _stop_all(procs: Iterable[subprocess.Popen]) -> None:
    """Terminate every server, then wait for each (SIGKILL after 5 s)."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
