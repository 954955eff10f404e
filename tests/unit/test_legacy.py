"""Legacy transitions (issue 15): a portfolio funded in kind, with names outside the universe and
60% embedded gains, moved toward the benchmark as fast as the annual net realized-gain budget allows."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from solver.io import write_lots_csv
from solver.market import synthesize
from solver.solve import solve_account
from solver.types import AccountSettings
from taxview.backtest import Data, TaxConfig, simulate, transition_metrics
from taxview.cli import main
from taxview.core.records import Lot
from tests.conftest import lot, twin_snapshot

BUDGET = 40_000_00  # cents a year


@pytest.fixture(scope="module")
def legacy():
    """30 names; the legacy portfolio: 10 of them ($1M), 3 outside the benchmark's universe, each lot
    bought a year before the start at 40% of its value (60% embedded gain)."""
    market = synthesize(names=30, days=780, factors=5, seed=11, start="2018-01-02")
    t0 = 255
    rng = np.random.default_rng(1)
    held = rng.choice(30, 10, replace=False)
    acquired = dt.date.fromisoformat(str(market.dates[t0 - 250]))
    lots = []
    for k, i in enumerate(held):
        shares = int(100_000 * rng.uniform(0.5, 1.5) / market.prices[t0 - 1, i])
        basis = int(shares * market.prices[t0 - 1, i] * 0.4 * 100)
        lots.append(Lot(f"L{k}", market.symbols[i], Decimal(shares), basis, acquired))
    outside = frozenset(market.symbols[i] for i in held[:3])
    return market, str(market.dates[t0]), lots, outside


def transition(legacy, budget: int):
    market, start, lots, outside = legacy
    settings = AccountSettings(gain_budget_cents=budget, transition=True, te_max=0.02)
    run = simulate(Data(market, "cap-weighted"), start, str(market.dates[-1]), "monthly", 0, settings, TaxConfig(),
                   lots=lots, factors=5, outside=outside)  # fmt: skip
    return run, transition_metrics(run, settings)


@pytest.fixture(scope="module")
def budgeted(legacy):
    return transition(legacy, BUDGET)


def test_the_gain_budget_is_never_exceeded_and_is_spent_each_year(budgeted):
    run, metrics = budgeted
    assert run.solve_failures == 0, run.failures
    assert len(run.realized_by_year) == 3
    for year, cents in run.realized_by_year.items():
        assert cents <= BUDGET, year
        assert cents >= 0.95 * BUDGET, year  # as fast as the budget allows: it is used
    assert metrics["over_budget_years"] == []
    # the ledger's own recognized gains say the same, sale by sale
    by_year: dict[int, int] = {}
    for sale in run.sales:
        by_year[sale.date.year] = by_year.get(sale.date.year, 0) + sale.recognized_cents
    assert by_year == run.realized_by_year


def test_tracking_error_falls_year_over_year_on_average(budgeted):
    _, metrics = budgeted
    mean = list(metrics["te_mean_by_year"].values())
    assert np.mean(np.diff(mean)) < 0 and mean[-1] < mean[0] - 0.01
    last = list(metrics["te_by_year"].values())
    assert last[-1] < last[0]


def test_names_outside_the_universe_are_sold_over_time_and_never_block(budgeted, legacy):
    run, metrics = budgeted
    left = metrics["outside_universe_left_by_year"]
    assert len(left["2020"]) < len(legacy[3]) and set(left["2020"]) <= legacy[3]
    assert legacy[3] & {sale.symbol for sale in run.sales}  # sold over time
    ids = {x.lot_id for x in legacy[2]}
    assert all(x.lot_id in ids for x in run.final_lots if x.symbol in legacy[3])  # and never bought


def test_a_zero_budget_sells_nothing_with_a_gain(legacy):
    run, metrics = transition(legacy, 0)
    assert run.solve_failures == 0, run.failures
    assert all(sale.gain_cents <= 0 for sale in run.sales)
    assert all(cents <= 0 for cents in run.realized_by_year.values())


def test_an_outside_universe_lot_never_blocks_the_solve():
    """FFF is outside the universe (benchmark 0), 30% of the account at a gain: with no gain
    allowance and a TE budget it breaks, the solve still trades (the least TE it may) and keeps FFF."""
    snap = twin_snapshot()
    bench = np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.0])
    snap = replace(snap, benchmark=bench)
    value = 1_000_000
    lots = []
    for i, sym in enumerate(snap.symbols):
        weight = 0.3 if sym == "FFF" else 0.14
        shares = int(value * weight / snap.prices[i])
        gain = sym in ("FFF", "AAA")
        basis = shares * snap.prices[i] * (0.4 if gain else 1.2)  # FFF, AAA: gains; the rest: losses
        lots.append(lot(f"{sym}-1", sym, shares, round(basis, 2), "2022-01-03"))
    s = AccountSettings(te_max=0.01, max_weight=0.5, gain_allowance_cents=0, min_trade_dollars=0)
    r = solve_account(snap, lots, 2_000_00, s)
    assert r.ok, r.reason
    assert not any(t.symbol == "FFF" for t in r.trades)  # neither sold (a gain, no allowance) nor bought
    assert r.realized.net <= 0
    assert any(n.startswith("TE budget 1.00% cannot be met within tonight's gain allowance") for n in r.notes)
    # the same account with a loss in FFF: it goes (target weight 0), whatever the budget
    lots[-1] = lot("FFF-1", "FFF", lots[-1].quantity, float(lots[-1].quantity) * 20, "2022-01-03")
    r = solve_account(snap, lots, 2_000_00, s)
    assert r.ok and sum(t.shares for t in r.trades if t.symbol == "FFF" and t.side == "sell") == lots[-1].quantity


def test_backtest_cli_runs_a_legacy_transition(tmp_path, capsys):
    from solver.marketdir import write_synthetic

    market = write_synthetic(tmp_path / "m", names=30, days=420, factors=5, seed=11, start="2018-01-02")
    t0 = 300
    lots = [
        Lot(f"L{i}", market.symbols[i], Decimal(1000), int(1000 * market.prices[t0, i] * 40), dt.date(2018, 3, 1))
        for i in range(8)
    ]
    write_lots_csv(lots, tmp_path / "legacy.csv")
    (tmp_path / "a.toml").write_text("[tax]\ngain_budget = 20000\n[optimizer]\ntransition = true\n")
    args = ["backtest", "--data", str(tmp_path / "m"), "--start", str(market.dates[t0]), "--end", str(market.dates[-1])]
    args += ["--account", str(tmp_path / "a.toml"), "--legacy", str(tmp_path / "legacy.csv"), "--quiet"]
    assert main([*args, "--outside-universe", "S000,S001", "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    tr = result["transition"]
    assert tr["gain_budget"] == 20000 and all(g <= 20000 for g in tr["realized_by_year"].values())
    assert set(tr["te_by_year"]) == {"2019"} and "legacy transition: TE by year 2019" in capsys.readouterr().out
    assert (tmp_path / "out" / "te_path.png").is_file()
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<h2>Legacy transition</h2>" in page and "names outside the universe" in page
    bad = tmp_path / "bad.csv"
    write_lots_csv([replace(lots[0], symbol="NOPE")], bad)
    assert main([*args[:-3], "--legacy", str(bad), "--quiet", "--out", str(tmp_path / "o2")]) == 2
    assert not (tmp_path / "o2").exists()  # refused: the --out it made is gone again (it was left empty)
    # a lot bought after the backtest's start (was run as if held from the start), no lots at all
    # (was a ZeroDivisionError, exit 1)
    write_lots_csv([replace(lots[0], acquired=dt.date(2030, 1, 2))], bad)
    assert main([*args[:-3], "--legacy", str(bad), "--quiet", "--out", str(tmp_path / "o3" / "deep")]) == 2
    assert "acquired: legacy lot 'L0': acquired 2030-01-02 after the start" in capsys.readouterr().err
    write_lots_csv([], bad)
    assert main([*args[:-3], "--legacy", str(bad), "--quiet", "--out", str(tmp_path / "o3" / "deep")]) == 2
    assert "legacy: the legacy portfolio has no lots" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()
