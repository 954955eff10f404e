"""How fast is the Redis ledger? (issue 3)

On a private redis-server (AOF, appendfsync everysec): import of the reference firm (2,000 accounts
in about 800 households × 500 names × about 5 lots, from Parquet through ``taxview ledger import``'s
code path) with Redis ``used_memory``; household restriction look-ups; small commits (a loss sale
and a buy in another name) per second from 1 and 2 client processes; and one nightly-size commit
(an account's whole rebalance). All measured in one run.

    python benchmarks/ledger_ops.py [--accounts 2000] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import emit  # benchmarks/ is on sys.path when a script here runs

from ledger.api import AccountInfo
from ledger.connection import LedgerSettings
from ledger.files import read_lots
from ledger.importer import import_lots
from ledger.server import RedisServer
from ledger.store import LedgerStore
from taxview.core.records import Trade

DATE = dt.date(2024, 6, 3)


def firm(accounts: int, seed: int = 7) -> list[AccountInfo]:
    """About 2.5 accounts per household: a taxable account, often a spouse's, sometimes an IRA."""
    rng = np.random.default_rng(seed)
    out, h = [], 0
    while len(out) < accounts:
        members = (
            [("taxable", "T")] + [("taxable", "S")] * int(rng.random() < 0.8) + [("ira", "I")] * int(rng.random() < 0.7)
        )
        for kind, tag in members[: accounts - len(out)]:
            out.append(AccountInfo(f"H{h:05d}{tag}", f"H{h:05d}", kind))
        h += 1
    return out


def lots_table(infos: list[AccountInfo], names: int, lots_per_name: float, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    per_account = names * int(lots_per_name)
    n = len(infos) * per_account
    acct = np.repeat(np.arange(len(infos)), per_account)
    sym = np.tile(np.repeat(np.arange(names), int(lots_per_name)), len(infos))
    account_names = np.array([a.account for a in infos], dtype=object)
    symbols = np.array([f"S{i:03d}" for i in range(names)], dtype=object)
    qty = rng.integers(100, 300, n)
    price = rng.uniform(10, 300, n).round(2)
    days = (np.datetime64("2021-06-01") + rng.integers(0, 1000, n)).astype("datetime64[D]")
    return pa.table(
        {
            "account": pa.array(account_names[acct], pa.string()),
            "lot_id": pa.array(np.char.add("L", np.arange(n).astype(str)), pa.string()),
            "symbol": pa.array(symbols[sym], pa.string()),
            "quantity": pa.array(qty.astype(str), pa.string()),
            "basis_cents": pa.array((qty * price * 100).round().astype(np.int64)),
            "acquired": pa.array(days, pa.date32()),
        }
    )


def small_commits(url: str, accounts: list[str], lots: dict[str, tuple[str, str]], start: int, n: int, out) -> None:
    """``n`` commits: sell one held lot at a loss, buy a different name."""
    store = LedgerSettings(url).open_store()  # a cluster's URL too (benchmarks/cluster_commits.py)
    t0 = time.perf_counter()
    lat = []
    for i in range(start, start + n):
        a = accounts[i % len(accounts)]
        lot_id, symbol = lots[a]
        other = "S499" if symbol != "S499" else "S498"
        t = time.perf_counter()
        store.commit(
            a,
            DATE,
            [
                Trade(symbol, "sell", Decimal(1), Decimal("1.00"), lot_id),
                Trade(other, "buy", Decimal(1), Decimal("50.00")),
            ],
            f"bench:{i}",
        )
        lat.append(time.perf_counter() - t)
    out.put((time.perf_counter() - t0, lat))


def run_commits(url, accounts, lots, procs: int, per_proc: int, offset: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [
        ctx.Process(target=small_commits, args=(url, accounts[k::procs], lots, offset + k * per_proc, per_proc, q))
        for k in range(procs)
    ]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    results = [q.get(timeout=600) for _ in ps]
    for p in ps:
        p.join()
    wall = time.perf_counter() - t0
    lat = [x for _, l in results for x in l]
    busy = max(w for w, _ in results)
    return {
        "processes": procs,
        "commits": procs * per_proc,
        "commits_per_s": round(procs * per_proc / busy, 1),
        "p50_ms": round(statistics.median(lat) * 1e3, 3),
        "p99_ms": round(sorted(lat)[int(0.99 * (len(lat) - 1))] * 1e3, 3),
        "wall_s_with_process_start": round(wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--lots-per-name", type=float, default=5)
    ap.add_argument("--commits", type=int, default=4000, help="small commits per measurement")
    ap.add_argument("--json")
    args = ap.parse_args()

    out: dict = {
        "benchmark": "ledger_ops",
        "accounts": args.accounts,
        "names": args.names,
        "lots_per_name": args.lots_per_name,
        "machine": {"cpus": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as server:
        client = server.client()
        store = LedgerStore(client)
        infos = firm(args.accounts)
        households = sorted({a.household for a in infos})
        table = lots_table(infos, args.names, args.lots_per_name)
        pq.write_table(table, Path(tmp) / "lots.parquet")
        del table
        t0 = time.perf_counter()
        store.add_accounts(infos)
        lots = read_lots(Path(tmp) / "lots.parquet")
        n = import_lots(store, lots)
        import_s = time.perf_counter() - t0
        mem = client.info("memory")
        out["import"] = {
            "lots": n,
            "households": len(households),
            "seconds": round(import_s, 2),
            "lots_per_s": round(n / import_s),
            "used_memory_bytes": mem["used_memory"],
            "used_memory_human": mem["used_memory_human"],
        }
        print(json.dumps(out["import"]), flush=True)

        # one lot per account to sell in the small commits (the first lot of its first name)
        first = {}
        accts = lots.column("account").to_pylist()[:: args.names * int(args.lots_per_name)]
        ids = lots.column("lot_id").to_pylist()[:: args.names * int(args.lots_per_name)]
        syms = lots.column("symbol").to_pylist()[:: args.names * int(args.lots_per_name)]
        for a, i, s in zip(accts, ids, syms):
            first[a] = (i, s)
        del lots
        taxable = [a.account for a in infos if a.account in first]

        per = max(1, args.commits // 2)
        out["commits_small_1proc"] = run_commits(server.url, taxable, first, 1, args.commits, 0)
        print(json.dumps(out["commits_small_1proc"]), flush=True)
        out["commits_small_2proc"] = run_commits(server.url, taxable, first, 2, per, args.commits)
        print(json.dumps(out["commits_small_2proc"]), flush=True)

        # restrictions of every household, one pipelined round trip (windows are populated now)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = store.restrictions_many(households, DATE + dt.timedelta(days=1))
            times.append(time.perf_counter() - t0)
        blocked = sum(len(x.no_buy) for hh in r.values() for x in hh.values())
        out["restrictions_all_households"] = {
            "households": len(households),
            "median_s": round(statistics.median(times), 4),
            "households_per_s": round(len(households) / statistics.median(times)),
            "no_buy_entries": blocked,
        }
        print(json.dumps(out["restrictions_all_households"]), flush=True)

        # one nightly-size commit: an account sells one lot of every name and buys 200 names
        a = infos[0].account
        held = store.lots(a)
        seen, sells = set(), []
        for x in held:
            if x.symbol not in seen:
                seen.add(x.symbol)
                sells.append(Trade(x.symbol, "sell", Decimal(1), Decimal("500.00"), x.lot_id))
        buys = [Trade(f"S{i:03d}", "buy", Decimal(1), Decimal("9.00")) for i in range(200)]
        t0 = time.perf_counter()
        res = store.commit(a, DATE + dt.timedelta(days=60), sells + buys, "bench:nightly")
        out["commit_nightly_size"] = {
            "trades": len(sells) + len(buys),
            "ms": round((time.perf_counter() - t0) * 1e3, 1),
            "sales": len(res.sales),
        }
        print(json.dumps(out["commit_nightly_size"]), flush=True)
        out["used_memory_end_bytes"] = client.info("memory")["used_memory"]
    emit(out, args.json)


if __name__ == "__main__":
    main()
