"""The client side of the ledger's Redis connection: ``LedgerSettings``, password redaction,
clients with bounded timeouts, a bounded retry for outages. (Which server — a URL or the private
one of a working directory, ``ledger.server`` — is the entry point's choice.)

A Redis Cluster is reached with redis-py's ``RedisCluster`` client, chosen by the URL:
``redis+cluster://`` (``rediss+cluster://`` with TLS) says so without asking; a plain
``redis://``/``rediss://`` URL of any node is asked once (``INFO cluster``: ``cluster_enabled:1``)
when the entry point connects (``reach``), and the answer travels in ``LedgerSettings.cluster``
so a worker never asks again. Either way every command is the same: the ledger's scripts touch
one household's hash slot each (``ledger.keys``)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import ClusterDownError, RedisClusterException, SlotNotCoveredError, TryAgainError
from redis.retry import Retry

from .errors import LedgerUnavailable
from .store import LedgerStore

T = TypeVar("T")
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# a cluster between a master's loss and its replica's promotion: the slots answer CLUSTERDOWN or
# TRYAGAIN, or the client finds no node for a slot; retried like an outage
_CLUSTER_TRANSIENT = (ClusterDownError, TryAgainError, SlotNotCoveredError)
_URL_SECRET = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@\s]+)@")


def redact(text: object) -> str:
    """``text`` with the password of every URL in it replaced by ``***``
    (``redis://:s3cret@h:6379/0`` → ``redis://:***@h:6379/0``)."""
    return _URL_SECRET.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))


def retrying(call: Callable[[], T], bound_s: float, what: str = "ledger") -> T:
    """``call()``, retried with exponential backoff (50 ms doubling to 2 s) on connection errors,
    timeouts and a server still loading its data, for at most ``bound_s`` seconds; then
    ``LedgerUnavailable``. Authentication errors are not retried."""
    deadline = time.monotonic() + bound_s
    delay = 0.05
    while True:
        try:
            return call()
        except (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError):
            raise
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, *_CLUSTER_TRANSIENT) as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LedgerUnavailable(
                    f"{what} unavailable: {redact(exc)} (still failing after {bound_s:g}s of retries)"
                ) from None
            time.sleep(min(delay, left))
            delay = min(2 * delay, 2.0)


def cluster_scheme(url: str) -> tuple[bool, str]:
    """(whether ``url`` names a cluster by its scheme, the URL redis-py reads):
    ``redis+cluster://h:7000/0`` → ``(True, "redis://h:7000/0")``; any other URL is itself."""
    scheme, sep, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower())
    return (True, f"{plain}{sep}{rest}") if sep and plain else (False, url)


def is_cluster(url: str) -> bool:
    """Whether ``url`` is a Redis Cluster: by its scheme, else by asking the node (``INFO cluster``)."""
    named, plain = cluster_scheme(url)
    if named:
        return True
    client = redis.Redis.from_url(plain, socket_connect_timeout=5.0, socket_timeout=10.0)
    try:
        return int(client.info("cluster").get("cluster_enabled", 0)) == 1
    except redis.exceptions.ResponseError:  # INFO refused (an ACL without it): name a cluster by its scheme
        return False
    finally:
        client.close()


def client_from_url(url: str, timeout_s: float = 10.0, cluster: bool = False) -> redis.Redis:
    """A client whose every call returns or fails within ``timeout_s`` (a stalled server does not
    hang it); retries are the caller's (``retrying``), not redis-py's. ``cluster``: a
    ``RedisCluster`` (it follows MOVED and, after a connection error, reloads the slot map before
    the caller's retry; ``redis+cluster://`` URLs are one whatever ``cluster`` says)."""
    named, plain = cluster_scheme(url)
    timeouts = {"socket_timeout": timeout_s, "socket_connect_timeout": min(timeout_s, 5.0)}
    if named or cluster:
        try:
            return RedisCluster.from_url(plain, retry=Retry(NoBackoff(), 0), **timeouts)  # type: ignore[return-value]
        except RedisClusterException as exc:  # no node answered (its slot map is loaded here): an outage
            raise redis.exceptions.ConnectionError(str(exc)) from None
    return redis.Redis.from_url(plain, retry=Retry(NoBackoff(), 0), **timeouts)


def reach(url: str) -> redis.Redis:
    """A client of ``url`` (password and TLS via rediss:// in the URL; a cluster by its scheme or
    by asking, see the module) that answered a PING, or ``LedgerUnavailable`` with the password
    redacted."""
    client = None
    try:
        named, plain = cluster_scheme(url)
        if named or is_cluster(url):
            client = RedisCluster.from_url(plain)
        else:
            client = redis.Redis.from_url(plain)
        client.ping()
    except (redis.exceptions.RedisError, RedisClusterException) as exc:
        if client is not None:
            client.close()
        raise LedgerUnavailable(f"cannot reach Redis at {redact(url)}: {redact(exc)}") from None
    return client


def used_memory(client: redis.Redis) -> int:
    """``used_memory`` in bytes: the server's, or the sum over a cluster's masters."""
    if isinstance(client, RedisCluster):
        infos = client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        if "used_memory" in infos:  # one master answered
            return int(infos["used_memory"])
        return sum(int(i["used_memory"]) for i in infos.values())
    return int(client.info("memory")["used_memory"])


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """How every part of one command reaches the ledger: built once at the entry point (the CLI
    resolves ``--redis``, ``--redis-url-file``, ``$TAXVIEW_REDIS_URL`` or the private server) and
    passed down to the coordinator and each worker, which connect with it. ``url`` carries the
    password: it is left out of ``repr`` and printed only through ``redact``."""

    url: str = field(repr=False)
    prefix: str = "tv"
    identical: tuple[tuple[str, str], ...] = ()  # (symbol, identity key): GOOG and GOOGL are one name
    timeout_s: float = 10.0  # every Redis call returns or fails within this
    retry_s: float = 60.0  # how long a call is retried through an outage before its account fails
    cluster: bool | None = None  # a Redis Cluster; None: by the URL's scheme, else asked once on open
    replica_wait_ms: int = 2000  # on a cluster, how long a write waits for a replica's copy (WAIT)

    def open_store(self) -> LedgerStore:
        """A store on a client with bounded timeouts (``client_from_url``); a cluster's slot map
        is loaded through outages for ``retry_s`` (a worker started during a failover waits)."""
        cluster = self.cluster
        if cluster is None:
            cluster = retrying(lambda: is_cluster(self.url), self.retry_s)
        client = retrying(lambda: client_from_url(self.url, self.timeout_s, cluster), self.retry_s)
        return LedgerStore(client, self.prefix, dict(self.identical), self.replica_wait_ms)
