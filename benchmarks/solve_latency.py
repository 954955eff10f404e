"""How fast is one account's rebalance? (issue 2)

Reference account: 500 names, 20 factors, about 5 lots per name bought over the past three years
(gains and losses, short and long term). Reports the cold solve (compile included), warm
percentiles over many different accounts on the cached problems, and the same accounts solved by
building a fresh CVXPY problem per pass ("naive") and by CVXPY's own cached re-solve of it
(``warm_start``), all measured in this one run, one thread.

    python benchmarks/solve_latency.py [--accounts 100] [--naive-accounts 100] [--gain-allowance-bps B] [--json FILE]

``--gain-allowance-bps B`` gives every account a net realized-gain allowance of B basis points of
its value (0: no net gain tonight; negative: a net loss to realize); without it, no gain budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

import numpy as np
from _common import emit  # benchmarks/ is on sys.path when a script here runs

from solver.market import synthesize
from solver.problem import ProblemCache
from solver.reference import CvxpyCache, FreshCache
from solver.snapshot import snapshot
from solver.solve import solve_account
from solver.synthetic import synth_lots
from solver.types import AccountSettings


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--factors", type=int, default=20)
    ap.add_argument("--lots-per-name", type=float, default=5.0)
    ap.add_argument("--accounts", type=int, default=100)
    ap.add_argument("--naive-accounts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gain-allowance-bps", type=float, help="every account's gain allowance, bps of its value")
    ap.add_argument("--json", help="write the results here (also printed)")
    args = ap.parse_args()

    market = synthesize(names=args.names, days=1260, factors=args.factors, seed=args.seed)
    t = len(market.dates) - 1
    snap = snapshot(market, str(market.dates[t]), factors=args.factors)
    rng = np.random.default_rng(args.seed)
    accounts = [
        (
            synth_lots(market, t, rng, value=float(rng.uniform(2e6, 10e6)), lots_per_name=args.lots_per_name),
            int(rng.integers(0, 20_000_00)),
        )
        for _ in range(args.accounts + 1)
    ]
    settings = AccountSettings()

    def settings_of(lots, cash: int) -> AccountSettings:
        if args.gain_allowance_bps is None:
            return settings
        value = sum(float(x.quantity) * snap.prices[snap.index[x.symbol]] for x in lots) + cash / 100
        return dataclasses.replace(settings, gain_allowance_cents=round(value * args.gain_allowance_bps / 100))

    cache = ProblemCache()

    t0 = time.perf_counter()
    first = solve_account(snap, *accounts[0], settings_of(*accounts[0]), cache=cache)
    cold_ms = (time.perf_counter() - t0) * 1e3

    warm, iters, passes, statuses, noted = [], [], [], {}, 0
    for lots, cash in accounts[1:]:
        account_settings = settings_of(lots, cash)
        t0 = time.perf_counter()
        r = solve_account(snap, lots, cash, account_settings, cache=cache)
        warm.append((time.perf_counter() - t0) * 1e3)
        iters.append(r.iterations)
        passes.append(r.passes)
        statuses[r.status] = statuses.get(r.status, 0) + 1
        noted += bool(r.notes)

    def timed(cache_for_account) -> list[float]:
        out = []
        for lots, cash in accounts[1 : 1 + args.naive_accounts]:
            t0 = time.perf_counter()
            solve_account(snap, lots, cash, settings_of(lots, cash), cache=cache_for_account())
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    naive = timed(FreshCache)  # a fresh CVXPY problem per account
    cvxpy_cache = CvxpyCache()
    cvxpy_cached = timed(lambda: cvxpy_cache)[1:]  # CVXPY's own reuse (warm_start), first dropped

    lots_per_account = [len(lots) for lots, _ in accounts]
    out = {
        "benchmark": "solve_latency",
        "names": args.names,
        "factors": args.factors,
        "lots_per_account_median": int(np.median(lots_per_account)),
        "accounts": args.accounts,
        "gain_allowance_bps": args.gain_allowance_bps,
        "statuses": statuses,
        "accounts_with_notes": noted,
        "first_status": first.status,
        "cold_ms": round(cold_ms, 3),
        "warm_p50_ms": pct(warm, 50),
        "warm_p90_ms": pct(warm, 90),
        "warm_p99_ms": pct(warm, 99),
        "naive_accounts": len(naive),
        "naive_p50_ms": pct(naive, 50),
        "speedup_vs_naive": round(float(np.median(naive) / np.median(warm)), 2),
        "cvxpy_cached_p50_ms": pct(cvxpy_cached, 50),
        "speedup_vs_cvxpy_cached": round(float(np.median(cvxpy_cached) / np.median(warm)), 2),
        "passes_median": float(np.median(passes)),
        "iterations_median": float(np.median(iters)),
        "cache": {"hits": cache.hits, "misses": cache.misses, "size": len(cache)},
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()
