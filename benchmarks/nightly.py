"""How fast is the nightly rebalance? (issue 4)

The reference firm (domain.md §8: 2,000 accounts in about 800 households, 500 names, 20 factors,
about 5 lots per name) is loaded into a private redis-server and rebalanced on a local Ray with
each worker count in turn (a fresh ledger each time), all in one run. Reports wall time and
accounts/s per worker count, scaling efficiency, the time per stage and the coordinator's own
share of the wall time.

    python benchmarks/nightly.py [--accounts 2000] [--workers 1,2] [--nights 1] [--household-sample 40]
                                 [--json FILE]

With ``--nights N`` each worker count runs N consecutive nights on the same ledger (the first is
the firm's day, as with one night); each night's accounts/s, orders per account (p50, p90) and
Redis memory are reported under ``nights``.

``trade_lists`` (``--quality-accounts K``, default 100): K accounts of the firm's first night solved
in process with the default trade-list rules (a name traded by at least the minimum or not at all)
and without them; ``tax_benefit_vs_unconstrained`` is the taxable accounts' tax benefit with the
rules over without, beside the TE and orders per account of each.

``households`` (``--household-sample K``, default 40; issue 13): K households of the firm run in
process for the same nights on a ``MemoryLedger`` four ways (each account alone as if the household
rule did not exist, alphabetically, taxable accounts first, and ``rebalance_household``, the
nightly's step); ``household_efficiency`` is the household step's tax saving over the accounts
alone on the first night (``household_efficiency_nights_so_far``: over the nights so far), with
the orders' figures, the TE and orders of each, and the household step's cost per household.
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
from cluster.step import PROTECT_LOSS
from ledger.connection import LedgerSettings
from ledger.importer import import_lots
from ledger.server import RedisServer
from ledger.store import LedgerStore
from solver.market import synthesize, write_market
from solver.types import AccountSettings
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


ORDERS = ("alone", "alphabetical", "taxable_first", "household")


def household_gap(
    market, t: int, infos, lots, k: int, nights: int, factors: int, protect_loss: float | None = PROTECT_LOSS
) -> dict:
    """Issue 13: ``k`` households of the firm (evenly spaced) through ``nights`` nights from day
    ``t``, in process, on a ``MemoryLedger`` per way of running them: ``alone`` (each account its
    own household: no household rule, the issue's upper bound), ``alphabetical`` and
    ``taxable_first`` (``rebalance_account`` per account in that order) and ``household``
    (``rebalance_household``). A night's tax saving: the tax on the taxable accounts' booked
    sales (recognized gains at the account's rates), negated. ``household_efficiency``: the
    household's saving over ``alone``'s, on the first night and over the nights so far (a night
    that harvests more leaves less to the next). ``ceiling``: the taxable accounts of the
    ``household`` run each solved alone on the restrictions their household starts the night
    with (what the household's past purchases leave to harvest, nothing committed)."""
    import datetime as dt
    from dataclasses import replace
    from decimal import Decimal

    import numpy as np

    from cluster.step import rebalance_account, rebalance_household, settings_for
    from ledger.memory import MemoryLedger
    from solver.problem import ProblemCache
    from solver.snapshot import snapshot
    from solver.solve import solve_account
    from taxview.core.records import Lot

    members: dict[str, list] = {}
    for info in infos:
        members.setdefault(info.household, []).append(info)
    households = sorted(members)
    sample = households[:: max(len(households) // k, 1)][:k]
    chosen = {a.account for h in sample for a in members[h]}
    cols = lots.to_pydict()
    opening: dict[str, list[Lot]] = {}
    for a, lid, sym, q, basis, acq in zip(
        cols["account"], cols["lot_id"], cols["symbol"], cols["quantity"], cols["basis_cents"], cols["acquired"]
    ):
        if a in chosen:
            opening.setdefault(a, []).append(Lot(lid, sym, Decimal(q), basis, dt.date.fromordinal(acq)))
    ledgers = {}
    for way in ORDERS:
        ledgers[way] = led = MemoryLedger()
        for h in sample:
            for a in members[h]:
                led.add_accounts([replace(a, household=f"{a.account}x") if way == "alone" else a])
                for lot in opening.get(a.account, []):
                    led.open_lot(a.account, lot)
    defaults, cache = AccountSettings(), ProblemCache()
    saved = {way: np.zeros((nights, len(sample))) for way in (*ORDERS, "ceiling")}  # cents
    ms: dict[str, list[float]] = {"household": [], "taxable_first": [], "household_sides": []}
    te: dict[str, dict[str, list[float]]] = {kind: {way: [] for way in ORDERS} for kind in ("taxable", "ira")}
    orders: dict[str, list[int]] = {way: [] for way in ORDERS}
    refused = dict.fromkeys(ORDERS, 0)
    over_budget = dict.fromkeys(ORDERS, 0)  # accounts whose TE ends over their budget (rounding)

    def saving(way: str, out) -> int:
        if not out.ok:
            refused[way] += out.status == "rejected"
            return 0
        kind = "ira" if out.info.account_type == "ira" else "taxable"
        te[kind][way].append(out.result.te_ex_ante)
        over_budget[way] += out.result.te_ex_ante > out.settings.te_max * (1 + 1e-3)
        if out.committed.date == first_night:
            orders[way].append(len({(x.symbol, x.side) for x in out.result.trades}))
        if kind == "ira":
            return 0
        rate = {"short": out.info.st_rate, "long": out.info.lt_rate}
        return -round(sum(x["gain_cents"] * rate[x["term"]] for x in out.committed.sales if x.get("recognized", True)))

    first_night = dt.date.fromisoformat(str(market.dates[t]))
    for night in range(nights):
        snap = snapshot(market, str(market.dates[t + night]), factors=factors)
        run = f"night{night}"
        led = ledgers["household"]
        for j, h in enumerate(sample):
            start = led.restrictions(h, snap.date)
            for a in members[h]:
                info = led.account(a.account)
                if info.account_type != "ira":
                    settings = settings_for(defaults, info, snap.date.year)
                    got = solve_account(snap, led.lots(a.account), info.cash_cents, settings, start[a.account], cache)
                    saved["ceiling"][night, j] -= got.tax_estimate_cents if got.ok else 0
        for way in ORDERS:
            led = ledgers[way]
            for j, h in enumerate(sample):
                accounts = sorted(a.account for a in members[h])
                t0 = time.perf_counter()
                if way == "household":
                    timings: dict = {}
                    outs = rebalance_household(
                        led, snap, h, accounts, run, defaults, cache, timings=timings, protect_loss=protect_loss
                    )
                    ms["household_sides"].append(1e3 * timings.get("household_sides_s", 0.0))
                else:
                    if way == "taxable_first":
                        accounts.sort(key=lambda a: (led.account(a).account_type == "ira", a))
                    outs = [rebalance_account(led, snap, a, f"{run}:{a}", defaults, cache) for a in accounts]
                if way in ms:
                    ms[way].append(1e3 * (time.perf_counter() - t0))
                saved[way][night, j] = sum(saving(way, out) for out in outs)
        print(json.dumps({"night": night, **{w: int(v[night].sum()) / 100 for w, v in saved.items()}}), flush=True)

    total = {w: v.sum(axis=1) for w, v in saved.items()}  # per night
    so_far = {w: np.cumsum(v) for w, v in total.items()}

    def ratio(a, b) -> list:
        return [round(float(x / y), 3) if y else None for x, y in zip(a, b)]

    best = np.maximum(saved["alphabetical"].cumsum(axis=0), saved["taxable_first"].cumsum(axis=0))
    mine = saved["household"].cumsum(axis=0)
    worse = mine < best
    ways = (*ORDERS[1:], "ceiling")
    return {
        "households": len(sample),
        "accounts": len(chosen),
        "households_with_ira": sum(any(a.account_type == "ira" for a in members[h]) for h in sample),
        "nights": nights,
        "protect_loss": protect_loss,
        "tax_saving_cents": {w: [int(x) for x in v] for w, v in total.items()},
        "household_efficiency": {
            "first_night": ratio(total["household"], total["alone"])[0],
            "nights_so_far": ratio(so_far["household"], so_far["alone"]),
        },
        "efficiency_nights_so_far": {w: ratio(so_far[w], so_far["alone"]) for w in ways},
        "efficiency_by_night": {w: ratio(total[w], total["alone"]) for w in ways},
        "household_vs_best_order_nights_so_far": ratio(so_far["household"], best.sum(axis=1)),
        "households_worse_than_best_order": [int(x) for x in worse.sum(axis=1)],
        "worst_household_vs_best_order": [
            round(float(min(m / b for m, b in zip(mine[n], best[n]) if b > 0)), 3) for n in range(nights)
        ],
        "wash_conflicts_refused": refused,
        "accounts_over_te_budget": over_budget,
        "te_median": {
            kind: {w: round(float(np.median(v)), 5) if v else None for w, v in d.items()} for kind, d in te.items()
        },
        "orders_per_account_p50_first_night": {w: float(np.median(v)) for w, v in orders.items()},
        "ms_per_household": {w: round(float(np.mean(v)), 1) for w, v in ms.items()},
        "ms_per_household_p90": {w: round(float(np.percentile(v, 90)), 1) for w, v in ms.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--workers", default="1,2", help="worker counts of the Ray nightly runs (0: none)")
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--factors", type=int, default=20)
    ap.add_argument("--shard-size", type=int, default=8)
    ap.add_argument("--nights", type=int, default=1)
    ap.add_argument("--quality-accounts", type=int, default=100, help="accounts solved with and without the minimums")
    ap.add_argument("--household-sample", type=int, default=40, help="households run in process each way (0: none)")
    ap.add_argument("--no-protect", action="store_true", help="households: the IRAs may buy names held at a loss")
    ap.add_argument("--json")
    args = ap.parse_args()
    counts = [w for w in (int(x) for x in args.workers.split(",")) if w > 0]

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
        if args.household_sample:
            protect = None if args.no_protect else PROTECT_LOSS
            gap = household_gap(market, t, infos, lots, args.household_sample, args.nights, args.factors, protect)
            out["households"] = gap
            out["household_efficiency"] = gap["household_efficiency"]["first_night"]
            out["household_efficiency_nights_so_far"] = gap["household_efficiency"]["nights_so_far"]
            print(json.dumps({k: v for k, v in gap.items() if k != "tax_saving_cents"}), flush=True)
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
    if by:
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
