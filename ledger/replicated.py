"""Writes a Redis Cluster acknowledges only once a replica holds them.

Redis replicates asynchronously: a master that acknowledged a script and died before its replica
copied it loses the write when the replica is promoted. On a cluster each write script of the
store (commit, import, mandate, cash flow, corporate action, year-end) is therefore sent as
``EVALSHA`` followed by ``WAIT 1 <ms>`` on one connection of the master of its household's slot
(``WAIT`` counts the replicas that hold that connection's writes). With one replica per master
that replica is the one a failover promotes, so a write the store returned survives the loss of
its master. A write no replica confirmed in time raises ``LedgerUnavailable`` (it may stand: a
retry with the same idempotency key replays it). A master with no replica connected (its ``INFO
replication``, asked every ``REPLICA_CHECK_S`` and again when a WAIT falls short; not the client's
slot map, which may not list replicas yet) is not waited for. On one redis-server the script is
used as it is.

A replay (``read.lua`` finding the stored result of a commit whose own reply was lost) is
confirmed the same way before it is returned (``confirm``): ``WAIT`` counts only a connection's
own writes, so it is sent after a one-field write to the household's meta hash (``synced``) —
replication is one ordered stream, and a replica that has that write has the commit before it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import AskError, NoScriptError, TryAgainError

from .errors import LedgerUnavailable

ATTEMPTS = 5  # slot-map reloads (a MOVED or ASK answer) before the caller's retry takes over
REPLICA_CHECK_S = 10.0  # how long a master's count of connected replicas is trusted


def replicated(client: redis.Redis, script: Script, wait_ms: int) -> Script | ReplicatedScript:
    """``script`` as the store calls it: waiting for a replica on a cluster, as it is elsewhere."""
    return ReplicatedScript(client, script, wait_ms) if isinstance(client, RedisCluster) else script


class ReplicatedScript:
    """A write script on a Redis Cluster; called like ``Script`` (``keys``, ``args``, ``client``).
    Every key must be in one slot (the household's hash tag)."""

    def __init__(self, cluster: RedisCluster, script: Script, wait_ms: int) -> None:
        self.cluster, self.script, self.wait_ms = cluster, script, wait_ms
        self._replicas: dict[str, tuple[int, float]] = {}  # master -> (connected replicas, when asked)

    def __call__(self, keys: Sequence[Any] = (), args: Iterable[Any] = (), client: Any = None) -> Any:
        if client is not None:  # queued in a pipeline: the pipeline's own rules
            return self.script(keys=keys, args=args, client=client)
        keys, args = list(keys), list(args)
        return self._on_master(keys[0], lambda pipe: pipe.evalsha(self.script.sha, len(keys), *keys, *args))

    def confirm(self, key: str) -> None:
        """Return once a replica of ``key``'s master has everything written there so far (a
        ``synced`` field set on ``key``, a hash of the household, then ``WAIT``)."""
        self._on_master(key, lambda pipe: pipe.hset(key, "synced", 1))

    def _on_master(self, key: str, write) -> Any:
        """``write(pipe)`` then ``WAIT 1`` on one connection of the master of ``key``'s slot."""
        c = self.cluster
        slot = c.keyslot(key)
        for _ in range(ATTEMPTS):
            nodes = c.nodes_manager.slots_cache.get(slot) or []
            if not nodes:
                c.nodes_manager.initialize()
                continue
            master = nodes[0]
            node = c.get_redis_connection(master)
            try:
                has_replica = self.replicas(master.name, node) > 0
                pipe = node.pipeline(transaction=False)
                write(pipe)
                if has_replica:
                    pipe.execute_command("WAIT", 1, self.wait_ms)
                out = pipe.execute(raise_on_error=False)
                if has_replica and not isinstance(out[0], Exception) and int(out[1]) < 1:
                    has_replica = self.replicas(master.name, node, fresh=True) > 0  # or its replica left
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                c.nodes_manager.initialize()  # the master may be gone: the caller's retry finds its successor
                raise
            reply = out[0]
            if isinstance(reply, NoScriptError):  # a promoted replica has not the script cache
                node.script_load(self.script.script)
                continue
            if isinstance(reply, AskError):  # MOVED (a subclass) too: the slot is elsewhere now
                c.nodes_manager.initialize()
                continue
            if isinstance(reply, Exception):
                raise reply
            if has_replica and int(out[1]) < 1:
                raise LedgerUnavailable(
                    f"the write to {key!r} was not confirmed by a replica of {master.name} within "
                    f"{self.wait_ms} ms (it may stand: a retry with the same key replays it)"
                )
            return reply
        raise TryAgainError(f"the slot of {key!r} kept moving")

    def replicas(self, master: str, node: redis.Redis, fresh: bool = False) -> int:
        """The replicas connected to ``master`` (``INFO replication``), asked at most every
        ``REPLICA_CHECK_S`` unless ``fresh``."""
        known = self._replicas.get(master)
        if fresh or known is None or time.monotonic() - known[1] > REPLICA_CHECK_S:
            known = (int(node.info("replication").get("connected_slaves", 0)), time.monotonic())
            self._replicas[master] = known
        return known[0]


__all__ = ["ReplicatedScript", "replicated"]
