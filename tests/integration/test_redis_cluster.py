"""The ledger and the nightly on a real Redis Cluster (three masters, three replicas on loopback:
``tests.redis_cluster``), and a master lost mid-run. The adapter suite runs on the cluster too
(``test_ledger_adapters.py``'s ``cluster`` case)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
from collections import Counter, defaultdict
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from cluster.coordinator import rebalance
from cluster.settings import RunSettings
from cluster.summary import OK_STATUSES
from ledger.connection import LedgerSettings, is_cluster, reach
from ledger.store import LedgerStore
from solver.market import read_market
from taxview.cli import main
from tests.integration.test_nightly import journal_trades, load_firm, normalize, parquet_trades
from tests.redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.redis_cluster


def test_a_cluster_is_found_by_its_scheme_or_by_asking_a_node(redis_cluster, redis_server):
    for url in (redis_cluster.url, redis_cluster.cluster_url):
        client = reach(url)
        assert isinstance(client, RedisCluster) and len(client.get_primaries()) == 3
        client.close()
    assert is_cluster(redis_cluster.url) and not is_cluster(redis_server.url)
    store = LedgerSettings(redis_cluster.url).open_store()
    assert isinstance(store.r, RedisCluster)
    store.r.close()


def test_households_spread_over_the_masters_and_each_keeps_to_one_slot(redis_cluster_client, market_dir):
    store = LedgerStore(redis_cluster_client)
    accounts = load_firm(store, market_dir, accounts=12)
    homes = store.accounts()
    assert sorted(homes) == sorted(accounts)
    by_node = defaultdict(set)
    for hh in set(homes.values()):
        keys = [k.decode() for k in store.r.scan_iter(match=f"*{{hh:{hh}}}*")]
        assert len(keys) >= 4 and len({key_slot(k.encode()) for k in keys}) == 1, keys
        by_node[store.r.get_node_from_key(keys[0]).name].add(hh)
    assert len(by_node) >= 2  # more than one master holds households


def test_a_write_no_replica_confirmed_fails_and_its_retry_replays_it(redis_cluster, redis_cluster_client):
    from ledger.api import AccountInfo
    from ledger.errors import LedgerUnavailable
    from taxview.core.records import Trade

    store = LedgerStore(redis_cluster_client, replica_wait_ms=300)
    store.add_accounts([AccountInfo("A", "H1", "taxable", cash_cents=1_000_000)])
    master = store.r.get_node_from_key(store.k.meta("H1")).port
    replica = next(p for p, (role, of) in redis_cluster.roles().items() if role == "slave" and of == master)
    node = next(n for n in redis_cluster.nodes if n.port == replica)
    buy = [Trade("XYZ", "buy", Decimal(10), Decimal("12.50"))]
    os.kill(node.proc.pid, signal.SIGSTOP)  # the replica stops copying
    try:
        with pytest.raises(LedgerUnavailable, match="not confirmed by a replica"):
            store.commit("A", dt.date(2024, 3, 1), buy, "run:A")
        with pytest.raises(LedgerUnavailable, match="not confirmed by a replica"):  # nor its replay
            store.commit("A", dt.date(2024, 3, 1), buy, "run:A")
    finally:
        os.kill(node.proc.pid, signal.SIGCONT)
    again = store.commit("A", dt.date(2024, 3, 1), buy, "run:A")  # the write stood: the retry replays it
    assert again.replayed and [x.quantity for x in store.lots("A")] == [Decimal(10)]


def test_the_ledger_commands_run_unchanged_on_a_cluster(redis_cluster, redis_cluster_client, tmp_path, capsys):
    (tmp_path / "a.csv").write_text("account,household,account_type,cash\nA,H1,taxable,1000.50\nB,H2,taxable,0\n")
    (tmp_path / "l.csv").write_text(
        "account,lot_id,symbol,quantity,basis,acquired\nA,a1,XYZ,100,1000.00,2023-01-03\nB,b1,XYZ,10,50.00,2023-01-03\n"
    )
    url = ["--redis", redis_cluster.url]
    assert (
        main(["ledger", "import", "--accounts", str(tmp_path / "a.csv"), "--lots", str(tmp_path / "l.csv"), *url]) == 0
    )
    assert main(["ledger", "split", "XYZ", "2", "--date", "2024-01-02", *url]) == 0
    assert main(["ledger", "close-year", "2023", "--actor", "test", *url]) == 0
    assert main(["cash", "A", "500", "--date", "2024-01-03", "--reason", "deposit", "--actor", "test", *url]) == 0
    assert main(["accounts", "set", "B", "te_max=0.02", "--actor", "test", *url]) == 0
    capsys.readouterr()
    assert main(["ledger", "show", "--account", "A", "--json", *url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(x["lot_id"], x["quantity"], x["basis"]) for x in shown["lots"]] == [("a1", "200", "1000.00")]
    assert main(["ledger", "export", "--out", str(tmp_path / "exp"), *url]) == 0
    lots = pq.read_table(tmp_path / "exp" / "lots.parquet").to_pylist()
    assert sorted((x["lot_id"], x["quantity"]) for x in lots) == [("a1", "200"), ("b1", "20")]
    assert main(["ledger", "show", "--account", "NOPE", *url]) == 2


def _run(url: str, market_dir, out, after_shard=None, **kw):
    m = read_market(market_dir)
    run = RunSettings(str(m.dates[-1]), market_dir, out, workers=2, quiet=True, factors=8, **kw)
    return rebalance(run, LedgerSettings(url, retry_s=30.0), after_shard=after_shard)


def test_a_nightly_on_a_cluster_books_every_account_once(
    local_ray, redis_cluster, redis_cluster_client, market_dir, tmp_path
):
    store = LedgerStore(redis_cluster_client)
    accounts = load_firm(store, market_dir, accounts=10)
    s = _run(redis_cluster.url, market_dir, tmp_path / "out", shard_size=4)
    rows = pq.read_table(tmp_path / "out" / "accounts.parquet").to_pylist()
    assert sorted(r["account"] for r in rows) == sorted(accounts)
    assert s.failed == 0 and s.trades > 0, [r["reason"] for r in rows]
    assert parquet_trades(tmp_path / "out" / "trades.parquet") == normalize(journal_trades(store, s.run_id))
    assert s.redis_used_memory_bytes > 0  # the sum over the masters
    again = _run(redis_cluster.url, market_dir, tmp_path / "again", shard_size=4)
    assert again.replayed == len(accounts) and again.trades == s.trades


def _shares(lots) -> Counter:
    out = Counter()
    for x in lots:
        out[x.symbol] += x.quantity
    return out


def test_a_master_killed_mid_run_loses_no_acknowledged_commit(local_ray, market_dir, tmp_path):
    with LocalRedisCluster() as cluster:
        store = LedgerStore(reach(cluster.url))
        accounts = load_firm(store, market_dir, accounts=24)
        before = {a: _shares(store.lots(a)) for a in accounts}
        homes = {hh: store.r.get_node_from_key(store.k.meta(hh)).port for hh in set(store.accounts().values())}
        victim, replica = cluster.master_with_replica(prefer=Counter(homes.values()))
        assert victim.port in homes.values()  # it holds households still to run
        killed = []

        def kill_a_master(done, actors):
            if done == 1 and not killed:
                cluster.kill(victim)  # a crash, while the other shards are in flight
                killed.append(victim.port)

        s = _run(cluster.cluster_url, market_dir, tmp_path / "out", after_shard=kill_a_master, shard_size=2)
        cluster.wait_promoted(replica)
        assert killed
        rows = pq.read_table(tmp_path / "out" / "accounts.parquet").to_pylist()
        assert sorted(r["account"] for r in rows) == sorted(accounts)  # the run finished: every account, once
        failed = [r for r in rows if r["status"] not in OK_STATUSES]
        assert all(r["reason"] for r in failed)  # a failed account says why
        assert s.ok + s.failed == len(accounts)

        after = LedgerStore(reach(cluster.url))  # a fresh client: the slot map after the failover
        commits = Counter()
        booked: dict[str, Counter] = {a: Counter() for a in accounts}
        for hh in set(after.accounts().values()):
            for e in after.journal(hh):
                if e["key"].startswith(s.run_id + ":"):
                    commits[e["key"]] += 1
                    for t in e["entry"]["trades"]:
                        sign = 1 if t["side"] == "buy" else -1
                        booked[e["account"]][t["symbol"]] += sign * Decimal(t["quantity"])
        assert set(commits.values()) <= {1}  # no commit twice
        for r in rows:
            if r["status"] in OK_STATUSES:  # acknowledged: in the ledger
                assert after.committed(r["account"], f"{s.run_id}:{r['account']}") is not None, r["account"]
        # every share the ledger holds is the opening lots plus the commits its journal has, once
        for a in accounts:
            expected = before[a] + Counter()
            for symbol, q in booked[a].items():
                expected[symbol] += q
            assert +_shares(after.lots(a)) == +expected, a
        acknowledged = parquet_trades(tmp_path / "out" / "trades.parquet")
        assert acknowledged <= normalize(journal_trades(after, s.run_id))  # every trade reported is booked
        after.r.close()
        store.r.close()


def test_compaction_on_a_cluster_archives_and_trims_as_on_one_server(redis_cluster_client, tmp_path):
    """Retention (ledger/compaction.py) on the cluster: the same known cut as on one redis-server
    (test_ledger_retention.py), every write replicated, nothing lost with the archive."""
    from ledger import archive as arc
    from tests.integration.test_ledger_retention import history

    store = LedgerStore(redis_cluster_client)
    history(store)
    before = store.state()
    report = store.compact(dt.date(2024, 4, 15), tmp_path / "archive")
    assert report.archived == {"journal": 9, "idempotency": 7, "sale": 3} == report.trimmed
    assert [e["key"] for e in store.journal("H")] == ["k8"]
    assert store.committed("A", "k7") is None and store.committed("A", "k8") is not None
    assert store.state(tmp_path / "archive") == before
    assert len(arc.files(tmp_path / "archive")) == 1
    again = store.compact(dt.date(2024, 4, 15), tmp_path / "archive")
    assert again.file is None and sum(again.archived.values()) == 0
