"""How fast is one account's rebalance? (issue 2)

Reference account: 500 names, 20 factors, about 5 lots per name bought over the past three years
(gains and losses, short and long term). Reports the cold solve (compile included), warm
percentiles over many different accounts on the cached problems, and the same accounts solved by
building a fresh CVXPY problem per pass ("naive") and by CVXPY's own cached re-solve of it
(``warm_start``), all measured in this one run, one thread. The warm solves are timed by stage
(``solve_account``'s stages and CLARABEL's solves inside the passes, wrapped here: the solver's code
is untouched) with the passes per account.

With cvxportfolio installed (``pip install -e .[bench]``; a benchmark-only dependency), the same
accounts' holdings, as weights, are also rebalanced by a cached cvxportfolio
``SinglePeriodOptimization`` on the same universe and risk model (500 names, the snapshot's B, F, D as
a ``FactorModelCovariance``, tracking variance against the benchmark, a linear trading cost,
long-only, fully invested; no lots, no taxes): one policy per solver, each compiled once and re-solved
per account (``values_in_time_recursive``, the path cvxportfolio's own back-test takes), each account
timed right after ours, the order rotating. Without cvxportfolio this part is skipped, said on stderr.

    python benchmarks/solve_latency.py [--accounts 100] [--naive-accounts 100] [--gain-allowance-bps B] [--json FILE]

``--gain-allowance-bps B`` gives every account a net realized-gain allowance of B basis points of
its value (0: no net gain tonight; negative: a net loss to realize); without it, no gain budget.
``--tilts value=0.3,momentum=-0.2`` (issue 15) also solves every account with those style tilts
(the market's synthetic styles, as ``taxview market synth`` writes them) right after its plain
solve, on the same cache: ``tilted_p50_ms`` and the ratio of the medians, ``tilted_vs_plain``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from _common import emit  # benchmarks/ is on sys.path when a script here runs

import solver.solve
from solver.market import synthesize
from solver.problem import CompiledProblem, ProblemCache
from solver.reference import CvxpyCache, FreshCache
from solver.snapshot import Snapshot, snapshot
from solver.solve import solve_account
from solver.styles import of_synthetic
from solver.synthetic import synth_lots
from solver.types import AccountSettings
from taxview.core.mandate import check
from taxview.core.records import Lot

try:  # the cvxportfolio comparison is optional: pip install -e .[bench]
    import cvxportfolio as cvx
    import pandas as pd
except ImportError:
    cvx = None

CASH = "USDOLLAR"  # cvxportfolio's cash account, the last entry of its weights
CVXPORTFOLIO_MISSING = "cvxportfolio is not installed (pip install -e .[bench])"


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 3)


class StageClock:
    """Milliseconds per stage of ``solve_account``: its stages are wrapped where ``solver.solve``
    calls them, and CLARABEL's ``CompiledProblem.solve`` (inside ``run_passes``), while the clock
    is entered; the solver's code is untouched and restored on exit. ``take()``: one account's."""

    STAGES = ("read_account", "account_limits", "run_passes", "round_trades", "report")

    def __init__(self) -> None:
        self.ms = dict.fromkeys((*self.STAGES, "clarabel"), 0.0)
        self._saved: list[tuple[object, str, Callable]] = []

    def _wrap(self, owner: object, name: str, key: str) -> None:
        f, ms = getattr(owner, name), self.ms

        @functools.wraps(f)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                ms[key] += (time.perf_counter() - t0) * 1e3

        self._saved.append((owner, name, f))
        setattr(owner, name, timed)

    def __enter__(self) -> StageClock:
        for stage in self.STAGES:
            self._wrap(solver.solve, stage, stage)
        self._wrap(CompiledProblem, "solve", "clarabel")
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, f in reversed(self._saved):
            setattr(owner, name, f)
        self._saved.clear()

    def take(self) -> dict[str, float]:
        out = dict(self.ms)
        self.ms.update(dict.fromkeys(self.ms, 0.0))
        return out


def dollar_holdings(snap: Snapshot, lots: Sequence[Lot], cash_cents: int) -> pd.Series:
    """An account's holdings in dollars per name, cash last: what a cvxportfolio policy takes."""
    h = np.zeros(len(snap.symbols) + 1)
    for lot in lots:
        i = snap.index[lot.symbol]
        h[i] += float(lot.quantity) * snap.prices[i]
    h[-1] = cash_cents / 100
    return pd.Series(h, index=[*snap.symbols, CASH])


class CvxportfolioPolicy:
    """cvxportfolio's ``SinglePeriodOptimization`` on the snapshot's universe and risk model,
    compiled once and re-solved per account the way its back-test does
    (``initialize_estimator_recursive`` once, ``values_in_time_recursive`` per period).

    Maximize 0·z − λ_te·(w⁺ − w_b)ᵀ(B F Bᵀ + diag D)(w⁺ − w_b) − cost·|z|, long-only, no cash
    (fully invested): our objective without lots and taxes, in the same units (annualized
    variance, λ_te and cost_bps of ``AccountSettings``). ``solver_name``: None for CVXPY's choice."""

    def __init__(self, snap: Snapshot, settings: AccountSettings, solver_name: str | None = None) -> None:
        M, names = snap.model, list(snap.symbols)
        self.universe = pd.Index([*names, CASH])
        self.t = pd.Timestamp(snap.date)
        risk = cvx.FactorModelCovariance(
            F=pd.DataFrame(M.B.T, columns=names), Sigma_F=pd.DataFrame(M.F), d=pd.Series(M.D, index=names)
        )
        objective = (
            cvx.ReturnsForecast(r_hat=pd.Series(0.0, index=names))
            - settings.lambda_te * risk
            - cvx.TransactionCost(a=settings.cost_bps / 1e4, b=None)
        )
        kwargs = {} if solver_name is None else {"solver": solver_name}
        if solver_name == "CLARABEL":
            kwargs["max_threads"] = 1  # one thread, as ours
        self.policy = cvx.SinglePeriodOptimization(
            objective,
            [cvx.LongOnly(applies_to_cash=True), cvx.NoCash()],
            include_cash_return=False,
            benchmark=pd.Series(np.r_[snap.benchmark, 0.0], index=self.universe),
            **kwargs,
        )
        self.policy.initialize_estimator_recursive(universe=self.universe, trading_calendar=pd.DatetimeIndex([self.t]))

    def rebalance(self, h: pd.Series) -> np.ndarray:
        """Post-trade weights (names, then cash) for holdings ``h``, on the compiled problem."""
        value = float(h.sum())
        w = self.policy.values_in_time_recursive(
            t=self.t,
            current_weights=h / value,
            current_portfolio_value=value,
            past_returns=None,
            past_volumes=None,
            current_prices=None,
        )
        self.solver_used = self.policy._problem.solver_stats.solver_name  # the policy keeps no other record
        return w.to_numpy()

    def execute_ms(self, h: pd.Series) -> float:
        """One ``policy.execute`` (cvxportfolio's online entry point): it compiles the problem anew
        on every call, so it is the uncached figure. Leaves the policy compiled again after."""
        t0 = time.perf_counter()
        self.policy.execute(h, None, t=self.t)
        ms = (time.perf_counter() - t0) * 1e3
        self.policy.initialize_estimator_recursive(universe=self.universe, trading_calendar=pd.DatetimeIndex([self.t]))
        return ms


def cvxportfolio_policies(
    snap: Snapshot, settings: AccountSettings, first: pd.Series | None
) -> tuple[dict[str, CvxportfolioPolicy], dict[str, float]]:
    """The compared policies (CVXPY's default solver, and CLARABEL on one thread) and each one's
    cold milliseconds: built and solved once on the holdings ``first`` (CVXPY compiles then);
    none (said on stderr) without cvxportfolio."""
    if cvx is None:
        print(f"solve_latency: {CVXPORTFOLIO_MISSING}; the cvxportfolio comparison is skipped", file=sys.stderr)
        return {}, {}
    policies, cold = {}, {}
    for key, solver_name in (("default", None), ("clarabel", "CLARABEL")):
        t0 = time.perf_counter()
        policies[key] = CvxportfolioPolicy(snap, settings, solver_name)
        policies[key].rebalance(first)
        cold[key] = (time.perf_counter() - t0) * 1e3
    return policies, cold


def stage_figures(stages: list[dict[str, float]], warm: list[float]) -> dict:
    """Each stage's p50 and its share of all warm time; ``clarabel`` is inside ``run_passes``."""
    total = sum(warm)
    return {
        "stages_p50_ms": {k: pct([s[k] for s in stages], 50) for k in stages[0]},
        "stages_share": {k: round(sum(s[k] for s in stages) / total, 3) for k in stages[0]},
        "rounding_share": round(sum(s["round_trades"] for s in stages) / total, 3),
        "solving_share": round(sum(s["run_passes"] for s in stages) / total, 3),
    }


def cvxportfolio_figures(
    policies: dict[str, CvxportfolioPolicy],
    cold: dict[str, float],
    warm: dict[str, list[float]],
    cpu: dict[str, list[float]],
    weights: dict[str, list[np.ndarray]],
    execute: list[float],
    ours: list[float],
    ours_cpu: list[float],
) -> dict:
    """The comparison's figures: ``speedup_vs_cvxportfolio`` against CVXPY's default solver (what a
    user gets), ``speedup_vs_cvxportfolio_clarabel`` against the solver ours uses, one thread."""
    if not policies:
        return {"cvxportfolio": CVXPORTFOLIO_MISSING}
    default = policies["default"]
    gap = [float(np.abs(a - b).max()) for a, b in zip(weights["default"], weights["clarabel"])]
    return {
        "cvxportfolio": {
            "version": cvx.__version__,
            "path": "SinglePeriodOptimization: initialize_estimator_recursive once, values_in_time_recursive each",
            "default_solver": default.solver_used,
            "accounts": len(warm["default"]),
            "cold_ms": {k: round(v, 3) for k, v in cold.items()},
            "execute_ms": pct(execute, 50),
            "default_vs_clarabel_max_weight_diff_p50": float(f"{np.median(gap):.3g}"),
        },
        "cvxportfolio_warm_p50_ms": pct(warm["default"], 50),
        "cvxportfolio_warm_p90_ms": pct(warm["default"], 90),
        "speedup_vs_cvxportfolio": round(float(np.median(warm["default"]) / np.median(ours)), 2),
        "cvxportfolio_clarabel_warm_p50_ms": pct(warm["clarabel"], 50),
        "speedup_vs_cvxportfolio_clarabel": round(float(np.median(warm["clarabel"]) / np.median(ours)), 2),
        "cvxportfolio_warm_cpu_p50_ms": pct(cpu["default"], 50),
        "speedup_vs_cvxportfolio_cpu": round(float(np.median(cpu["default"]) / np.median(ours_cpu)), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--factors", type=int, default=20)
    ap.add_argument("--lots-per-name", type=float, default=5.0)
    ap.add_argument("--accounts", type=int, default=100)
    ap.add_argument("--naive-accounts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gain-allowance-bps", type=float, help="every account's gain allowance, bps of its value")
    ap.add_argument("--tilts", help="also solve each account with these style tilts: value=0.3,momentum=-0.2")
    ap.add_argument("--json", help="write the results here (also printed)")
    args = ap.parse_args()

    market = synthesize(names=args.names, days=1260, factors=args.factors, seed=args.seed)
    t = len(market.dates) - 1
    styles = None
    if args.tilts:
        styles = of_synthetic(market, args.names, 1260, args.factors, args.seed, "2015-01-02")
    tilts = check({"tilts": args.tilts}, "--tilts")["tilts"] if args.tilts else ()
    snap = snapshot(market, str(market.dates[t]), factors=args.factors, styles=styles)
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

    held = [dollar_holdings(snap, *a) for a in accounts] if cvx is not None else []
    policies, cvxp_cold = cvxportfolio_policies(snap, settings, held[0] if held else None)
    cvxp_warm, cvxp_cpu, cvxp_weights = ({k: [] for k in policies} for _ in range(3))

    # wall time, and the process's CPU time beside it (less sensitive to a busy machine's other work)
    warm, warm_cpu, iters, passes, statuses, noted, stages = [], [], [], [], {}, 0, []
    tilted, tilted_statuses = [], {}
    with StageClock() as clock:
        for i, (lots, cash) in enumerate(accounts[1:]):
            runs: list[str | None] = [None, *policies]  # None: ours; the order rotates by account
            for who in runs[i % len(runs) :] + runs[: i % len(runs)]:
                if who is not None:
                    t0, c0 = time.perf_counter(), time.process_time()
                    w = policies[who].rebalance(held[i + 1])
                    cvxp_warm[who].append((time.perf_counter() - t0) * 1e3)
                    cvxp_cpu[who].append((time.process_time() - c0) * 1e3)
                    cvxp_weights[who].append(w)
                    continue
                account_settings = settings_of(lots, cash)
                clock.take()
                t0, c0 = time.perf_counter(), time.process_time()
                r = solve_account(snap, lots, cash, account_settings, cache=cache)
                warm.append((time.perf_counter() - t0) * 1e3)
                warm_cpu.append((time.process_time() - c0) * 1e3)
                stages.append(clock.take())
                iters.append(r.iterations)
                passes.append(r.passes)
                statuses[r.status] = statuses.get(r.status, 0) + 1
                noted += bool(r.notes)
                if tilts:  # the same account with the tilts, right after (not in the stage figures)
                    t0 = time.perf_counter()
                    with_tilts = dataclasses.replace(account_settings, tilts=tilts)
                    rt = solve_account(snap, lots, cash, with_tilts, cache=cache)
                    tilted.append((time.perf_counter() - t0) * 1e3)
                    tilted_statuses[rt.status] = tilted_statuses.get(rt.status, 0) + 1
                    clock.take()
    # cvxportfolio's online entry point (``execute``) compiles anew on each call: a few, for scale
    cvxp_execute = [policies["default"].execute_ms(h) for h in held[1:4]] if policies else []

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
        "warm_cpu_p50_ms": pct(warm_cpu, 50),
        "naive_accounts": len(naive),
        "naive_p50_ms": pct(naive, 50),
        "speedup_vs_naive": round(float(np.median(naive) / np.median(warm)), 2),
        "cvxpy_cached_p50_ms": pct(cvxpy_cached, 50),
        "speedup_vs_cvxpy_cached": round(float(np.median(cvxpy_cached) / np.median(warm)), 2),
        "passes_median": float(np.median(passes)),
        "passes_p50": pct(passes, 50),
        "passes_p90": pct(passes, 90),
        "passes_counts": {str(k): passes.count(k) for k in sorted(set(passes))},
        **stage_figures(stages, warm),
        "iterations_median": float(np.median(iters)),
        **(
            {
                "tilts": dict(tilts),
                "tilted_statuses": tilted_statuses,
                "tilted_p50_ms": pct(tilted, 50),
                "tilted_p90_ms": pct(tilted, 90),
                "tilted_vs_plain": round(float(np.median(tilted) / np.median(warm)), 3),
            }
            if tilts
            else {}
        ),
        "cache": {"hits": cache.hits, "misses": cache.misses, "size": len(cache)},
        **cvxportfolio_figures(policies, cvxp_cold, cvxp_warm, cvxp_cpu, cvxp_weights, cvxp_execute, warm, warm_cpu),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()
