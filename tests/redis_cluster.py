"""A real Redis Cluster for the tests: Debian's ``redis-server`` on loopback, three masters and
three replicas (``--cluster-enabled yes``, joined by ``redis-cli --cluster create
--cluster-replicas 1``), a password on every node, a one-second node timeout so a replica takes
over a lost master within a few seconds. ``stop`` ends every process it started and deletes its
directory."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

from ledger.server import free_port

NODE_TIMEOUT_MS = 1000


@dataclass
class Node:
    port: int
    bus_port: int
    dir: Path
    proc: subprocess.Popen | None = None


class LocalRedisCluster:
    def __init__(self, masters: int = 3, replicas: int = 1) -> None:
        self.masters, self.replicas = masters, replicas
        self.root = Path(tempfile.mkdtemp(prefix="taxview-rcluster-"))
        self.password = secrets.token_urlsafe(16)
        self.nodes: list[Node] = []

    @property
    def url(self) -> str:
        """A plain ``redis://`` URL of one node: the ledger finds out it is a cluster."""
        return f"redis://:{self.password}@127.0.0.1:{self.alive()[0].port}/0"

    @property
    def cluster_url(self) -> str:
        """The same cluster named by its scheme (``redis+cluster://``)."""
        return "redis+cluster" + self.url.removeprefix("redis")

    def start(self, timeout: float = 30.0) -> LocalRedisCluster:
        exe, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        assert exe and cli, "redis-server and redis-cli are needed (./dev installs Debian's)"
        try:
            for i in range(self.masters * (1 + self.replicas)):
                port, bus = free_port(), free_port()
                while bus == port:
                    bus = free_port()
                node = Node(port, bus, self.root / f"node{i}")
                node.dir.mkdir(mode=0o700)
                conf = [
                    f"port {port}",
                    f"cluster-port {bus}",
                    "bind 127.0.0.1",
                    "protected-mode yes",
                    "cluster-enabled yes",
                    "cluster-config-file nodes.conf",
                    f"cluster-node-timeout {NODE_TIMEOUT_MS}",
                    "cluster-replica-validity-factor 0",  # a replica may always take over
                    "dir .",
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    "daemonize no",
                    "logfile redis.log",
                    f"requirepass {self.password}",
                    f"masterauth {self.password}",
                    "",
                ]
                (node.dir / "redis.conf").write_text("\n".join(conf))
                node.proc = subprocess.Popen(
                    [exe, "redis.conf"],
                    cwd=node.dir,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                self.nodes.append(node)
            for node in self.nodes:
                self._wait(lambda n=node: self.client(n).ping(), timeout, f"node {node.port} to answer")
            env = {**os.environ, "REDISCLI_AUTH": self.password}  # not in ps
            subprocess.run(
                [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes)]
                + ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
                env=env,
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            self.wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def client(self, node: Node) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=node.port, password=self.password, socket_timeout=5)

    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def roles(self) -> dict[int, tuple[str, int | None]]:
        """Per live node's port: ("master", None) or ("slave", its master's port), as the nodes
        themselves say (``INFO replication``)."""
        out = {}
        for n in self.alive():
            with self.client(n) as c:
                info = c.info("replication")
            out[n.port] = (info["role"], info.get("master_port") if info["role"] == "slave" else None)
        return out

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says ``cluster_state:ok``, every master has a replica whose link
        is up (when replicas were asked for and live), and all agree on the masters."""

        def ok() -> bool:
            for n in self.alive():
                with self.client(n) as c:
                    if c.cluster("INFO").get("cluster_state") != "ok":
                        return False
                    info = c.info("replication")
                    if info["role"] == "slave" and info.get("master_link_status") != "up":
                        return False
            return True

        self._wait(ok, timeout, "the cluster to be ok")

    def master_with_replica(self, prefer: Mapping[int, int] | None = None) -> tuple[Node, int]:
        """A master that has a live replica attached: (the master, its replica's port); of those,
        the one with the highest ``prefer[port]``."""
        roles = self.roles()
        pairs = [(master, port) for port, (role, master) in roles.items() if role == "slave"]
        if not pairs:
            raise AssertionError(f"no replica attached: {roles}")
        master, replica = max(pairs, key=lambda x: (prefer or {}).get(x[0], 0))
        return next(n for n in self.nodes if n.port == master), replica

    def kill(self, node: Node) -> None:
        """SIGKILL one node (a crash)."""
        assert node.proc is not None
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait()

    def wait_promoted(self, port: int, timeout: float = 30.0) -> None:
        """Until the node on ``port`` is a master."""
        node = next(n for n in self.nodes if n.port == port)
        self._wait(lambda: self.client(node).info("replication")["role"] == "master", timeout, f"{port} promoted")

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.terminate()
        for n in self.nodes:
            if n.proc is not None:
                try:
                    n.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    n.proc.kill()
                    n.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _wait(check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except (redis.exceptions.ConnectionError, redis.exceptions.ResponseError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:g}s for {what}")
            time.sleep(0.05)

    def __enter__(self) -> LocalRedisCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
