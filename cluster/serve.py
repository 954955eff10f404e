"""The on-demand service on Ray Serve (issue 14): a FastAPI ingress (``cluster.service.app``) in
replicas that each keep their own ``ProblemCache`` warm across requests, the day's market snapshot
put in the object store once and read by every replica, the Redis ledger behind them (proposals
wait in the same Redis, so any replica commits what another proposed).

``start`` runs it on a Ray already initialized (the CLI's local one: loopback only) and serves
HTTP on ``ServeSettings.host`` (127.0.0.1 by default: TLS and outside access are a reverse
proxy's). Besides the coordinator, the only module that imports Ray Serve.
"""

from __future__ import annotations

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

from .service.app import make_app
from .service.auth import Tokens
from .service.core import Service
from .service.proposals import RedisProposals

APP_NAME = "taxview"


@dataclass(frozen=True)
class ServeSettings:
    """One service as its entry point states it: the ledger, the tokens file, where the nightly
    runs' outputs are, the firm's defaults, replicas, HTTP address."""

    ledger: LedgerSettings
    tokens: str
    runs_dir: str | None = None
    defaults: AccountSettings = field(default_factory=AccountSettings)
    replicas: int = 2
    host: str = "127.0.0.1"
    port: int = 8000
    ledger_retry_s: float = 2.0  # a ledger call retried this long, then 503 (Retry-After)
    max_ongoing_requests: int = 32  # per replica (solves queue behind one lock per replica)
    warm: bool = True  # compile the day's problems before taking requests


@serve.deployment(name="TaxviewService", ray_actor_options={"num_cpus": 0})
@serve.ingress()
class TaxviewService:
    """One replica: its own ledger client, warm problems and the shared snapshot."""

    def __init__(self, settings: ServeSettings, snapshot: list) -> None:
        snap: Snapshot = ray.get(snapshot[0])  # in a list: Serve hands it over as a reference
        store = settings.ledger.open_store()
        self.tokens = Tokens(settings.tokens)
        self.service = Service(
            store,
            snap,
            settings.defaults,
            RedisProposals(store.r, settings.ledger.prefix),
            ProblemCache(),
            Path(settings.runs_dir) if settings.runs_dir else None,
            call=partial(retrying, bound_s=settings.ledger_retry_s),
        )
        if settings.warm:
            self.service.warm()  # the replica is ready once its problems are compiled

    def __serve_build_asgi_app__(self) -> Any:
        return make_app(lambda: self.service, self.tokens)


def start(settings: ServeSettings, snap: Snapshot, blocking: bool = False) -> None:
    """Deploy the service on the running Ray: the snapshot put in the object store once, the
    replicas started, HTTP on ``settings.host:settings.port``. Returns once it is ready (or serves
    until interrupted with ``blocking``)."""
    ref = ray.put(snap)
    serve.start(http_options={"host": settings.host, "port": settings.port}, logging_config={"log_level": "WARNING"})
    app = TaxviewService.options(
        num_replicas=settings.replicas, max_ongoing_requests=settings.max_ongoing_requests
    ).bind(settings, [ref])
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=blocking)


def stop() -> None:
    serve.shutdown()
