"""The wash-safe passes of one account's solve (Moehle et al., JOTA 2021).

1. Side decision (only when a loss lot may be sold): a coarse, loose pass (one loss slot and one
   gain slot per name) with buy-and-loss-sell of one name allowed; it fixes a side for every name
   with loss lots (sell side: no buys; buy side: no loss sales).
2. Fine solve on the account's slot layout with the sides fixed: conflict-free by construction.
3. SOC pass, only when the TE penalty alone broke the budget: the same with the budget as a cone.

Each pass retries with the careful settings on numerical trouble, and lets cash exceed
``cash_max`` once when too few names may be bought (noted in the result).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .account import Account
from .data import Pass, Sides, fill
from .limits import Limits
from .problem import EPS_W, Layout, ProblemCache
from .status import SolveStatus, from_clarabel


@dataclass(frozen=True, slots=True)
class PassResult:
    status: SolveStatus
    clarabel: str  # CLARABEL's own status name, for messages
    x: np.ndarray


@dataclass(frozen=True, slots=True)
class Solution:
    """What the passes found: ``x`` on the fine layout when ``status.ok``, else a reason."""

    status: SolveStatus
    reason: str | None
    layout: Layout | None
    x: np.ndarray | None
    passes: int
    iterations: int
    notes: tuple[str, ...] = ()


class _Runner:
    """Runs passes on the caller's compiled problems and counts them (passes, iterations)."""

    def __init__(self, account: Account, limits: Limits, cache: ProblemCache) -> None:
        self.account, self.limits, self.cache = account, limits, cache
        self.cash_max = account.settings.cash_max
        self.passes = self.iterations = 0
        self.notes: list[str] = []

    def _solve(self, layout: Layout, q: np.ndarray, b: np.ndarray, robust: bool = False) -> PassResult:
        name, x, it = self.cache.get(self.account.snap.model, layout, robust=robust).solve(q, b)
        self.passes, self.iterations = self.passes + 1, self.iterations + it
        return PassResult(from_clarabel(name), name, x)

    def run(self, p: Pass) -> PassResult:
        q, b = fill(self.account, self.limits, p, self.cash_max)
        res = self._solve(p.layout, q, b)
        if not res.status.ok and not res.status.infeasible:  # numerical trouble: the careful solver
            res = self._solve(p.layout, q, b, robust=True)
        if res.status.infeasible and self.cash_max < 1.0:
            # Names that may not be bought (wash-sale windows, caps) can leave nowhere to put the
            # cash: hold it rather than fail the day. Any other infeasibility stays infeasible.
            self.cash_max = 1.0
            self.notes.append(f"cash above cash_max {self.account.settings.cash_max:.2%}: too few names may be bought")
            q, b = fill(self.account, self.limits, p, self.cash_max)
            res = self._solve(p.layout, q, b)
        return res

    def least_te(self, p: Pass) -> float | None:
        """The least tracking error ``p``'s limits allow (a zero objective; not counted as a pass)."""
        q, b = fill(self.account, self.limits, p, self.cash_max)
        name, x, _ = self.cache.get(self.account.snap.model, p.layout).solve(np.zeros_like(q), b)
        n, oa = p.layout.n, p.layout.oa
        return self.account.snap.model.te(x[oa : oa + n]) if from_clarabel(name).ok else None

    def solved(self, layout: Layout, x: np.ndarray) -> Solution:
        return Solution(SolveStatus.OPTIMAL, None, layout, x, self.passes, self.iterations, tuple(self.notes))

    def failed(self, res: PassResult, te_min: float | None = None) -> Solution:
        reason = _reason(res, self.account, self.limits, te_min)
        return Solution(res.status, reason, None, None, self.passes, self.iterations)


def run_passes(account: Account, limits: Limits, cache: ProblemCache) -> Solution:
    """Side decision (if there is a loss to harvest), fine solve, SOC pass (if the budget broke)."""
    snap, settings, la, n = account.snap, account.settings, account.lot_slots, account.n
    K = snap.model.B.shape[1]
    runner = _Runner(account, limits, cache)
    sides = Sides.of(limits)
    fine = Layout(n=n, L=la.L, K=K)
    harvestable = settings.taxable and bool((la.loss & limits.sellable).any())
    if harvestable:
        coarse = Layout(n=n, L=2, K=K, loose=True)
        res = runner.run(Pass(coarse, la.coarse_slot, sides))
        if not res.status.ok:
            return runner.failed(res)
        sides = decide_sides(account, sides, coarse, res.x)
    res = runner.run(Pass(fine, la.slot, sides))
    if not res.status.ok:
        return runner.failed(res)
    te = snap.model.te(res.x[fine.oa : fine.oa + n])
    if te > settings.te_max * (1 + 1e-4):  # the penalty alone broke the budget: the SOC form
        return _soc_pass(runner, fine, sides, harvestable, te)
    return runner.solved(fine, res.x)


def decide_sides(account: Account, sides: Sides, coarse: Layout, x: np.ndarray) -> Sides:
    """Sell side (no buys) for names whose loss lots the coarse pass sold at least as much as it
    bought; buy side (no loss sales) for the other names with sellable loss lots."""
    la, n = account.lot_slots, account.n
    bought = x[coarse.ob : coarse.ob + n]
    loss_sold = x[0 : coarse.S : 2]
    has_loss = np.bincount(la.name, weights=la.loss & sides.sellable, minlength=n) > 0
    # a loss sale smaller than a minimum trade is solver noise, not a decision to harvest
    decided = max(EPS_W, 0.5 * account.settings.min_trade_dollars / account.value)
    sell_side = has_loss & (loss_sold > decided) & (loss_sold >= bought)
    return Sides(
        sellable=sides.sellable & ~(la.loss & (has_loss & ~sell_side)[la.name]),
        buy_ub=np.where(sell_side, 0.0, sides.buy_ub),
    )


def _soc_pass(runner: _Runner, fine: Layout, sides: Sides, harvestable: bool, te: float) -> Solution:
    """The fine pass again with the TE budget as a second-order cone."""
    la = runner.account.lot_slots
    cone = Layout(n=fine.n, L=fine.L, K=fine.K, cone=True)
    res = runner.run(Pass(cone, la.slot, sides))
    if res.status.infeasible and harvestable:
        # The sides chosen for harvesting leave too little freedom to meet the budget:
        # give up harvesting in names that need buying (every name with losses buy side).
        sides = Sides(sellable=sides.sellable & ~la.loss, buy_ub=runner.limits.buy_ub)
        res = runner.run(Pass(cone, la.slot, sides))
    if not res.status.ok:
        if res.status.infeasible:  # say how far the budget is: the least TE these limits allow
            least = runner.least_te(Pass(fine, la.slot, sides))
            te = te if least is None else least
        return runner.failed(res, te_min=te)
    return runner.solved(fine, res.x)


def _reason(res: PassResult, account: Account, limits: Limits, te_min: float | None) -> str:
    s, excluded = account.settings, limits.excluded
    if te_min is not None and res.status.infeasible:
        return (
            f"TE budget {s.te_max:.2%} cannot be met: the least tracking error these limits allow "
            f"is {te_min:.2%} ({int(excluded.sum())} names excluded, cap {s.max_weight:.1%}); "
            "raise te_max or relax the exclusions"
        )
    if res.status.infeasible:
        return (
            f"constraints cannot all hold ({int(excluded.sum())} names excluded, cap "
            f"{s.max_weight:.1%}, cash target {s.cash_target:.2%}); CLARABEL: {res.clarabel}"
        )
    return f"CLARABEL stopped with status {res.clarabel}"
