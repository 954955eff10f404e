"""The client side of the ledger's Redis connection: ``LedgerSettings``, password redaction,
clients with bounded timeouts, a bounded retry for outages. (Which server — a URL or the private
one of a working directory, ``ledger.server`` — is the entry point's choice.)"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import LedgerUnavailable
from .store import LedgerStore

T = TypeVar("T")
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
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LedgerUnavailable(
                    f"{what} unavailable: {redact(exc)} (still failing after {bound_s:g}s of retries)"
                ) from None
            time.sleep(min(delay, left))
            delay = min(2 * delay, 2.0)


def client_from_url(url: str, timeout_s: float = 10.0) -> redis.Redis:
    """A client whose every call returns or fails within ``timeout_s`` (a stalled server does not
    hang it); retries are the caller's (``retrying``), not redis-py's."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 5.0), retry=Retry(NoBackoff(), 0)
    )


def reach(url: str) -> redis.Redis:
    """A client of ``url`` (password and TLS via rediss:// in the URL) that answered a PING, or
    ``LedgerUnavailable`` with the password redacted."""
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        raise LedgerUnavailable(f"cannot reach Redis at {redact(url)}: {redact(exc)}") from None
    return client


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

    def open_store(self) -> LedgerStore:
        """A store on a client with bounded timeouts (``client_from_url``)."""
        return LedgerStore(client_from_url(self.url, self.timeout_s), self.prefix, dict(self.identical))
