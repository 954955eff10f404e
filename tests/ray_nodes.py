"""A real multi-node Ray cluster on this machine for the tests: ``ray start --head`` and more nodes
(``ray start --address``), each ``--block``ed in a session of its own so that it, and every
process its raylet starts, can be stopped by session id (never ``ray stop``, which would stop
every Ray of the machine, other people's included).

Everything Ray writes goes under one temporary directory (``RAY_TMPDIR``: its sessions and its
``ray_current_cluster``, so another ``ray.init()`` on the machine never finds this cluster), every
port is a free one, and the cluster uses its own token (``RAY_AUTH_MODE=token``). Node loss is
noticed within about five seconds (the head's health checks every second)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ledger.server import free_port

RAY = str(Path(sys.executable).parent / "ray") if (Path(sys.executable).parent / "ray").exists() else "ray"


def session_pids(sid: int) -> list[int]:
    """Every live process of session ``sid`` (from ``/proc``)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(d.name))
    return out


@dataclass
class RayNode:
    name: str
    proc: subprocess.Popen

    def pids(self) -> list[int]:
        return session_pids(self.proc.pid)  # start_new_session: the session id is its pid


class LocalRayCluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tvray-", dir="/tmp"))  # short: Ray's socket paths
        self.env = {
            **os.environ,
            "RAY_TMPDIR": str(self.root),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # more than one node
            "RAY_health_check_period_ms": "1000",  # a lost node is dead within ~5 s; a slow one is not
            "RAY_health_check_timeout_ms": "2000",
            "RAY_health_check_failure_threshold": "5",
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.env.pop("RAY_ADDRESS", None)
        self.nodes: list[RayNode] = []
        self.port = free_port()
        self.address = ""

    def _start(self, name: str, args: list[str]) -> RayNode:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 (kept open by the child)
        ports = [
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
        ]
        proc = subprocess.Popen(
            [RAY, "start", "--block", "--disable-usage-stats", *ports, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        node = RayNode(name, proc)
        self.nodes.append(node)
        return node

    def start_head(self, num_cpus: int = 1, timeout: float = 60.0) -> RayNode:
        head = self._start(
            "head",
            [
                "--head",
                f"--port={self.port}",
                f"--num-cpus={num_cpus}",
                "--include-dashboard=false",
                f"--dashboard-port={free_port()}",
                f"--ray-client-server-port={free_port()}",
            ],
        )
        address_file = self.root / "ray" / "ray_current_cluster"
        deadline = time.monotonic() + timeout
        while not address_file.is_file() or not address_file.read_text().strip():
            self._check(head, deadline)
            time.sleep(0.1)
        self.address = address_file.read_text().strip()
        self.wait_nodes(1, deadline - time.monotonic())
        return head

    def add_node(self, num_cpus: int = 1, resources: dict | None = None, timeout: float = 90.0) -> RayNode:
        """A node joined to the head. Ray gives a raylet 30 s to register: on a loaded machine
        that can pass, so a node that gave up is started once more."""
        args = [f"--address={self.address}", f"--num-cpus={num_cpus}"]
        if resources:
            args.append(f"--resources={json.dumps(resources)}")
        for attempt in (1, 2):
            node = self._start(f"node{len(self.nodes)}-{attempt}", args)
            try:
                self.wait_nodes(len(self.nodes), timeout)
                return node
            except RuntimeError:  # ray start exited: the node did not register in time
                if attempt == 2:
                    raise
                self.kill(node)
                assert not node.pids()
                self.nodes.remove(node)
        raise AssertionError("unreachable")

    def alive_nodes(self) -> list[str]:
        """The node ids the head counts active (``ray status``; the state API needs a dashboard)."""
        out = subprocess.run(
            [RAY, "status", f"--address={self.address}"], env=self.env, capture_output=True, text=True, timeout=60
        )
        if out.returncode != 0 or "Active:" not in out.stdout:
            return []
        active = out.stdout.split("Active:", 1)[1].split("Pending:", 1)[0]
        return [line.split()[1] for line in active.splitlines() if line.strip().startswith("1 node_")]

    def wait_nodes(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.alive_nodes()) != n:
            for node in self.nodes:
                self._check(node, deadline)
            time.sleep(0.3)

    def _check(self, node: RayNode, deadline: float) -> None:
        log = self.root / f"{node.name}.log"
        if node.proc.poll() is not None:
            raise RuntimeError(f"ray start ({node.name}) exited: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"ray start ({node.name}) not ready: {log.read_text()[-2000:]}")

    def kill(self, node: RayNode) -> None:
        """SIGKILL the node and every process its session holds (a node lost)."""
        for _ in range(3):  # a process forked while we kill: once more
            pids = node.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        node.proc.wait()

    def stop(self) -> None:
        """Every node's session killed, then the directory deleted."""
        for node in reversed(self.nodes):
            self.kill(node)
        shutil.rmtree(self.root, ignore_errors=True)

    def leftovers(self) -> list[int]:
        """Processes of this cluster still running (none after ``stop``)."""
        return [pid for node in self.nodes for pid in node.pids()]

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
