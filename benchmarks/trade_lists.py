"""Trade lists against the tax benefit (issue 12): orders per account, tax benefit and TE of one
first night under each trade-list rule, the same accounts solved once per rule, in one run.

    python benchmarks/trade_lists.py [--accounts 40] [--json FILE]

Accounts like the demo firm's first night (lots worth $0.3–5M, about 5 lots per name bought over
three years; every fourth an IRA), 500 names, 20 factors, no household windows. For each rule:
orders per account (one per symbol and side) p50/p90, the taxable accounts' tax benefit (the
negative of the tax estimate) and its ratio to the rule-free solve (``vs_unconstrained``), TE p50,
passes per account. Figures are deterministic (no timing but ``solve_ms_p50``).
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import emit  # benchmarks/ is on sys.path when a script here runs

from solver.market import synthesize
from solver.problem import ProblemCache
from solver.snapshot import snapshot
from solver.solve import solve_account
from solver.synthetic import synth_lots
from solver.types import AccountSettings

RULES = {  # name -> AccountSettings keys
    "none": {"min_trade_dollars": 0.0, "min_trade_weight": 0.0},
    "$100 a name": {"min_trade_weight": 0.0},
    "default (3 bps, $100)": {},
    "5 bps, $100": {"min_trade_weight": 0.0005},
    "10 bps, $100": {"min_trade_weight": 0.001},
    "150 names": {"max_names_traded": 150},
    "100 names": {"max_names_traded": 100},
    "60 names": {"max_names_traded": 60},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=40)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", help="write the results here (also printed)")
    args = ap.parse_args()
    market = synthesize(names=500, days=800, factors=20, seed=args.seed)
    t = len(market.dates) - 1
    snap = snapshot(market, str(market.dates[t]), factors=20)
    rng = np.random.default_rng(args.seed)
    accounts = []
    for a in range(args.accounts):
        value = float(np.exp(rng.uniform(np.log(3e5), np.log(5e6))))
        lots = synth_lots(market, t, rng, value=value, prefix=f"A{a}:")
        accounts.append((lots, int(rng.uniform(0.001, 0.01) * value * 100), "ira" if a % 4 == 3 else "taxable"))
    cache = ProblemCache()
    rules = {}
    for name, kw in RULES.items():
        rows = []
        for a, (lots, cash, kind) in enumerate(accounts):
            r = solve_account(
                snap, lots, cash, AccountSettings(account_id=f"A{a}", account_type=kind, **kw), cache=cache
            )
            rows.append((kind, r))
        orders = [len({(x.symbol, x.side) for x in r.trades}) for _, r in rows]
        rules[name] = {
            "settings": kw,
            "ok": sum(r.ok for _, r in rows),
            "orders_per_account_p50": float(np.median(orders)),
            "orders_per_account_p90": float(np.percentile(orders, 90)),
            "tax_benefit_cents": sum(-r.tax_estimate_cents for kind, r in rows if kind == "taxable"),
            "te_p50": round(float(np.median([r.te_ex_ante for _, r in rows])), 5),
            "passes_mean": round(float(np.mean([r.passes for _, r in rows])), 2),
            "solve_ms_p50": round(float(np.median([r.solve_ms for _, r in rows[3:]])), 1),
        }
    free = rules["none"]["tax_benefit_cents"]
    for v in rules.values():
        v["vs_unconstrained"] = round(v["tax_benefit_cents"] / free, 3) if free else None
    out = {"benchmark": "trade_lists", "accounts": args.accounts, "names": 500, "factors": 20, "rules": rules}
    for name, v in rules.items():
        print(
            f"{name:>24}: orders p50 {v['orders_per_account_p50']:6.1f} p90 {v['orders_per_account_p90']:6.1f} "
            f"benefit ${v['tax_benefit_cents'] / 100:>12,.0f} ({v['vs_unconstrained']:.3f}) TE {v['te_p50']:.2%}",
            flush=True,
        )
    emit(out, args.json)


if __name__ == "__main__":
    main()
