"""Shared fixtures. Integration fixtures (real redis-server, real Ray) live in tests/integration."""

from __future__ import annotations

import datetime as dt
import re
import sys
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest

from solver.market import synthesize
from solver.riskmodel import RiskModel
from solver.snapshot import Snapshot, snapshot
from taxview.core.records import Lot


@pytest.fixture(scope="session")
def small_market():
    """60 names, 400 days, 8 factors: realistic structure, fast to solve."""
    return synthesize(names=60, days=400, factors=8, seed=3)


@pytest.fixture(scope="session")
def small_snap(small_market):
    return snapshot(small_market, str(small_market.dates[-1]), factors=8)


def ro(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def twin_snapshot(date: dt.date = dt.date(2024, 3, 1)) -> Snapshot:
    """Six names, equal benchmark weights; TWIN moves with AAA (same factor, tiny specific risk)."""
    symbols = ("AAA", "TWIN", "CCC", "DDD", "EEE", "FFF")
    B = np.zeros((6, 3))
    B[:, 0] = 1.0  # market
    B[0:2, 1] = 1.0  # AAA and TWIN share a strong factor
    B[2:4, 2] = 1.0
    F = np.diag([0.16**2, 0.30**2, 0.20**2])
    D = np.array([0.02, 0.02, 0.25, 0.25, 0.25, 0.25]) ** 2
    model = RiskModel(symbols=symbols, B=ro(B), F=ro(F), D=ro(D))
    return Snapshot(
        date=date,
        symbols=symbols,
        sectors=("Tech", "Tech", "Energy", "Energy", "Health", "Health"),
        prices=ro([50.0, 40.0, 20.0, 25.0, 100.0, 10.0]),
        benchmark=ro(np.full(6, 1 / 6)),
        model=model,
    )


def lot(lot_id: str, symbol: str, shares: int | str, basis_dollars: float | str, acquired: str) -> Lot:
    return Lot(
        lot_id,
        symbol,
        Decimal(str(shares)),
        int(round(float(basis_dollars) * 100)),
        dt.date.fromisoformat(acquired),
    )


def benchmark_lots(snap: Snapshot, value: float, gain: float = 0.10, acquired: str = "2022-01-03") -> list[Lot]:
    """One lot per name at benchmark weight, each with the same gain fraction."""
    out = []
    for i, sym in enumerate(snap.symbols):
        sh = int(value * snap.benchmark[i] / snap.prices[i])
        out.append(lot(f"{sym}-1", sym, sh, round(sh * snap.prices[i] / (1 + gain), 2), acquired))
    return out


# --- real redis-server, started by the suite on a free loopback port -----------------------------


# modules whose tests start Rays of their own (taxview CLI processes, `ray start` nodes, Ray Serve)
OWN_RAY = {
    "tests/integration/test_operations.py",
    "tests/integration/test_ray_multinode.py",
    "tests/integration/test_serve.py",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist with ``--dist loadscope`` (``./dev test`` runs 2 workers) the modules
    that start Ray (they ask for ``local_ray`` or import ray) make two scopes, each run on one
    worker in order: those whose Rays are their own (``OWN_RAY``: CLI processes, ``ray start``,
    Serve) and the others, which share one Ray (tests/integration/conftest.py). At most two Rays
    run at once; every other module is a scope of its own and fills the gaps."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    root = config.rootpath
    ray_modules = {
        p.relative_to(root).as_posix()
        for p in (root / "tests").rglob("test_*.py")
        if re.search(r"^import ray$|\blocal_ray\b", p.read_text(), re.M)
    }

    class RayModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path in ray_modules:
                return "ray-own" if path in OWN_RAY else "ray-shared"
            return super()._split_scope(nodeid)

    return RayModulesTogether(config, log)


@pytest.fixture(scope="module", autouse=True)
def _no_shared_ray_outside_integration(request):
    """The integration tests share one local Ray (tests/integration/conftest.py); it is stopped
    before any other module, and at the end of the session."""
    if "integration" not in request.node.path.parts:
        _stop_ray()
    yield


def pytest_sessionfinish(session, exitstatus):
    _stop_ray()


def _stop_ray() -> None:
    ray = sys.modules.get("ray")  # never imported here only to stop it
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    from ledger.server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_cluster():
    """A real Redis Cluster (three masters, three replicas) on loopback, for the session; a test
    that kills a node starts its own (``tests.redis_cluster.LocalRedisCluster``)."""
    from tests.redis_cluster import LocalRedisCluster

    with LocalRedisCluster() as cluster:
        yield cluster


@pytest.fixture
def redis_cluster_client(redis_cluster):
    """A ``RedisCluster`` client of an emptied cluster (FLUSHALL on every master)."""
    from ledger.connection import reach

    client = reach(redis_cluster.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def store(redis_client):
    from ledger.store import LedgerStore

    return LedgerStore(redis_client)


@dataclass
class Sold:
    date: object
    account: str
    symbol: str
    lot_id: str
    quantity: Decimal
    proceeds: int
    basis: int
    gain: int
    disallowed: int
    permanent: int
    recognized: int
    term: str


@dataclass
class Held:
    lot_id: str
    account: str
    symbol: str
    quantity: Decimal
    basis: int
    acquired: object
    holding_start: object


@dataclass
class Outcome:
    sales: list
    lots: list


def _outcome(sales, lots) -> Outcome:
    return Outcome(
        sorted(
            (
                Sold(
                    s.date,
                    s.account,
                    s.symbol,
                    s.lot_id,
                    s.quantity,
                    s.proceeds_cents,
                    s.basis_cents,
                    s.gain_cents,
                    s.disallowed_cents,
                    s.permanent_cents,
                    s.recognized_cents,
                    s.term,
                )
                for s in sales
            ),
            key=lambda s: (s.date, s.account, s.lot_id),
        ),
        sorted(
            (Held(x.lot_id, x.account, x.symbol, x.quantity, x.basis_cents, x.acquired, x.holding_start) for x in lots),
            key=lambda x: x.lot_id,
        ),
    )


def replay_into_store(store, trades, identical=None):
    """Commit a trade history through a ledger (Redis or memory): one commit per (date, account) run."""
    from ledger.api import AccountInfo
    from taxview.core.records import Trade

    accounts = {}
    for t in trades:
        accounts[t.account] = AccountInfo(t.account, t.household, t.account_type)
    store.add_accounts(accounts.values())
    batch, n = [], 0
    for t in [*trades, None]:
        if batch and (t is None or (t.date, t.account) != (batch[0].date, batch[0].account)):
            n += 1
            store.commit(
                batch[0].account,
                batch[0].date,
                [Trade(x.symbol, x.side, x.quantity, x.price, x.lot_id) for x in batch],
                f"replay-{n}",
                allow_wash=True,
            )
            batch = []
        if t is not None:
            batch.append(t)
    households = {t.household for t in trades}
    sales = [s for hh in households for s in store.sales(hh)]
    lots = [x for a in accounts for x in store.lots(a)]
    return _outcome(sales, lots)


@pytest.fixture(params=["engine", "memory", "redis"])
def ledger_backend(request):
    """Runs a trade history through the pure engine, the in-memory ledger or the Redis ledger;
    all three must agree."""
    from ledger.batch import run
    from ledger.memory import MemoryLedger

    if request.param == "engine":

        def engine(trades, identical=None):
            r = run(trades, identical)
            return _outcome(r.sales, r.lots)

        return engine
    if request.param == "memory":
        return lambda trades, identical=None: replay_into_store(MemoryLedger(identical), trades, identical)
    store = request.getfixturevalue("store")

    def redis_backend(trades, identical=None):
        store.identical = dict(identical or {})
        return replay_into_store(store, trades, identical)

    return redis_backend
