"""What does a Redis Cluster cost a commit? (issue 16: the acknowledged writes of
``ledger/replicated.py``)

The same small commits (``ledger_ops.small_commits``: a loss sale and a buy of another name, each
its own household's commit script) from 1 and 2 client processes against, in one run: one
redis-server; a Redis Cluster of three masters without replicas (the scripts as they are); and
three masters each with a replica, where every write script is followed by ``WAIT 1`` so that a
returned commit survives its master's loss. All from Debian's ``redis-server`` on loopback (the
cluster is the test suite's ``tests/redis_cluster.py``). Reports commits/s, p50 and p99 per setup
and the ratios to the single server.

    python benchmarks/cluster_commits.py [--accounts 300] [--commits 2000] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from _common import emit  # benchmarks/ is on sys.path when a script here runs
from ledger_ops import firm, lots_table, run_commits

from ledger.connection import LedgerSettings
from ledger.files import read_lots
from ledger.importer import import_lots
from ledger.server import RedisServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests/redis_cluster.py
from tests.redis_cluster import LocalRedisCluster  # noqa: E402


def measure(url: str, accounts: int, names: int, commits: int, tmp: Path) -> dict:
    store = LedgerSettings(url).open_store()
    infos = firm(accounts)
    store.add_accounts(infos)
    pq.write_table(lots_table(infos, names, 1), tmp / "lots.parquet")
    lots = read_lots(tmp / "lots.parquet")  # as `taxview ledger import` reads a file
    import_lots(store, lots)
    first = {}
    for a, i, s in zip(
        lots.column("account").to_pylist()[::names],
        lots.column("lot_id").to_pylist()[::names],
        lots.column("symbol").to_pylist()[::names],
    ):
        first[a] = (i, s)
    taxable = [a.account for a in infos if a.account in first]
    one = run_commits(url, taxable, first, 1, commits, 0)
    two = run_commits(url, taxable, first, 2, commits // 2, commits)
    print(f"{url.split('@')[-1]}: {one['commits_per_s']} / {two['commits_per_s']} commits/s", flush=True)
    return {"one_process": one, "two_processes": two}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=300)
    ap.add_argument("--names", type=int, default=20)
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--json")
    args = ap.parse_args()
    out: dict = {
        "benchmark": "cluster_commits",
        "date": dt.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "accounts": args.accounts,
        "commits": args.commits,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work, n = Path(tmp), (args.accounts, args.names, args.commits)
        with RedisServer(work / "redis") as server:
            out["single_server"] = measure(server.url, *n, work)
        with LocalRedisCluster(masters=3, replicas=0) as cluster:
            out["cluster_no_replicas"] = measure(cluster.url, *n, work)
        with LocalRedisCluster(masters=3, replicas=1) as cluster:
            out["cluster_wait_1"] = measure(cluster.url, *n, work)
    base = out["single_server"]
    out["ratios_to_single_server"] = {
        setup: {
            procs: {
                "commits_per_s": round(out[setup][procs]["commits_per_s"] / base[procs]["commits_per_s"], 3),
                "p50": round(out[setup][procs]["p50_ms"] / base[procs]["p50_ms"], 3),
            }
            for procs in ("one_process", "two_processes")
        }
        for setup in ("cluster_no_replicas", "cluster_wait_1")
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()
