"""How fast is the nightly rebalance? (issue 4)

The reference firm (domain.md §8: 2,000 accounts in about 800 households, 500 names, 20 factors,
about 5 lots per name) is loaded into a private redis-server and rebalanced on a local Ray with
each worker count in turn (a fresh ledger each time), all in one run. Reports wall time and
accounts/s per worker count, scaling efficiency, the time per stage and the coordinator's own
share of the wall time.

    python benchmarks/nightly.py [--accounts 2000] [--workers 1,2] [--nights 1] [--json FILE]

With ``--nights N`` each worker count runs N consecutive nights on the same ledger (the first is
the firm's day, as with one night); each night's accounts/s, orders per account (p50, p90) and
Redis memory are reported under ``nights``.

``trade_lists`` (``--quality-accounts K``, default 100): K accounts of the firm's first night solved
in process with the default trade-list rules (a name traded by at least the minimum or not at all)
and without them; ``tax_benefit_vs_unconstrained`` is the taxable accounts' tax benefit with the
rules over without, beside the TE and orders per account of each.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _common import emit  # benchmarks/ is on sys.path when a script here runs

from cluster.coordinator import rebalance
from cluster.settings import RunSettings
from ledger.connection import LedgerSettings
from ledger.importer import import_lots
from ledger.server import RedisServer
from ledger.store import LedgerStore
from solver.market import synthesize, write_market
from taxview.demo import synth_firm


def unconstrained_gap(market, t: int, infos, lots, k: int, factors: int) -> dict:
    """The first night's trade-list rules (a name traded by at least the minimum or not at all,
    ``max_names_traded``) against the same accounts solved without them: ``k`` accounts of the
    firm (evenly spaced), in process, no household windows (the firm's first night has none)."""
    import datetime as dt
    from decimal import Decimal

    import numpy as np

    from solver.problem import ProblemCache
    from solver.snapshot import snapshot
    from solver.solve import solve_account
    from solver.types import AccountSettings
    from taxview.core.records import Lot

    snap = snapshot(market, str(market.dates[t]), factors=factors)
    cols = lots.to_pydict()
    by_account: dict[str, list[Lot]] = {}
    for a, lid, sym, q, basis, acq in zip(
        cols["account"], cols["lot_id"], cols["symbol"], cols["quantity"], cols["basis_cents"], cols["acquired"]
    ):
        by_account.setdefault(a, []).append(Lot(lid, sym, Decimal(q), basis, dt.date.fromordinal(acq)))
    step = max(len(infos) // k, 1)
    sample = infos[::step][:k]
    rules = AccountSettings()
    free = dict(min_trade_dollars=0.0, min_trade_weight=0.0, max_names_traded=None)
    cache, rows = ProblemCache(), []
    for info in sample:
        base = dict(account_id=info.account, account_type=info.account_type, st_rate=info.st_rate, lt_rate=info.lt_rate)
        got = [
            solve_account(snap, by_account[info.account], info.cash_cents, AccountSettings(**base, **kw), cache=cache)
            for kw in ({}, free)
        ]
        rows.append(
            {
                "taxable": info.account_type != "ira",
                "benefit": [-r.tax_estimate_cents for r in got],
                "te": [r.te_ex_ante for r in got],
                "orders": [len({(x.symbol, x.side) for x in r.trades}) for r in got],
                "ok": all(r.ok for r in got),
            }
        )
    taxable = [r for r in rows if r["taxable"] and r["ok"]]
    with_rules, without = (sum(r["benefit"][i] for r in taxable) for i in (0, 1))
    return {
        "accounts": len(rows),
        "min_trade_dollars": rules.min_trade_dollars,
        "min_trade_weight": rules.min_trade_weight,
        "max_names_traded": rules.max_names_traded,
        "tax_benefit_cents": with_rules,
        "tax_benefit_unconstrained_cents": without,
        "tax_benefit_vs_unconstrained": round(with_rules / without, 3) if without else None,
        "te_median": round(float(np.median([r["te"][0] for r in rows])), 5),
        "te_median_unconstrained": round(float(np.median([r["te"][1] for r in rows])), 5),
        "orders_per_account_p50": float(np.median([r["orders"][0] for r in rows])),
        "orders_per_account_p50_unconstrained": float(np.median([r["orders"][1] for r in rows])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--factors", type=int, default=20)
    ap.add_argument("--shard-size", type=int, default=8)
    ap.add_argument("--nights", type=int, default=1)
    ap.add_argument("--quality-accounts", type=int, default=100, help="accounts solved with and without the minimums")
    ap.add_argument("--json")
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]

    out = {
        "benchmark": "nightly",
        "accounts": args.accounts,
        "names": args.names,
        "factors": args.factors,
        "machine": {"cpus": os.cpu_count()},
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        market = synthesize(names=args.names, days=1260 + args.nights - 1, factors=args.factors, seed=7)
        write_market(market, tmp / "market")
        t = 1260 - 1  # the firm's day; further nights follow it
        infos, lots = synth_firm(market, t, args.accounts, seed=7)
        out["firm"] = {
            "accounts": len(infos),
            "households": len({a.household for a in infos}),
            "lots": lots.num_rows,
            "build_s": round(time.perf_counter() - t0, 1),
        }
        print(json.dumps(out["firm"]), flush=True)
        if args.quality_accounts:
            out["trade_lists"] = unconstrained_gap(market, t, infos, lots, args.quality_accounts, args.factors)
            out["tax_benefit_vs_unconstrained"] = out["trade_lists"]["tax_benefit_vs_unconstrained"]
            print(json.dumps(out["trade_lists"]), flush=True)
        for w in counts:
            with RedisServer(tmp / f"redis-{w}") as server:
                store = LedgerStore(server.client())
                t0 = time.perf_counter()
                store.add_accounts(infos)
                import_lots(store, lots)
                import_s = time.perf_counter() - t0
                cpu0 = server.client().info("cpu")
                nights = []
                for k in range(args.nights):
                    run = RunSettings(
                        str(market.dates[t + k]),
                        tmp / "market",
                        tmp / f"out-{w}-{k}",
                        workers=w,
                        quiet=True,
                        shard_size=args.shard_size,
                        factors=args.factors,
                    )
                    night = rebalance(run, LedgerSettings(server.url))
                    if k == 0:
                        s, cpu1 = night, server.client().info("cpu")  # the first night: as with one
                    nights.append(
                        {
                            "date": night.date,
                            "accounts_per_s": night.accounts_per_s,
                            "ok": night.ok,
                            "failed": night.failed,
                            "trades": night.trades,
                            "orders": night.orders,
                            "orders_per_account_p50": night.orders_per_account_p50,
                            "orders_per_account_p90": night.orders_per_account_p90,
                            "redis_used_memory_bytes": night.redis_used_memory_bytes,
                        }
                    )
                    print(json.dumps({"workers": w, **nights[-1]}), flush=True)
                redis_cpu = sum(cpu1[k] - cpu0[k] for k in ("used_cpu_user", "used_cpu_sys"))
                redis_mem = server.client().info("memory")["used_memory"]
            reb = s.stages["rebalance_s"]
            run = {
                "workers": w,
                "accounts": s.accounts,
                "ok": s.ok,
                "failed": s.failed,
                "trades": s.trades,
                "wall_s": s.wall_s,
                "rebalance_s": reb,
                "accounts_per_s": s.accounts_per_s,
                "per_worker_accounts_per_s": round(s.accounts_per_s / w, 2),
                "coordinator_overhead_pct": round(100 * s.stages["coordinator_busy_s"] / reb, 2),
                "stages": s.stages,
                "worker_stage_totals_s": s.worker_stages,
                "worker_ms_per_account": {
                    k.removesuffix("_s"): round(1e3 * v / s.accounts, 2) for k, v in s.worker_stages.items()
                },
                "ledger_import_s": round(import_s, 1),
                "redis_cpu_ms_per_account": round(1e3 * redis_cpu / s.accounts, 2),
                "redis_used_memory_bytes": redis_mem,
                "nights": nights,
            }
            out["runs"].append(run)
            print(json.dumps(run), flush=True)
    by = {r["workers"]: r for r in out["runs"]}
    most = by[max(by)]
    out["accounts_per_s"] = most["accounts_per_s"]  # at the most workers
    out["orders_per_account_p50"] = most["nights"][0]["orders_per_account_p50"]  # the first night
    if 1 in by and len(by) > 1:
        out["scaling_efficiency"] = {
            str(w): round(by[w]["accounts_per_s"] / (w * by[1]["accounts_per_s"]), 3) for w in by if w != 1
        }
    emit(out, args.json)


if __name__ == "__main__":
    main()
