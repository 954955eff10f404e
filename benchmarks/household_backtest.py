"""A couple over ten years: does rebalancing the household together keep more tax than solving its
accounts in turn? (issue 13)

    python benchmarks/household_backtest.py [--couples 2] [--years 10] [--names 300] [--factors 15]
                                            [--schedule monthly|weekly] [--json FILE]

Each couple: two taxable accounts (``-S``, ``-T``) and an IRA (``-I``), holding legacy lots bought
over the three years before the start (about 5 per name, some at a loss, some bought within the
last 30 days, as the demo firm's), rebalanced on the same days of a synthetic market (risk model
re-estimated every 21 trading days from trailing returns), on a ``MemoryLedger``, four ways:
``alone`` (each account its own household: no household rule; the issue's upper bound),
``alphabetical`` and ``taxable_first`` (``cluster.step.rebalance_account`` per account in that
order) and ``household`` (``cluster.step.rebalance_household``, the nightly's step). Tax saving:
the tax on the taxable accounts' recognized gains at their rates, negated, summed over the years
(no netting cap: outside gains absorb the losses). Harvesting defers tax: ``embedded_gain`` is
what the taxable accounts would realize if sold at the end. Deterministic but for the timings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from dataclasses import replace

import numpy as np
from _common import emit  # benchmarks/ is on sys.path when a script here runs

from cluster.step import rebalance_account, rebalance_household
from ledger.api import AccountInfo
from ledger.memory import MemoryLedger
from solver.market import synthesize
from solver.problem import ProblemCache
from solver.riskmodel import estimate
from solver.snapshot import Snapshot
from solver.synthetic import synth_lots
from solver.types import AccountSettings
from taxview.core.money import cents_at

WAYS = ("alone", "alphabetical", "taxable_first", "household")
HISTORY = 756  # trading days of legacy lots before the start


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def couples(market, t0: int, k: int, seed: int) -> list[tuple[list[AccountInfo], dict[str, list]]]:
    """``k`` couples: (their accounts, each account's legacy lots)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(k):
        hh = f"C{c:02d}"
        infos, lots = [], {}
        for tag, kind in (("I", "ira"), ("S", "taxable"), ("T", "taxable")):
            value = float(np.exp(rng.uniform(np.log(3e5), np.log(3e6))))
            account = f"{hh}-{tag}"
            infos.append(AccountInfo(account, hh, kind, 0.408, 0.238, int(rng.uniform(0.001, 0.01) * value * 100)))
            lots[account] = synth_lots(market, t0, rng, value=value, history_days=HISTORY, prefix=f"{account}:")
        out.append((infos, lots))
    return out


def days_of(market, t0: int, t1: int, schedule: str) -> list[int]:
    """The rebalance days: the first trading day of each month (or ISO week) in [t0, t1]."""
    out, last = [], None
    for t in range(t0, t1 + 1):
        d = dt.date.fromisoformat(str(market.dates[t]))
        period = d.isocalendar()[:2] if schedule == "weekly" else (d.year, d.month)
        if period != last:
            out.append(t)
            last = period
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--couples", type=int, default=2)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--names", type=int, default=300)
    ap.add_argument("--factors", type=int, default=15)
    ap.add_argument("--schedule", choices=("monthly", "weekly"), default="monthly")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json")
    args = ap.parse_args()

    t_start = time.perf_counter()
    t0 = HISTORY
    market = synthesize(names=args.names, days=t0 + 252 * args.years + 1, factors=args.factors, seed=args.seed)
    days = days_of(market, t0, len(market.dates) - 1, args.schedule)
    people = couples(market, t0, args.couples, args.seed)
    ledgers: dict[str, MemoryLedger] = {}
    for way in WAYS:
        ledgers[way] = led = MemoryLedger()
        for infos, lots in people:
            for info in infos:
                led.add_accounts([replace(info, household=f"{info.account}x") if way == "alone" else info])
                for lot in lots[info.account]:
                    led.open_lot(info.account, lot)
    defaults, cache = AccountSettings(), ProblemCache()
    years = sorted({dt.date.fromisoformat(str(market.dates[t])).year for t in days})
    saved = {way: {y: 0 for y in years} for way in WAYS}  # cents
    harvested = dict.fromkeys(WAYS, 0)
    te: dict[str, dict[str, list[float]]] = {kind: {w: [] for w in WAYS} for kind in ("taxable", "ira")}
    over_budget = dict.fromkeys(WAYS, 0)
    failed = {w: [] for w in WAYS}
    seconds = dict.fromkeys(WAYS, 0.0)
    model, estimated = None, -21
    for n, t in enumerate(days):
        date = dt.date.fromisoformat(str(market.dates[t]))
        if t - estimated >= 21:  # every 21 trading days, from the trailing year
            model, estimated = estimate(market, t, factors=args.factors, window=252), t
        p = market.prices[t]
        snap = Snapshot(
            date, market.symbols, market.sectors, _readonly(p), _readonly(market.benchmark_weights(t)), model
        )
        for way in WAYS:
            led, clock = ledgers[way], time.perf_counter()
            for infos, _ in people:
                names = [i.account for i in infos]  # alphabetical: -I, -S, -T
                key = f"{date}"
                if way == "household":
                    outs = rebalance_household(led, snap, infos[0].household, names, key, defaults, cache)
                else:
                    order = names if way != "taxable_first" else [*names[1:], names[0]]
                    outs = [rebalance_account(led, snap, a, f"{key}:{a}", defaults, cache) for a in order]
                for out in outs:
                    if not out.ok:
                        failed[way].append((str(date), out.account, out.status, out.reason))
                        continue
                    if out.result is None:
                        continue
                    kind = "ira" if out.info.account_type == "ira" else "taxable"
                    te[kind][way].append(out.result.te_ex_ante)
                    over_budget[way] += out.result.te_ex_ante > out.settings.te_max * (1 + 1e-3)
                    if kind == "ira":
                        continue
                    rate = {"short": out.info.st_rate, "long": out.info.lt_rate}
                    sales = [x for x in out.committed.sales if x.get("recognized", True)]
                    saved[way][date.year] -= round(sum(x["gain_cents"] * rate[x["term"]] for x in sales))
                    harvested[way] -= sum(min(x["gain_cents"], 0) for x in sales)
            seconds[way] += time.perf_counter() - clock
        if n % 12 == 0:
            print({w: round(sum(saved[w].values()) / 100) for w in WAYS}, date, flush=True)

    end = snap
    embedded, washed = {}, {}
    for way in WAYS:
        led = ledgers[way]
        gain = 0
        for infos, _ in people:
            for info in infos:
                if info.account_type != "ira":
                    for x in led.lots(info.account):
                        gain += cents_at(x.quantity, end.price_cents[end.index[x.symbol]]) - x.basis_cents
        embedded[way] = gain
        houses = {led.household_of(i.account) for infos, _ in people for i in infos}
        washed[way] = sum(s.disallowed_cents + s.permanent_cents for hh in houses for s in led.sales(hh))
    total = {w: sum(saved[w].values()) for w in WAYS}
    best = max(total["alphabetical"], total["taxable_first"])
    out = {
        "benchmark": "household_backtest",
        "couples": args.couples,
        "years": args.years,
        "schedule": args.schedule,
        "rebalances": len(days),
        "names": args.names,
        "factors": args.factors,
        "tax_saving_cents": total,
        "tax_saving_by_year_cents": saved,
        "harvested_loss_cents": harvested,
        "household_efficiency": {w: round(total[w] / total["alone"], 3) for w in WAYS[1:]},
        "household_vs_best_order": round(total["household"] / best, 3) if best else None,
        "embedded_gain_cents": embedded,
        "washed_loss_cents": washed,
        "failed": {w: len(v) for w, v in failed.items()},
        "failures": {w: v[:5] for w, v in failed.items() if v},
        "te_median": {k: {w: round(float(np.median(v)), 5) for w, v in d.items() if v} for k, d in te.items()},
        "accounts_over_te_budget": over_budget,
        "ms_per_couple_rebalance": {w: round(1e3 * s / (len(days) * args.couples), 1) for w, s in seconds.items()},
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()
