"""``taxview rebalance --address`` on a real two-node Ray cluster started on this machine (``ray
start --head`` and ``ray start --address``, one CPU each: ``tests.ray_nodes``): the shards run on
both nodes; a node lost mid-run still leaves every account done exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray

from ledger.store import LedgerStore
from solver.market import read_market
from tests.integration.test_nightly import journal_trades, load_firm, normalize, parquet_trades
from tests.ray_nodes import LocalRayCluster

pytestmark = pytest.mark.ray_cluster
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_nodes():
    """A head and a second node (its own resource ``second_node``), one CPU each; every process
    of both stopped at the end (checked). The tests' shared local Ray is stopped first: the two
    nodes get the machine."""
    ray.shutdown()
    cluster = LocalRayCluster()
    try:
        cluster.start_head(num_cpus=1)
        second = cluster.add_node(num_cpus=1, resources={"second_node": 1})
        yield cluster, second
    finally:
        cluster.stop()
        assert not cluster.leftovers()


def rebalance_cli(
    cluster: LocalRayCluster, redis_url: str, market_dir, out: Path, run_id: str, address: str
) -> subprocess.Popen:
    """``taxview rebalance --address ADDRESS`` as a separate process (a driver of the cluster);
    ``auto`` finds this cluster through its ``RAY_TMPDIR``."""
    date = str(read_market(market_dir).dates[-1])
    args = ["rebalance", "--address", address, "--redis", redis_url, "--date", date, "--market"]
    args += [str(market_dir), "--out", str(out), "--run-id", run_id, "--shard-size", "2", "--factors", "8", "--quiet"]
    code = "import sys; from taxview.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**cluster.env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)


def committed(store: LedgerStore, accounts: list[str], run_id: str) -> int:
    return sum(store.committed(a, f"{run_id}:{a}") is not None for a in accounts)


def check_each_account_once(store: LedgerStore, accounts: list[str], out: Path, run_id: str) -> dict:
    rows = pq.read_table(out / "accounts.parquet").to_pylist()
    assert sorted(r["account"] for r in rows) == sorted(accounts)  # every account, once
    assert all(r["status"] == "optimal" for r in rows), [r["reason"] for r in rows]
    commits = Counter(
        e["key"] for hh in set(store.accounts().values()) for e in store.journal(hh) if e["key"].startswith(run_id)
    )
    assert len(commits) == len(accounts) and set(commits.values()) == {1}  # each booked once
    assert parquet_trades(out / "trades.parquet") == normalize(journal_trades(store, run_id))
    return json.loads((out / "run.json").read_text())


def test_shards_run_on_both_nodes_and_a_lost_node_leaves_every_account_done_once(
    two_nodes, redis_server, redis_client, market_dir, tmp_path
):
    cluster, second = two_nodes
    store = LedgerStore(redis_client)
    accounts = load_firm(store, market_dir, accounts=16)

    proc = rebalance_cli(cluster, redis_server.url, market_dir, tmp_path / "one", "two-nodes", "auto")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    run = check_each_account_once(store, accounts, tmp_path / "one", "two-nodes")
    nodes = {n.removeprefix("node_") for n in cluster.alive_nodes()}
    assert len(nodes) == 2 and set(run["shard_nodes"]) == nodes  # shards ran on both nodes
    rows = pq.read_table(tmp_path / "one" / "accounts.parquet").to_pylist()
    assert {r["node_id"] for r in rows} == nodes

    # again on a fresh ledger, losing the second node once some accounts are booked
    redis_client.flushall()
    store = LedgerStore(redis_client)
    accounts = load_firm(store, market_dir, accounts=16)
    proc = rebalance_cli(cluster, redis_server.url, market_dir, tmp_path / "two", "node-lost", cluster.address)
    deadline = time.monotonic() + 240
    while committed(store, accounts, "node-lost") < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    cluster.kill(second)
    at_kill = committed(store, accounts, "node-lost")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert at_kill < len(accounts)  # lost mid-run
    run = check_each_account_once(store, accounts, tmp_path / "two", "node-lost")
    assert run["shard_retries"] >= 1  # the lost node's shards ran again, on the head
    # the head marks the killed node dead after its health checks time out (slow on a loaded machine)
    deadline = time.monotonic() + 90
    while len(alive := cluster.alive_nodes()) != 1 and time.monotonic() < deadline:
        time.sleep(1)
    assert len(alive) == 1, alive
