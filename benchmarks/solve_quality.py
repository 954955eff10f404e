"""How much does the buy-or-sell side choice leave behind? (issue 12 §1)

Held-out random taxable accounts on a small universe (default 50 names, 5 factors: small enough
for the mixed-integer reference): lots bought over three years (gains and losses, short and long
term) valued on a random day of the last 1½ years, some names restricted by household wash-sale
windows (no buy / no loss sale), some symbols excluded, TE budgets from tight (0.4%) to loose (3%),
some gain allowances (negative ones too), a few λ_te other than the default.

    python benchmarks/solve_quality.py [--accounts 40] [--seed 2026] [--latency-accounts 40] [--json FILE]

``gap_to_wash_safe_optimum_bps``: the passes' objective at their continuous solution (before
rounding) minus the wash-safe optimum (``solver.reference_mip``: SCIP, a binary side per name,
the TE budget a constraint), both ``OBJ_SCALE·TE² + qᵀx``, converted to basis points of account
value: the difference in λ_te·TE² + λ_tax·tax + cost, in dollars, per dollar of the account (×1e4).
Accounts where the passes gave way (cash above cash_max, a gain target given up) or did not solve
are counted and left out.

``before``: today's rule (the plain relaxation, ``loss_sold >= bought``): ``REBUY_CHARGE = 0`` and
``MAX_FLIPS = 0`` in ``solver.passes`` give exactly that path (checked: the same x as the code before
it, to the bit). ``after``: the module as it is (the charged relaxation); ``after_with_N_flips``:
with its one-flip search on as well (``MAX_FLIPS = N``, ``--flips``; bounded by ``FLIP_SLOTS``).
All on the same accounts in one run. The warm
solve times are on the 500-name reference account of ``benchmarks/solve_latency.py`` (one thread),
before and after interleaved account by account.
Needs the ``reference`` extra (pyscipopt).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from contextlib import contextmanager

import numpy as np
from _common import emit  # benchmarks/ is on sys.path when a script here runs

from solver import passes
from solver.account import read_account
from solver.limits import account_limits
from solver.market import synthesize
from solver.problem import EPS_W, ProblemCache
from solver.reference_mip import bps, objective, wash_safe_optimum
from solver.slots import MAX_SLOTS
from solver.snapshot import snapshot
from solver.solve import solve_account
from solver.synthetic import synth_lots
from solver.types import AccountSettings
from taxview.core.records import Restrictions


@contextmanager
def with_flips(count: int):
    """``solver.passes`` with its one-flip search on (``MAX_FLIPS = count``; off by default)."""
    kept = passes.MAX_FLIPS
    passes.MAX_FLIPS = count
    try:
        yield
    finally:
        passes.MAX_FLIPS = kept


@contextmanager
def today_rule():
    """``solver.passes`` as it was before issue 12: the plain relaxation and ``loss_sold >= bought``."""
    kept = passes.REBUY_CHARGE, passes.MAX_FLIPS
    passes.REBUY_CHARGE, passes.MAX_FLIPS = 0.0, 0
    try:
        yield
    finally:
        passes.REBUY_CHARGE, passes.MAX_FLIPS = kept


def accounts(names: int, factors: int, count: int, seed: int) -> list[tuple]:
    """(snapshot, lots, cash cents, settings, restrictions) of ``count`` random taxable accounts."""
    market = synthesize(names=names, days=1260, factors=factors, seed=seed)
    rng = np.random.default_rng(seed)
    snaps: dict[int, object] = {}
    out = []
    for k in range(count):
        t = int(rng.integers(900, 1260))
        if t not in snaps:
            snaps[t] = snapshot(market, str(market.dates[t]), factors=factors)
        snap = snaps[t]
        lots = synth_lots(market, t, rng, value=float(rng.uniform(5e5, 5e6)), lots_per_name=float(rng.uniform(2, 5)))
        symbols = snap.symbols
        restrictions = Restrictions(
            no_buy=frozenset(s for s in symbols if rng.random() < 0.05),
            no_loss_sale=frozenset(s for s in symbols if rng.random() < 0.05),
        )
        settings = AccountSettings(account_id=f"Q{k}", te_max=float(rng.choice([0.004, 0.008, 0.015, 0.03])))
        if rng.random() < 0.3:
            small = [s for s, w in zip(symbols, snap.benchmark) if w < np.median(snap.benchmark)]
            settings = dataclasses.replace(settings, exclude_symbols=frozenset(rng.choice(small, 2, replace=False)))
        if rng.random() < 0.2:
            settings = dataclasses.replace(settings, lambda_te=float(rng.choice([10.0, 200.0])))
        cash = int(rng.integers(0, 300_000)) * 100
        if rng.random() < 0.25:
            value = sum(float(x.quantity) * snap.prices[snap.index[x.symbol]] for x in lots) + cash / 100
            allowance = round(value * rng.uniform(-0.01, 0.01) * 100)
            settings = dataclasses.replace(settings, gain_allowance_cents=allowance)
        out.append((snap, lots, cash, settings, restrictions))
    return out


def washes(account, x: np.ndarray) -> int:
    """Names the solution both buys and sells at a loss (must be 0)."""
    la, n, L = account.lot_slots, account.n, account.lot_slots.L
    loss_sold = np.bincount(la.name, weights=x[la.slot] * la.loss, minlength=n) > EPS_W * L
    return int((loss_sold & (x[n * L : n * L + n] > EPS_W)).sum())


def stats(xs: list[float]) -> dict:
    a = np.asarray(xs)
    return {
        "median": round(float(np.median(a)), 3),
        "p90": round(float(np.percentile(a, 90)), 3),
        "max": round(float(a.max()), 3),
        "mean": round(float(a.mean()), 3),
    }


def quality(args) -> dict:
    cache = ProblemCache()
    tags = ("before", "after", f"after_with_{args.flips}_flips")
    gaps: dict[str, list[float]] = {tag: [] for tag in tags}
    passes_used: dict[str, list[int]] = {tag: [] for tag in tags}
    skipped = {"no_loss_to_harvest": 0, "gave_way_or_failed": 0, "mip_not_optimal": 0}
    wash, mip_seconds, rows = 0, [], []
    for snap, lots, cash, settings, restrictions in accounts(args.names, args.factors, args.accounts, args.seed):
        account = read_account(snap, lots, cash, settings, MAX_SLOTS)
        limits = account_limits(account, restrictions)
        if not (account.lot_slots.loss & limits.sellable).any():
            skipped["no_loss_to_harvest"] += 1
            continue
        with today_rule():
            before = passes.run_passes(account, limits, cache)
        after = passes.run_passes(account, limits, cache)
        with with_flips(args.flips):
            flipped = passes.run_passes(account, limits, cache)
        if any(not sol.status.ok or sol.notes for sol in (before, after, flipped)):
            skipped["gave_way_or_failed"] += 1
            continue
        mip = wash_safe_optimum(account, limits, time_limit=args.mip_time_limit)
        if not mip.solved:
            skipped["mip_not_optimal"] += 1
            continue
        mip_seconds.append(mip.seconds)
        row = {"account": settings.account_id}
        for tag, sol in zip(tags, (before, after, flipped)):
            gap = bps(account, objective(account, limits, sol.x) - mip.objective)
            gaps[tag].append(gap)
            passes_used[tag].append(sol.passes)
            wash += washes(account, sol.x)
            row[tag] = round(gap, 3)
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    return {
        "accounts_compared": len(gaps["after"]),
        "skipped": skipped,
        "gap_to_wash_safe_optimum_bps": {tag: stats(v) for tag, v in gaps.items()},
        "after_not_worse_than_before": int(sum(a <= b + 0.01 for a, b in zip(gaps["after"], gaps["before"]))),
        "passes_median": {tag: float(np.median(v)) for tag, v in passes_used.items()},
        "wash_sales_in_solutions": wash,
        "mip_seconds_median": round(float(np.median(mip_seconds)), 2),
        "per_account": rows,
    }


def latency(args) -> dict:
    """Warm ``solve_account`` ms, before and after on the same accounts, interleaved."""
    market = synthesize(names=args.latency_names, days=1260, factors=20, seed=7)
    t = len(market.dates) - 1
    snap = snapshot(market, str(market.dates[t]), factors=20)
    rng = np.random.default_rng(args.seed)
    cache = ProblemCache()
    settings = AccountSettings()
    times: dict[str, list[float]] = {"before": [], "after": []}
    solves: dict[str, list[int]] = {"before": [], "after": []}
    for k in range(args.latency_accounts + 1):
        lots = synth_lots(market, t, rng, value=float(rng.uniform(2e6, 10e6)))
        cash = int(rng.integers(0, 20_000_00))
        order = ("before", "after") if k % 2 else ("after", "before")
        for tag in order:
            with today_rule() if tag == "before" else _nothing():
                t0 = time.perf_counter()
                r = solve_account(snap, lots, cash, settings, cache=cache)
                ms = (time.perf_counter() - t0) * 1e3
            if k:  # the first account compiles
                times[tag].append(ms)
                solves[tag].append(r.passes)
    return {
        "latency_names": args.latency_names,
        "latency_accounts": args.latency_accounts,
        "warm_solve_ms": {
            tag: {"p50": round(float(np.median(v)), 3), "p90": round(float(np.percentile(v, 90)), 3)}
            for tag, v in times.items()
        },
        "latency_passes_median": {tag: float(np.median(v)) for tag, v in solves.items()},
        "latency_passes_max": {tag: int(max(v)) for tag, v in solves.items()},
    }


@contextmanager
def _nothing():
    yield


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=50)
    ap.add_argument("--factors", type=int, default=5)
    ap.add_argument("--accounts", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2026, help="held out: the rules were tuned on other seeds")
    ap.add_argument("--flips", type=int, default=8, help="MAX_FLIPS of the third variant (the one-flip search on)")
    ap.add_argument("--mip-time-limit", type=float, default=300.0)
    ap.add_argument("--latency-names", type=int, default=500)
    ap.add_argument("--latency-accounts", type=int, default=40)
    ap.add_argument("--json", help="write the results here (also printed)")
    args = ap.parse_args()
    out = {
        "benchmark": "solve_quality",
        "names": args.names,
        "factors": args.factors,
        "seed": args.seed,
        "rebuy_charge": passes.REBUY_CHARGE,
        "max_flips": passes.MAX_FLIPS,
        "flip_slots": passes.FLIP_SLOTS,
    }
    if args.accounts > 0:
        out |= quality(args)
    if args.latency_accounts > 0:
        out |= latency(args)
    out["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()}
    emit(out, args.json)


if __name__ == "__main__":
    main()
