"""One coordinator per run id: a lease in Redis (no Ray here)."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
from functools import partial

import redis

from ledger.connection import retrying

from .errors import ClusterError

LEASE_TTL_MS = 15_000


class RunLease:
    """At most one coordinator per run id: ``SET key holder NX PX`` renewed every 5 s by a thread,
    deleted at the end (only by its holder). A second coordinator of the same run id waits for it.
    The lease of a coordinator that was killed expires after 15 s, at once when it ran on this host
    (the holder names host and pid)."""

    _RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, client: redis.Redis, key: str, retry_s: float) -> None:
        self.r, self.key, self.retry_s = client, key, retry_s
        self.holder = f"{socket.gethostname()} pid {os.getpid()} {secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, wait_s: float, run_id: str) -> float:
        """Take the lease, waiting up to ``wait_s`` for another holder; returns the seconds waited."""
        t0 = time.monotonic()
        said = False
        while not retrying(lambda: self.r.set(self.key, self.holder, nx=True, px=LEASE_TTL_MS), self.retry_s):
            other = retrying(lambda: self.r.get(self.key), self.retry_s)
            other = other.decode() if other else "?"
            if self._dead_here(other):
                retrying(partial(self.r.eval, self._RELEASE, 1, self.key, other), self.retry_s)
                print(f"taxview: run {run_id} was left by a coordinator that is gone ({other}): taking it over",
                      file=sys.stderr)  # fmt: skip
                continue
            if time.monotonic() - t0 >= wait_s:
                raise ClusterError(
                    f"run {run_id} is in progress elsewhere ({other}); waited {wait_s:g}s: "
                    "run it again once that one ends (its accounts then replay)"
                )
            if not said:
                print(
                    f"taxview: run {run_id} is in progress elsewhere ({other}): waiting up to {wait_s:g}s for it "
                    "to end; its accounts then replay",
                    file=sys.stderr,
                )
                said = True
            time.sleep(0.5)
        self._thread = threading.Thread(target=self._renew, name="run-lease", daemon=True)
        self._thread.start()
        return time.monotonic() - t0

    @staticmethod
    def _dead_here(holder: str) -> bool:
        """Whether ``holder`` is a coordinator of this host whose process is gone."""
        host, _, rest = holder.partition(" pid ")
        pid = rest.split(" ")[0]
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_TTL_MS / 3000):
            try:
                self.r.eval(self._RENEW, 1, self.key, self.holder, LEASE_TTL_MS)
            except redis.RedisError:
                pass  # an outage: the next renewal tries again (the lease outlives 30 s of it)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.r.eval(self._RELEASE, 1, self.key, self.holder)
        except redis.RedisError:
            pass  # it expires by itself
