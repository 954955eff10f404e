"""The buy-or-sell side choice against the wash-safe optimum (issue 12 §1).

Needs the MIP reference (``pip install taxview[reference]``, in the test extra that ``./dev test``
installs); skipped where pyscipopt is missing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("pyscipopt")

from solver import minimums, passes  # noqa: E402
from solver.account import read_account  # noqa: E402
from solver.data import Sides  # noqa: E402
from solver.limits import account_limits  # noqa: E402
from solver.market import synthesize  # noqa: E402
from solver.problem import EPS_W, ProblemCache  # noqa: E402
from solver.reference_mip import bps, objective, wash_safe_optimum  # noqa: E402
from solver.slots import MAX_SLOTS  # noqa: E402
from solver.snapshot import snapshot  # noqa: E402
from solver.solve import solve_account  # noqa: E402
from solver.synthetic import synth_lots  # noqa: E402
from solver.types import AccountSettings  # noqa: E402
from taxview.core.records import Restrictions  # noqa: E402

# Per account, what the side choice may leave behind against the MIP optimum, bps of account value.
# On these accounts it leaves 0.00–0.20 bps (with the flip search on, 0.00); today's rule left 0–9.5.
TOLERANCE_BPS = 0.5


@pytest.fixture(scope="module")
def cases():
    """Taxable 30-name accounts with gains and losses: a restriction or two, tight and loose budgets."""
    market = synthesize(names=30, days=1100, factors=4, seed=12)
    rng = np.random.default_rng(12)
    out = []
    for k, (day, te_max) in enumerate([(1000, 0.02), (1050, 0.008), (950, 0.03), (1099, 0.006)]):
        snap = snapshot(market, str(market.dates[day]), factors=4)
        lots = synth_lots(market, day, rng, value=2e6, lots_per_name=3.0)
        no_buy, no_loss_sale = frozenset(snap.symbols[k : k + 1]), frozenset(snap.symbols[9:10])
        restrictions = Restrictions(no_buy=no_buy, no_loss_sale=no_loss_sale)
        settings = AccountSettings(account_id=f"S{k}", te_max=te_max)
        account = read_account(snap, lots, 50_000_00, settings, MAX_SLOTS)
        out.append((snap, lots, settings, restrictions, account, account_limits(account, restrictions)))
    return out


def _run(account, limits, cache, rebuy_charge=passes.REBUY_CHARGE, max_flips=passes.MAX_FLIPS):
    kept = passes.REBUY_CHARGE, passes.MAX_FLIPS
    passes.REBUY_CHARGE, passes.MAX_FLIPS = rebuy_charge, max_flips
    try:
        return passes.run_passes(account, limits, cache)
    finally:
        passes.REBUY_CHARGE, passes.MAX_FLIPS = kept


def _washes(account, x) -> list[int]:
    """Names the solution both buys and sells at a loss."""
    la, n, L = account.lot_slots, account.n, account.lot_slots.L
    loss_sold = np.bincount(la.name, weights=x[la.slot] * la.loss, minlength=n) > EPS_W
    return np.flatnonzero(loss_sold & (x[n * L : n * L + n] > EPS_W)).tolist()


def test_the_mip_reference_agrees_with_the_fine_pass_when_the_sides_are_fixed(cases):
    """The MIP, written apart from the compiled problem, with every side fixed as the passes fixed
    them and no budget, is the fine pass: the same optimum."""
    from solver.problem import Layout

    cache = ProblemCache()
    for snap, _, _, _, account, limits in cases[:2]:
        la = account.lot_slots
        fine = Layout(n=account.n, L=la.L, K=snap.model.B.shape[1])
        sell = np.zeros(account.n, dtype=bool)
        sell[::2] = True  # any side set will do
        has_loss = np.bincount(la.name, weights=la.loss & limits.sellable, minlength=account.n) > 0
        sides = Sides(
            sellable=limits.sellable & ~(la.loss & (has_loss & ~sell)[la.name]),
            buy_ub=np.where(sell & has_loss, 0.0, limits.buy_ub),
        )
        runner = passes._Runner(account, limits, cache)
        res = runner.run(passes.Pass(fine, la.slot, sides))
        assert res.status.ok
        mip = wash_safe_optimum(account, limits, te_max=np.inf, sell_side=sell)
        assert mip.solved, mip.status
        assert abs(bps(account, objective(account, limits, res.x) - mip.objective)) < 0.01


def test_the_side_choice_is_near_the_wash_safe_optimum_and_never_worse_than_todays_rule(cases):
    cache = ProblemCache()
    for _, _, settings, _, account, limits in cases:
        new = _run(account, limits, cache)
        today = _run(account, limits, cache, rebuy_charge=0.0, max_flips=0)
        assert new.status.ok and today.status.ok and not new.notes and not today.notes
        best = wash_safe_optimum(account, limits)
        assert best.solved, best.status
        gap_new = bps(account, objective(account, limits, new.x) - best.objective)
        gap_today = bps(account, objective(account, limits, today.x) - best.objective)
        assert -0.01 < gap_new <= TOLERANCE_BPS, (settings.account_id, gap_new, gap_today)
        assert gap_new <= gap_today + 0.01, (settings.account_id, gap_new, gap_today)
        assert not _washes(account, new.x) and not _washes(account, best.x)


def test_the_flip_search_never_raises_the_objective_and_keeps_sides_wash_safe(cases):
    """Each flip is kept only when the fine objective falls: the search never ends above its base."""
    cache = ProblemCache()
    for _, _, settings, _, account, limits in cases:
        searched = _run(account, limits, cache, max_flips=8)
        base = _run(account, limits, cache, max_flips=0)
        assert searched.status.ok and base.status.ok
        assert searched.passes > base.passes  # it tried
        assert not _washes(account, searched.x)
        n, oa = account.n, searched.layout.oa
        if account.snap.model.te(searched.x[oa : oa + n]) <= settings.te_max * (1 + 1e-4):
            assert objective(account, limits, searched.x) <= objective(account, limits, base.x) + 1e-6


def test_a_rebuy_charge_of_zero_is_todays_side_decision(cases):
    """``REBUY_CHARGE = 0`` and no flips: the plain relaxation and ``loss_sold >= bought``, as before
    the rebuy charge."""
    from solver.problem import Layout

    cache = ProblemCache()
    snap, _, _, _, account, limits = cases[0]
    la = account.lot_slots
    coarse = Layout(n=account.n, L=2, K=snap.model.B.shape[1], loose=True)
    runner = passes._Runner(account, limits, cache)
    side_pass = passes.Pass(coarse, la.coarse_slot, Sides.of(limits), relaxation=True)
    plain = runner.run(side_pass)
    sides = passes.decide_sides(account, Sides.of(limits), coarse, plain.x, forced=limits.excluded)
    # then, as in ``run_passes``, the relaxation's sub-minimum names closed before the fine pass
    closing = minimums.to_close(account, limits, coarse, la.coarse_slot, plain.x)
    sides = minimums.closed_sides(account, sides, *closing)
    fine = runner.run(passes.Pass(Layout(n=account.n, L=la.L, K=coarse.K), la.slot, sides))
    today = _run(account, limits, cache, rebuy_charge=0.0, max_flips=0)
    assert today.passes == 2 and np.array_equal(today.x, fine.x)


def test_no_name_is_bought_and_sold_at_a_loss_in_the_trades(cases):
    """Wash safety end to end: the rounded trades never buy a name and sell its lots at a loss."""
    cache = ProblemCache()
    for snap, lots, settings, restrictions, _, _ in cases:
        for tight in (settings, dataclasses.replace(settings, te_max=0.004)):
            r = solve_account(snap, lots, 50_000_00, tight, restrictions, cache=cache)
            if not r.ok:
                continue
            bought = {t.symbol for t in r.trades if t.side == "buy"}
            loss_sold = {t.symbol for t in r.trades if t.side == "sell" and t.realized_gain_cents < 0}
            assert not bought & loss_sold, (settings.account_id, bought & loss_sold)
            assert not bought & restrictions.no_buy
