"""The nightly rebalance end to end: a real local Ray (num_cpus=2) and a real redis-server."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

from cluster.coordinator import rebalance
from cluster.settings import RunSettings
from ledger.connection import LedgerSettings
from ledger.importer import import_lots
from ledger.store import LedgerStore
from taxview.demo import synth_firm


def load_firm(store: LedgerStore, market_dir, accounts: int = 14, corrupt: str | None = None) -> list[str]:
    from solver.market import read_market

    m = read_market(market_dir)
    infos, lots = synth_firm(m, len(m.dates) - 1, accounts, seed=5)
    if corrupt:  # one lot of one account names a symbol outside the universe
        symbols = lots.column("symbol").to_pylist()
        i = lots.column("account").to_pylist().index(corrupt)
        symbols[i] = "ZZZZ"
        lots = lots.set_column(2, "symbol", pa.array(symbols))
    store.add_accounts(infos)
    import_lots(store, lots)
    return [a.account for a in infos]


def run(redis_server, market_dir, out, **kw):
    from solver.market import read_market

    m = read_market(market_dir)
    after_shard = kw.pop("after_shard", None)
    run = RunSettings(str(m.dates[-1]), market_dir, out, workers=2, quiet=True, shard_size=4, factors=8, **kw)
    return rebalance(run, LedgerSettings(redis_server.url), after_shard=after_shard)


def journal_trades(store: LedgerStore, run_id: str) -> Counter:
    out = Counter()
    for hh in {store.household_of(a) for a in store.accounts()}:
        for e in store.journal(hh):
            if e["key"].startswith(run_id + ":"):
                for t in e["entry"]["trades"]:
                    out[(e["account"], t["symbol"], t["side"], t["quantity"], t["lot_id"])] += 1
    return out


def parquet_trades(path) -> Counter:
    """The trades of a run's file; a buy's lot id (the lot it opened, which the journal's request
    does not carry) is checked apart (``test_every_account_rebalanced_once...``)."""
    rows = pq.read_table(path).to_pylist()
    return Counter(
        (
            r["account"],
            r["symbol"],
            r["side"],
            str(r["shares"].normalize()),
            r["lot_id"] if r["side"] == "sell" else None,
        )
        for r in rows
    )


def normalize(c: Counter) -> Counter:
    from decimal import Decimal

    return Counter({(a, s, side, str(Decimal(q).normalize()), lot): n for (a, s, side, q, lot), n in c.items()})


def test_every_account_rebalanced_once_without_wash_sales_and_outputs_match_the_journal(
    local_ray, redis_server, redis_client, market_dir, tmp_path
):
    store = LedgerStore(redis_client)
    accounts = load_firm(store, market_dir)
    s = run(redis_server, market_dir, tmp_path / "out")
    rows = pq.read_table(tmp_path / "out" / "accounts.parquet").to_pylist()
    assert sorted(r["account"] for r in rows) == sorted(accounts)  # every account, once
    assert s.failed == 0 and all(r["status"] == "optimal" for r in rows), [r["reason"] for r in rows]
    assert s.trades > 0 and float(s.harvested_loss) > 0
    for hh in {store.household_of(a) for a in accounts}:  # the run created no wash sale anywhere
        assert all(x.disallowed_cents == 0 and x.permanent_cents == 0 for x in store.sales(hh))
    assert parquet_trades(tmp_path / "out" / "trades.parquet") == normalize(journal_trades(store, s.run_id))
    opened = {x.lot_id for a in accounts for x in store.lots(a)} | {
        s.lot_id for hh in {store.household_of(a) for a in accounts} for s in store.sales(hh)
    }
    buys = [r for r in pq.read_table(tmp_path / "out" / "trades.parquet").to_pylist() if r["side"] == "buy"]
    assert buys and all(r["lot_id"] and r["lot_id"].split(".")[0] in {x.split(".")[0] for x in opened} for r in buys)
    # accounts.parquet's realized gains are the sum of trades.parquet's, by term (one source: the ledger)
    sums: dict = {}
    for x in pq.read_table(tmp_path / "out" / "trades.parquet").to_pylist():
        if x["side"] == "sell":
            key = (x["account"], x["term"])
            sums[key] = sums.get(key, 0) + x["realized_gain"]
    for r in rows:
        assert (r["st_realized"], r["lt_realized"]) == (
            sums.get((r["account"], "short"), 0),
            sums.get((r["account"], "long"), 0),
        )
    run_json = (tmp_path / "out" / "run.json").read_text()
    assert '"accounts_per_s"' in run_json and '"worker_stages"' in run_json


def test_rerunning_the_same_run_id_applies_nothing(local_ray, redis_server, redis_client, market_dir, tmp_path):
    store = LedgerStore(redis_client)
    load_firm(store, market_dir, accounts=8)
    first = run(redis_server, market_dir, tmp_path / "a")
    state = store.state()
    again = run(redis_server, market_dir, tmp_path / "b")
    assert store.state() == state
    assert again.replayed == again.accounts == first.accounts and again.trades == first.trades
    assert parquet_trades(tmp_path / "a" / "trades.parquet") == parquet_trades(tmp_path / "b" / "trades.parquet")


def test_a_worker_killed_mid_run_still_yields_every_account_once(
    local_ray, redis_server, redis_client, market_dir, tmp_path
):
    store = LedgerStore(redis_client)
    accounts = load_firm(store, market_dir, accounts=16)
    killed = []

    def kill_one(done, actors):
        if done == 1 and not killed:
            ray.kill(actors[0], no_restart=False)  # Ray restarts it; its shard is re-run
            killed.append(True)

    s = run(redis_server, market_dir, tmp_path / "out", after_shard=kill_one)
    rows = pq.read_table(tmp_path / "out" / "accounts.parquet").to_pylist()
    assert killed and sorted(r["account"] for r in rows) == sorted(accounts)
    assert s.failed == 0
    commits = Counter(
        e["key"] for hh in {store.household_of(a) for a in accounts} for e in store.journal(hh) if e["key"]
    )
    assert set(commits.values()) == {1} and len(commits) == len(accounts)  # no commit twice, none lost
    assert parquet_trades(tmp_path / "out" / "trades.parquet") == normalize(journal_trades(store, s.run_id))
    opened = {x.lot_id for a in accounts for x in store.lots(a)} | {
        s.lot_id for hh in {store.household_of(a) for a in accounts} for s in store.sales(hh)
    }
    buys = [r for r in pq.read_table(tmp_path / "out" / "trades.parquet").to_pylist() if r["side"] == "buy"]
    assert buys and all(r["lot_id"] and r["lot_id"].split(".")[0] in {x.split(".")[0] for x in opened} for r in buys)


def test_a_coordinator_killed_mid_run_is_finished_by_a_rerun(
    local_ray, redis_server, redis_client, market_dir, tmp_path
):
    store = LedgerStore(redis_client)
    accounts = load_firm(store, market_dir, accounts=16)

    class CoordinatorDied(Exception):
        pass

    def die(done, actors):
        if done == 2:
            raise CoordinatorDied

    with pytest.raises(CoordinatorDied):
        run(redis_server, market_dir, tmp_path / "first", after_shard=die)
    s = run(redis_server, market_dir, tmp_path / "out")
    rows = pq.read_table(tmp_path / "out" / "accounts.parquet").to_pylist()
    assert sorted(r["account"] for r in rows) == sorted(accounts) and s.failed == 0
    assert 0 < s.replayed < len(accounts)
    commits = Counter(
        e["key"] for hh in {store.household_of(a) for a in accounts} for e in store.journal(hh) if e["key"]
    )
    assert set(commits.values()) == {1} and len(commits) == len(accounts)


def test_a_corrupted_account_fails_alone_with_its_reason(local_ray, redis_server, redis_client, market_dir, tmp_path):
    store = LedgerStore(redis_client)
    accounts = load_firm(store, market_dir, accounts=8, corrupt="H00001-T")
    s = run(redis_server, market_dir, tmp_path / "out")
    rows = {r["account"]: r for r in pq.read_table(tmp_path / "out" / "accounts.parquet").to_pylist()}
    assert s.failed == 1 and rows["H00001-T"]["status"] == "error" and "ZZZZ" in rows["H00001-T"]["reason"]
    assert all(rows[a]["status"] == "optimal" for a in accounts if a != "H00001-T")


def test_ray_cluster_yaml_passes_rays_own_validation():
    import jsonschema
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    with open("ray-cluster.yaml") as f:
        config = yaml.safe_load(f)
    validate_config(prepare_config(config))  # what `ray up` does before it launches anything
    assert config["head_node_type"] in config["available_node_types"]
    assert any("taxview" in c for c in config["setup_commands"])
    assert any("TAXVIEW_REDIS_URL" in c for c in config["initialization_commands"])
    broken = {**config, "max_workers": "many"}
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))
