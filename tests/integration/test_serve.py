"""The service on real Ray Serve (num_cpus=2, two replicas) over a real redis-server, through HTTP:
auth, 404 and 422, a proposal and its commit, and two clients committing on one household at once
(one wins, the other gets 409, nothing is lost: the loser proposes again and commits). Every test
runs behind both ingresses: Ray Serve's proxy (two replicas) and its HAProxy mode (Debian's
haproxy; one replica). One app per ingress for the module (Ray Serve is slow to start)."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
import os
import re
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

import httpx
import psutil
import pyarrow as pa
import pytest
import ray

from cluster.coordinator import _loopback_ray
from cluster.serve import INGRESSES, ServeSettings, ingress_env, start, stop
from cluster.service.auth import create_token
from cluster.summary import RunSummary
from ledger.api import AccountInfo
from ledger.connection import LedgerSettings
from ledger.importer import import_lots
from ledger.server import free_port
from ledger.store import LedgerStore
from solver.market import synthesize, write_market
from solver.snapshot import load_snapshot
from taxview.core.records import Lot


@pytest.fixture(scope="module", params=INGRESSES)
def app(request, redis_server, tmp_path_factory):
    with ingress_env(request.param):
        yield from _served(request.param, redis_server, tmp_path_factory)
    if request.param == "haproxy":  # stopping the service stopped its haproxy
        assert not [p for p in psutil.process_iter(["name"]) if p.info["name"] == "haproxy"]


def _served(ingress, redis_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    market = synthesize(names=60, days=300, factors=8, seed=11)
    write_market(market, work / "market")
    _, snap = load_snapshot(work / "market", str(market.dates[-1]), factors=8)
    client = redis_server.client()
    client.flushall()
    store = LedgerStore(client)
    store.add_accounts(
        [
            AccountInfo("H1-T", "H1", "taxable", cash_cents=1_000_000),
            AccountInfo("H1-S", "H1", "taxable", cash_cents=1_000_000),
            AccountInfo("H1-I", "H1", "ira", cash_cents=1_000_000),
        ]
    )
    lots = []
    for account, value, gain in (("H1-T", 800_000, 0.10), ("H1-S", 600_000, -0.15), ("H1-I", 300_000, 0.2)):
        for i, s in enumerate(snap.symbols):
            shares = int(value * snap.benchmark[i] / snap.prices[i])
            if shares:
                basis = round(shares * snap.price_cents[i] / (1 + gain))
                lots.append((account, Lot(f"{account}-{s}", s, Decimal(shares), basis, dt.date(2015, 3, 2))))
    import_lots(store, lots_table(lots))
    (work / "out" / "night-1").mkdir(parents=True)
    summary = RunSummary("nightly-1", str(snap.date), 3, 3, 0, 0, 12, 1.0, 3.0, 2, 1, 0)
    (work / "out" / "night-1" / "run.json").write_text(json.dumps(asdict(summary)))
    token = create_token(work / "tokens", "advisor")
    ray.shutdown()  # the tests' shared Ray (tests/integration/conftest.py): this one is set up for Serve
    undo = _loopback_ray()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    port = free_port()
    settings = ServeSettings(
        LedgerSettings(redis_server.url),
        str(work / "tokens"),
        str(work / "out"),
        replicas=2 if ingress == "proxy" else 1,  # two replicas shown once: Serve is slow to start on 2 cores
        port=port,
        ingress=ingress,
    )
    try:
        start(settings, snap)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield http, {"Authorization": f"Bearer {token}"}, store, snap
    finally:
        stop()
        ray.shutdown()
        undo()
        client.close()


def lots_table(lots) -> pa.Table:
    """(account, Lot) pairs as the ledger's bulk import takes them (the demo's path)."""
    return pa.table(
        {
            "account": [a for a, _ in lots],
            "lot_id": [x.lot_id for _, x in lots],
            "symbol": [x.symbol for _, x in lots],
            "quantity": [str(x.quantity) for _, x in lots],
            "basis_cents": pa.array([x.basis_cents for _, x in lots], pa.int64()),
            "acquired": pa.array([x.acquired.toordinal() for _, x in lots], pa.int64()),
            "holding_start": pa.array([x.acquired.toordinal() for _, x in lots], pa.int64()),
        }
    )


def test_health_needs_no_token_and_everything_else_does(app):
    http, auth, _, _ = app
    assert http.get("/healthz").json() == {"ok": True}
    assert http.get("/readyz").json()["ready"] is True
    assert "/v1/accounts/{account}/proposals" in http.get("/openapi.json").json()["paths"]
    docs = http.get("/docs")  # Swagger UI from the app's /static (no CDN), through Ray Serve too
    scripts = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert docs.status_code == 200 and scripts and all(u.startswith("/static/") for u in scripts)
    for url in scripts:
        r = http.get(url)
        assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
    for headers in ({}, {"Authorization": "Bearer tv_wrong"}, {"Authorization": "Basic abc"}):
        r = http.get("/v1/accounts/H1-T", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert http.get("/v1/accounts/H1-T", headers=auth).status_code == 200


def test_the_service_listens_on_loopback_only(app):
    http, _, _, _ = app
    port = http.base_url.port
    listening = {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("tcp") if c.status == "LISTEN"}
    assert ("127.0.0.1", port) in listening and not {a for a in listening if a[1] == port} - {("127.0.0.1", port)}
    config = os.environ.get("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC")
    if config:  # HAProxy forwards to the replicas' own HTTP servers, on loopback
        text = "".join(p.read_text() for p in Path(config).parent.glob("*/haproxy.cfg"))
        replicas = re.findall(r"server SERVE_REPLICA\S* ([\d.]+):(\d+)", text)
        assert replicas and all(ip == "127.0.0.1" for ip, _ in replicas)
        assert all(("127.0.0.1", int(p)) in listening for _, p in replicas)


def test_solves_run_at_a_lower_cpu_priority_than_the_answers(app):
    http, auth, _, _ = app
    assert http.post("/v1/accounts/H1-T/proposals", headers=auth, json={}).json()["status"] == "optimal"
    nice: dict[str, set[int]] = {"TaxviewSolver": set(), "TaxviewService": set()}
    for p in psutil.process_iter(["cmdline"]):
        for name in nice:
            if any(name in part for part in p.info["cmdline"] or ()):
                nice[name] |= {psutil.Process(t.id).nice() for t in p.threads()}
    assert nice["TaxviewSolver"] and nice["TaxviewService"]
    assert min(nice["TaxviewSolver"]) >= max(nice["TaxviewService"]) + 4


def test_unknown_names_are_404_and_bad_input_422_naming_the_field(app):
    http, auth, _, _ = app
    assert http.get("/v1/accounts/H9-T", headers=auth).status_code == 404
    assert http.get("/v1/households/H9/restrictions", headers=auth).status_code == 404
    assert http.post("/v1/proposals/p-0123456789abcdef01234567/commit", headers=auth).status_code == 404
    assert http.get("/v1/runs/nightly-9", headers=auth).status_code == 404
    r = http.get("/v1/accounts/H1%7Bx%7D", headers=auth)  # "H1{x}": a Redis hash tag
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "account"
    r = http.post("/v1/accounts/H1-T/proposals", headers=auth, json={"te_max": "lots"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "te_max"
    r = http.post("/v1/accounts/H1-T/proposals", headers=auth, json={"exclude": ["NOPE"]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "exclude"
    r = http.post("/v1/households/H1/wash-check", headers=auth, json={"trades": [{"account": "H1-T"}]})
    assert r.status_code == 422 and {e["loc"][-1] for e in r.json()["detail"]} >= {"symbol", "side", "quantity"}
    r = http.get("/v1/households/H1/restrictions?date=2024-02-30", headers=auth)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "date"
    assert http.get("/v1/runs/nightly-1", headers=auth).json()["accounts"] == 3


def test_a_proposal_writes_nothing_and_its_commit_books_it_once(app):
    http, auth, store, _ = app
    version = store.household_version("H1")
    p = http.post("/v1/accounts/H1-S/proposals", headers=auth, json={"cash_to_raise": "25000.00"}).json()
    assert p["status"] == "optimal" and p["ledger_version"] == version == store.household_version("H1")
    assert Decimal(p["harvested_loss"]) > 0 and Decimal(p["cash_after"]) >= Decimal("25000.00")
    done = http.post(f"/v1/proposals/{p['proposal_id']}/commit", headers=auth)
    assert done.status_code == 200 and done.json()["replayed"] is False
    assert store.household_version("H1") == version + 1
    assert Decimal(done.json()["cash"]) == Decimal(p["cash_after"])
    again = http.post(f"/v1/proposals/{p['proposal_id']}/commit", headers=auth).json()
    assert again["replayed"] is True and again["sales"] == done.json()["sales"]
    sold = {s["symbol"] for s in done.json()["sales"]}
    r = http.get("/v1/households/H1/restrictions", headers=auth).json()
    assert sold and sold <= set(r["accounts"]["H1-I"]["no_buy"])  # the harvest blocks the IRA
    check = http.post(
        "/v1/households/H1/wash-check",
        headers=auth,
        json={"trades": [{"account": "H1-I", "symbol": sorted(sold)[0], "side": "buy", "quantity": "10"}]},
    ).json()["trades"][0]
    assert check["washes"] is True and Decimal(check["permanently_disallowed"]) > 0


def test_two_commits_on_one_household_at_once_one_wins_one_gets_409_nothing_lost(app):
    http, auth, store, _ = app
    a = http.post("/v1/accounts/H1-T/proposals", headers=auth, json={"cash_to_raise": "10000"}).json()
    b = http.post("/v1/accounts/H1-I/proposals", headers=auth, json={"cash_to_raise": "10000"}).json()
    assert a["ledger_version"] == b["ledger_version"] and a["orders"] and b["orders"]
    before = {x: (store.account(x).cash_cents, len(store.lots(x))) for x in ("H1-T", "H1-I")}
    with cf.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda p: http.post(f"/v1/proposals/{p['proposal_id']}/commit", headers=auth), (a, b)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 409]
    won, lost = (a, b) if answers[0].status_code == 200 else (b, a)
    refused = answers[1] if answers[0].status_code == 200 else answers[0]
    assert refused.json()["code"] == "CHANGED" and "propose again" in refused.json()["reason"]
    assert store.account(won["account"]).cash_cents == int(Decimal(won["cash_after"]) * 100)
    assert (store.account(lost["account"]).cash_cents, len(store.lots(lost["account"]))) == before[lost["account"]]
    again = http.post(f"/v1/accounts/{lost['account']}/proposals", headers=auth, json={"cash_to_raise": "10000"})
    done = http.post(f"/v1/proposals/{again.json()['proposal_id']}/commit", headers=auth)
    assert done.status_code == 200 and Decimal(done.json()["cash"]) == Decimal(again.json()["cash_after"])
