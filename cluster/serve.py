"""The on-demand service on Ray Serve (issue 14): a FastAPI ingress (``cluster.service.app``) in
replicas that answer reads, commits and wash-checks at once, and solver replicas that solve
proposals with their own warm ``ProblemCache``, at a lower CPU priority (``nice``) so that a solve
never holds up a wash-check (the ingress hands a proposal over with a Serve handle). The day's
market snapshot is put in the object store once and read by every replica; the Redis ledger is
behind them (proposals wait in the same Redis, so any replica commits what another proposed).

Two ingresses (``ServeSettings.ingress``):

* ``proxy`` (the default): Ray Serve's HTTP proxy actor, on ``ServeSettings.host`` (127.0.0.1)
  only. Every request crosses the proxy actor and a Ray call to a replica: ~16 ms of Python per
  request on the 2-core reference machine (``benchmarks/serve_load.py``).
* ``haproxy``: Ray Serve's HAProxy mode: Debian's ``haproxy`` forwards each request straight to
  the replicas' own HTTP servers (on loopback here), no proxy actor in the path. HAProxy also opens
  its stats page and Prometheus exporter on every interface (free ports taxview picks and prints:
  firewall them, or scrape them). Ray reads the mode when it starts, so ``ingress_environment``
  must be in the environment before ``ray.init``.

``start`` runs it on a Ray already initialized (the CLI's local one: loopback only) and serves
HTTP on ``ServeSettings.host`` (127.0.0.1 by default: TLS and outside access are a reverse
proxy's). Besides the coordinator, the only module that imports Ray Serve.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import ray
from ray import serve

from ledger.connection import LedgerSettings, retrying
from solver.problem import ProblemCache
from solver.snapshot import Snapshot
from solver.types import AccountSettings
from taxview.core.errors import InputError

from .service.app import make_app
from .service.auth import Tokens
from .service.core import Overrides, Service
from .service.proposals import RedisProposals

APP_NAME = "taxview"
INGRESSES = ("proxy", "haproxy")
PROPOSAL_TIMEOUT_S = 120.0  # a proposal's solve, queue included, before the ingress gives up (503)


@dataclass(frozen=True)
class ServeSettings:
    """One service as its entry point states it: the ledger, the tokens file, where the nightly
    runs' outputs are, the firm's defaults, replicas, HTTP address, the ingress."""

    ledger: LedgerSettings
    tokens: str
    runs_dir: str | None = None
    defaults: AccountSettings = field(default_factory=AccountSettings)
    replicas: int = 2  # ingress replicas, and as many solver replicas
    host: str = "127.0.0.1"
    port: int = 8000
    ledger_retry_s: float = 2.0  # a ledger call retried this long, then 503 (Retry-After)
    max_ongoing_requests: int = 32  # per ingress replica
    warm: bool = True  # solver replicas compile the day's problems before taking requests
    solver_nice: int = 4  # solver replicas this much nicer than the ingress's: solves yield the CPU
    ingress: str = "proxy"  # or "haproxy" (see the module's docstring)


def _service(settings: ServeSettings, snap: Snapshot, **kw: Any) -> Service:
    store = settings.ledger.open_store()
    return Service(
        store,
        snap,
        settings.defaults,
        RedisProposals(store.r, settings.ledger.prefix),
        ProblemCache(),
        Path(settings.runs_dir) if settings.runs_dir else None,
        call=partial(retrying, bound_s=settings.ledger_retry_s),
        **kw,
    )


def _renice(nice: int) -> None:
    """Lower this process's CPU priority to ``nice`` (at most 19): on Linux a priority is a
    thread's, so every thread it has now and the calling one."""
    nice = min(nice, 19)
    tids = {threading.get_native_id()}
    try:
        tids |= {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        pass
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:  # the thread ended meanwhile
            pass


@serve.deployment(name="TaxviewSolver", ray_actor_options={"num_cpus": 0})
class TaxviewSolver:
    """One solver replica: its own warm problems; proposals solved one at a time, niced."""

    def __init__(self, settings: ServeSettings, snapshot: list) -> None:
        # below the ingress replicas (Ray starts its workers at nice 15 of its own)
        self.nice = os.getpriority(os.PRIO_PROCESS, 0) + settings.solver_nice
        _renice(self.nice)
        self.service = _service(settings, ray.get(snapshot[0]))  # in a list: Serve hands it over as a reference
        if settings.warm:
            self.service.warm()  # the replica is ready once its problems are compiled

    def propose(self, account: str, overrides: Overrides) -> tuple[bool, Any]:
        """(True, the proposal) or (False, the error): an error travels as a value, its type and
        fields intact, and the ingress raises it as if the solve had been its own."""
        _renice(self.nice)  # threads Ray made since too
        try:
            return True, self.service.propose(account, overrides)
        except Exception as exc:  # noqa: BLE001 - handed back to the ingress, which answers it
            return False, exc


@serve.deployment(name="TaxviewService", ray_actor_options={"num_cpus": 0})
@serve.ingress()
class TaxviewService:
    """One ingress replica: its own ledger client and the shared snapshot; proposals go to the
    solver replicas."""

    def __init__(self, settings: ServeSettings, snapshot: list, solver: Any) -> None:
        self.solver = solver
        self.tokens = Tokens(settings.tokens)
        self.service = _service(settings, ray.get(snapshot[0]), proposer=self._propose)

    def _propose(self, account: str, overrides: Overrides) -> dict[str, Any]:
        ok, value = self.solver.propose.remote(account, overrides).result(timeout_s=PROPOSAL_TIMEOUT_S)
        if not ok:
            raise value
        return value

    def __serve_build_asgi_app__(self) -> Any:
        return make_app(lambda: self.service, self.tokens)


def ingress_environment(ingress: str, state_dir: Path) -> dict[str, str]:
    """What Ray must find in its environment when it starts for ``ingress``: nothing for the proxy;
    for HAProxy the mode, Debian's binary, free ports for its stats page, exporter and fallback
    proxy, and its files under ``state_dir`` (short: its sockets' paths, with Ray's 56-character
    node id, must fit HAProxy's 97). ``InputError`` when haproxy is not installed."""
    if ingress not in INGRESSES:
        raise InputError("ingress", f"ingress must be one of {', '.join(INGRESSES)}, got {ingress!r}")
    if ingress == "proxy":
        return {}
    binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if binary is None:
        raise InputError("ingress", "--ingress haproxy needs haproxy: apt-get install haproxy (./dev installs it)")
    from ledger.server import free_port

    state_dir.mkdir(parents=True, exist_ok=True)
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_BINARY_PATH": binary,
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(state_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(state_dir / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(state_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(state_dir / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(state_dir / "metrics.sock"),
        # a stopping replica keeps answering this long while HAProxy's health checks (every 250 ms
        # once one fails) take it out: 2 s on loopback, not Ray's 30 s for remote load balancers
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
    }


@contextmanager
def ingress_env(ingress: str) -> Iterator[dict[str, str]]:
    """``ingress_environment`` set in ``os.environ`` while the block runs (start Ray inside it),
    HAProxy's files in a new directory under /tmp; afterwards the environment as it was and the
    directory removed."""
    state_dir = Path(tempfile.mkdtemp(prefix="tvh-", dir="/tmp")) if ingress == "haproxy" else Path("/nonexistent")
    try:
        env = ingress_environment(ingress, state_dir)
    except BaseException:
        if ingress == "haproxy":
            shutil.rmtree(state_dir, ignore_errors=True)
        raise
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if ingress == "haproxy":
            shutil.rmtree(state_dir, ignore_errors=True)


def start(settings: ServeSettings, snap: Snapshot, blocking: bool = False) -> None:
    """Deploy the service on the running Ray: the snapshot put in the object store once, the
    solver and ingress replicas started, HTTP on ``settings.host:settings.port``. Returns once it
    answers (or serves until interrupted with ``blocking``)."""
    ref = ray.put(snap)
    serve.start(http_options={"host": settings.host, "port": settings.port}, logging_config={"log_level": "WARNING"})
    solver = TaxviewSolver.options(num_replicas=settings.replicas).bind(settings, [ref])
    app = TaxviewService.options(
        num_replicas=settings.replicas, max_ongoing_requests=settings.max_ongoing_requests
    ).bind(settings, [ref], solver)
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    _wait_answering(settings)
    if blocking:
        while True:
            time.sleep(3600)


def _wait_answering(settings: ServeSettings, seconds: float = 60.0) -> None:
    """Until the HTTP port answers ``/healthz`` (HAProxy learns of the replicas a moment after
    Serve reports them running)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}/healthz"
    stop_at = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:  # refused, reset, or HAProxy's 503 (HTTPError) until it knows the replicas
            pass
        if time.monotonic() > stop_at:
            raise RuntimeError(f"the service did not answer on {url} within {seconds:.0f} s")
        time.sleep(0.1)


def stop() -> None:
    serve.shutdown()
