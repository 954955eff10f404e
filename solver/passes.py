"""The wash-safe passes of one account's solve (Moehle et al., JOTA 2021).

1. Side decision (only when a loss lot may be sold): a coarse, loose pass (one loss slot and one
   gain slot per name) with buy-and-loss-sell of one name allowed, but a loss name's rebuy charged
   part of the harvest it would forfeit (with the TE budget as a cone when its penalty alone breaks
   it); it fixes a side for every name with loss lots (sell side: no buys; buy side: no loss
   sales). A one-flip search on the fine problem over the close calls is there, off by default.
2. Fine solve on the account's slot layout with the sides fixed: conflict-free by construction.
3. SOC pass, only when the TE penalty alone broke the budget: the same with the budget as a cone.

Each pass retries with the careful settings on numerical trouble. An infeasible pass gives way,
noted in the result and kept for the later passes, on ``cash_max`` (too few names may be bought),
else on a negative gain allowance (to 0: a soft target, ``solver.budget``), else on both. Still
infeasible with a gain budget, it is asked again without one: when that solves, the reason names
the gain budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import minimums, tilts
from .account import Account
from .budget import dollars, soft_target_note
from .data import Pass, Sides, fill
from .limits import PACED, Limits
from .problem import EPS_W, GAIN_UNBOUND, LOOSE_TOL, OBJ_SCALE, Layout, ProblemCache
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
    allowance_cents: int | None = None  # the net-gain allowance the passes kept (rounding checks it)
    cash_max: float = 1.0  # the cash maximum the passes kept (1.0 once it gave way)


class _Runner:
    """Runs passes on the caller's compiled problems and counts them (passes, iterations)."""

    def __init__(self, account: Account, limits: Limits, cache: ProblemCache) -> None:
        self.account, self.limits, self.cache = account, limits, cache
        self.cash_max = account.settings.cash_max
        self.gain_ub = limits.gain_ub
        self.gain_blocked = False  # infeasible, and solvable without the gain budget
        self.passes = self.iterations = 0
        self.notes: list[str] = []
        la = account.lot_slots
        if self.gain_ub < float(np.minimum(account.gain, 0.0) @ (la.weight * limits.sellable)):
            self._give_way(self.cash_max, 0.0)  # more net loss than every sellable loss lot realizes

    def _give_way(self, cash_max: float, gain_ub: float) -> None:
        """Relax ``cash_max`` (to 1: hold the cash) and a negative gain allowance (to 0: a net loss to
        realize is a target, not a limit), noting what changed."""
        if cash_max > self.cash_max:
            self.notes.append(f"cash above cash_max {self.account.settings.cash_max:.2%}: too few names may be bought")
        if gain_ub > self.gain_ub:
            self.notes.append(soft_target_note(self.account.settings.gain_allowance_cents or 0))
        self.cash_max, self.gain_ub = cash_max, gain_ub

    def _fill(self, p: Pass) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return fill(self.account, self.limits, p, self.cash_max, self.gain_ub)

    def _solve(self, p: Pass, robust: bool = False) -> PassResult:
        name, x, it = self.cache.get(self.account.snap.model, p.layout, robust=robust).solve(*self._fill(p))
        self.passes, self.iterations = self.passes + 1, self.iterations + it
        return PassResult(from_clarabel(name), name, x)

    def attempt(self, p: Pass) -> PassResult:
        res = self._solve(p)
        if not res.status.ok and not res.status.infeasible:  # numerical trouble: the careful solver
            res = self._solve(p, robust=True)
        return res

    def run(self, p: Pass) -> PassResult:
        res = self.attempt(p)
        # Infeasible: hold the cash (names that may not be bought — wash-sale windows, caps — can
        # leave nowhere to put it), else give up a net loss to realize, else both; the first of
        # these that solves is kept for the later passes too. Other infeasibility stays infeasible.
        kept = cash_max, gain_ub = self.cash_max, self.gain_ub
        tries: list[tuple[float, float]] = []
        if res.status.infeasible and cash_max < 1.0:
            tries.append((1.0, gain_ub))
        if res.status.infeasible and gain_ub < 0:
            tries += [(cash_max, 0.0)] + ([(1.0, 0.0)] if cash_max < 1.0 else [])
        relaxed = None
        for relaxed in tries:
            self.cash_max, self.gain_ub = relaxed
            res = self.attempt(p)
            if not res.status.infeasible:
                break
        self.cash_max, self.gain_ub = kept
        if res.status.infeasible and self.gain_ub < GAIN_UNBOUND:
            # Is the gain budget what cannot hold? Ask again without it (not counted as a pass).
            self.gain_ub = GAIN_UNBOUND
            name, _, _ = self.cache.get(self.account.snap.model, p.layout).solve(*self._fill(p))
            self.gain_ub, self.gain_blocked = kept[1], from_clarabel(name).ok
        elif relaxed is not None:
            self._give_way(*relaxed)
        return res

    def least_te(self, p: Pass, tax: float = 0.0) -> tuple[float, np.ndarray] | None:
        """The least tracking error ``p``'s limits allow and its solution (not counted as a pass);
        None when none is feasible. ``tax``: the weight left on tax and costs (0: TE alone; a
        small weight keeps TE near its least and breaks ties by tax, not at random)."""
        q, b, g = self._fill(p)
        name, x, _ = self.cache.get(self.account.snap.model, p.layout).solve(tax * q, b, g)
        n, oa = p.layout.n, p.layout.oa
        return (self.account.snap.model.te(x[oa : oa + n]), x) if from_clarabel(name).ok else None

    def gain_binds(self, p: Pass, x: np.ndarray) -> bool:
        """Does ``p``'s solution ``x`` realize (about) all the net gain the allowance lets it?"""
        if self.gain_ub >= GAIN_UNBOUND:
            return False
        g = self._fill(replace(p, relaxation=False))[2]  # the slots' mean gain, as the fine pass sees it
        return float(g[: p.layout.S] @ x[: p.layout.S]) > self.gain_ub - LOOSE_TOL

    @property
    def allowance_cents(self) -> int | None:
        """The allowance the passes kept: the settings', 0 once a negative one gave way, None: none."""
        allowance = self.account.settings.gain_allowance_cents
        if allowance is None or not self.account.settings.taxable:
            return None
        return 0 if self.gain_ub == 0.0 and allowance < 0 else allowance

    def solved(self, layout: Layout, x: np.ndarray) -> Solution:
        notes = tuple(self.notes)
        return Solution(
            SolveStatus.OPTIMAL,
            None,
            layout,
            x,
            self.passes,
            self.iterations,
            notes,
            self.allowance_cents,
            self.cash_max,
        )

    def failed(self, res: PassResult, te_min: float | None = None) -> Solution:
        allowance = self.allowance_cents if self.gain_blocked else None
        tilted = tilts.unreachable(self.account, self.limits, self.cache) if res.status.infeasible else None
        reason = tilted or _reason(res, self.account, self.limits, te_min, allowance)
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
        side_pass = Pass(coarse, la.coarse_slot, sides, relaxation=True)
        res = _side_relaxation(runner, side_pass)
        if not res.status.ok:
            return runner.failed(res)
        need_loss = runner.gain_binds(side_pass, res.x)
        sides = decide_sides(account, sides, coarse, res.x, need_loss=need_loss, forced=limits.excluded)
        sides = _flip_search(runner, Pass(fine, la.slot, sides), coarse, res.x)
        # the relaxation's trades already show most names it trades by less than the minimum:
        # closed now, the fine pass starts near the answer and ``fewer_orders`` rarely re-solves
        # (unless closing them leaves the account nothing to trade that its limits need)
        closed = minimums.closed_sides(
            account, sides, *minimums.to_close(account, limits, coarse, la.coarse_slot, res.x)
        )
        res = runner.attempt(Pass(fine, la.slot, closed))
        if res.status.ok:
            sides = closed
    if not harvestable or not res.status.ok:
        res = runner.run(Pass(fine, la.slot, sides))
    if not res.status.ok:
        return runner.failed(res)
    te = snap.model.te(res.x[fine.oa : fine.oa + n])
    if te > settings.te_max * (1 + 1e-4):  # the penalty alone broke the budget: the SOC form
        return _soc_pass(runner, fine, sides, harvestable, te)
    return runner.solved(fine, fewer_orders(runner, Pass(fine, la.slot, sides), res.x))


def fewer_orders(runner: _Runner, p: Pass, x: np.ndarray) -> np.ndarray:
    """``x`` with every name traded by at least the minimum or not at all, and at most
    ``max_names_traded`` names (``solver.minimums``): sub-minimum sides closed, re-solved — when
    the name limit binds, or what is under the minimum is worth a re-solve (else the rounding
    drops it). A re-solve that fails, or breaks the TE budget outside the cone, keeps the last
    solution (the rounding then drops what is under the minimum), with a note."""
    account, limits = runner.account, runner.limits
    te_max = account.settings.te_max * (1 + 1e-4)
    for _ in range(minimums.ROUNDS):
        sell, buy = minimums.to_close(account, limits, p.layout, p.slot, x)
        sold, bought = minimums.traded(p.layout, x)
        most = account.settings.max_names_traded
        if not minimums.worth_solving(sold[sell & (sold > EPS_W)].sum() + bought[buy & (bought > EPS_W)].sum()) and (
            most is None or int(((sold + bought) > EPS_W).sum()) <= most
        ):
            return x  # the rounding drops what is under the minimum and invests the cash it frees
        sides = minimums.closed_sides(account, p.sides, sell, buy)
        res = runner.attempt(replace(p, sides=sides))
        if not res.status.ok or account.snap.model.te(res.x[p.layout.oa : p.layout.oa + p.layout.n]) > te_max:
            runner.notes.append(
                "minimum trade: closing the names traded under the minimum "
                + ("breaks the TE budget" if res.status.ok else f"is not feasible ({res.clarabel})")
                + "; the rounding drops them instead"
            )
            return x
        p, x = replace(p, sides=sides), res.x
    return x


def decide_sides(
    account: Account,
    sides: Sides,
    coarse: Layout,
    x: np.ndarray,
    need_loss: bool = False,
    forced: np.ndarray | None = None,
) -> Sides:
    """Sell side (no buys) for names whose loss lots the coarse pass sold at least as much as it
    bought; buy side (no loss sales) for the other names with sellable loss lots. ``forced``:
    names that must be sold (excluded), sell side whatever the coarse pass did.

    ``need_loss`` (the gain budget binds the coarse pass: its losses offset the gains it may
    realize, or make the net loss a negative allowance asks for): every name whose losses the
    coarse pass harvested is sell side, even where the relaxation also bought it back — the wash
    sale the fine pass may not do; without those losses the fine pass could not keep the budget."""
    la, n = account.lot_slots, account.n
    bought = x[coarse.ob : coarse.ob + n]
    loss_sold = x[0 : coarse.S : 2]
    has_loss = np.bincount(la.name, weights=la.loss & sides.sellable, minlength=n) > 0
    # a loss sale smaller than a minimum trade is solver noise, not a decision to harvest
    decided = max(EPS_W, 0.5 * account.settings.min_trade_dollars / account.value)
    sell_side = has_loss & (loss_sold > decided) & ((loss_sold >= bought) | need_loss)
    if forced is not None:  # an excluded name is sold, losses and all: it is never buy side
        sell_side |= has_loss & forced
    return Sides(
        sellable=sides.sellable & ~(la.loss & (has_loss & ~sell_side)[la.name]),
        buy_ub=np.where(sell_side, 0.0, sides.buy_ub),
    )


# The side relaxation charges a rebuy of a name with sellable loss lots this share of the harvest it
# would forfeit (``rebuy_charge``). Measured against the MIP reference on 20 tuning accounts (40
# names, seeds apart from benchmarks/solve_quality.py's), median / p90 of what the side choice left
# behind, bps of account value: 0 (the plain relaxation) 39.9 / 75.0; 0.4 2.7 / 6.6; 0.5 2.7 / 6.8;
# 0.6 1.6 / 9.2; 0.75 2.0 / 6.6; 1 (overcharges the names that end buy side) 2.7 / 6.3.
REBUY_CHARGE = 0.6
# The one-flip search (``_flip_search``): at most MAX_FLIPS names, and FLIP_SLOTS // (the fine
# layout's lot slots), each one fine solve, one more for its base. A fine solve's time grows with
# its slots (~5–8 ms at 500 names × 4), so the search costs at most about half of one such solve:
# none at 500 names × 4 slots, 5 names at 50. On the tuning accounts 8 flips took the median from
# 1.6 to 0.1 bps (p90 9.2 to 6.0); on benchmarks/solve_quality.py's from 0.37 to 0.09 (p90 2.3 to
# 0.5). Off by default: the charged relaxation alone meets the targets there (median ≤ 0.5, p90 ≤ 3)
# at no extra solve, and in a 12-name weekly backtest (tests/unit/test_backtest.py) the deeper
# harvests it finds left later weeks with too few names the wash-sale windows let it buy to meet
# the TE budget (2 failed rebalances, none without it).
MAX_FLIPS = 0
FLIP_SLOTS = 1000


def rebuy_charge(account: Account, limits: Limits) -> np.ndarray:
    """(n,) extra cost per weight bought (problem units) of each name with sellable loss lots:
    ``REBUY_CHARGE`` × the net value of harvesting it (the tax its sellable loss lots save per weight
    sold, less the trading cost of selling and buying back), 0 elsewhere.

    The plain relaxation may sell a name's loss lots and buy them back, which costs it nothing: it
    harvests every loss and rebuys, and the rule ``loss_sold >= bought`` is left to split hairs over
    a few bps of net trade. With the rebuy charged, a wash keeps only part of the harvest, so the
    relaxation itself weighs each harvest against the tracking error of not buying the name back
    (and buys substitutes instead), and most names come out on one side."""
    s, la, n = account.settings, account.lot_slots, account.n
    harvest = la.loss & limits.sellable
    held = np.bincount(la.name, weights=la.weight * harvest, minlength=n)
    tax = np.bincount(la.name, weights=la.weight * la.tax * harvest, minlength=n)
    per_weight = np.divide(tax, held, out=np.zeros(n), where=held > 0)  # ≤ 0: a benefit
    value = -(s.lambda_tax * per_weight + 2 * s.cost_bps / 1e4) * OBJ_SCALE / s.lambda_te
    return REBUY_CHARGE * np.where(held > 0, np.maximum(value, 0.0), 0.0)


def _charged_solve(runner: _Runner, p: Pass, charge: np.ndarray | None = None) -> tuple[PassResult, np.ndarray]:
    """``p`` with ``charge`` added to the buys' cost, retried with the careful settings on numerical
    trouble like ``runner.run``, but with no give-way (each solve counted as a pass); and its ``q``."""
    q, b, g = runner._fill(p)
    if charge is not None:
        q[p.layout.ob : p.layout.ob + p.layout.n] += charge
    model = runner.account.snap.model
    for robust in (False, True):
        name, x, it = runner.cache.get(model, p.layout, robust=robust).solve(q, b, g)
        runner.passes, runner.iterations = runner.passes + 1, runner.iterations + it
        res = PassResult(from_clarabel(name), name, x)
        if res.status.ok or res.status.infeasible:
            break
    return res, q


def _side_relaxation(runner: _Runner, p: Pass) -> PassResult:
    """The side decision's relaxed pass with each loss name's rebuy charged (``rebuy_charge``).

    When its TE breaks the budget (which the fine pass will then keep as a cone), the same with the
    budget as a cone: the harvests a tight budget allows are not those its penalty alone picks.
    When the charged pass does not solve: the plain one through ``runner.run`` (its give-way: the
    limits are the same), then the charged one again on what gave way; else the plain one's ``x``."""
    account = runner.account
    charge = rebuy_charge(account, runner.limits)
    if not charge.any():
        return runner.run(p)
    res, _ = _charged_solve(runner, p, charge)
    if not res.status.ok:
        plain = runner.run(p)
        if not plain.status.ok:
            return plain
        res, _ = _charged_solve(runner, p, charge)
        if not res.status.ok:
            return plain
    lay = p.layout
    if account.snap.model.te(res.x[lay.oa : lay.oa + lay.n]) > account.settings.te_max * (1 + 1e-4):
        cone = Pass(replace(lay, cone=True), p.slot, p.sides, relaxation=True)
        within, _ = _charged_solve(runner, cone, charge)
        if within.status.ok:
            return within
    return res


def _flip_search(runner: _Runner, p: Pass, coarse: Layout, x: np.ndarray) -> Sides:
    """``p``'s sides (``decide_sides``), improved on the fine problem. A name with sellable loss lots
    that may not be bought goes sell side (its buy side only forbids the loss sales). Then a one-flip
    local search: up to ``flips`` names (``FLIP_SLOTS``) the relaxation ``x`` harvested and bought back in
    near equal amounts (closest first: there the rule ``loss_sold >= bought`` is a coin toss) move to
    the other side, each kept when the fine objective falls and the TE budget holds (or the TE does
    not rise). Excluded names stay sell side; no flip allowed: the sides as ``decide_sides`` left them.

    Each try is one fine solve (~5–8 ms at 500 names), the base one more: the bound keeps the search
    to a few, and accounts with no close call spend none (benchmarks/solve_quality.py measures both)."""
    account, limits = runner.account, runner.limits
    la, n, s = account.lot_slots, account.n, account.settings
    flips = min(MAX_FLIPS, FLIP_SLOTS // p.layout.S)
    if flips <= 0:
        return p.sides
    base = Sides.of(limits)
    has_loss = np.bincount(la.name, weights=la.loss & base.sellable, minlength=n) > 0
    sell = np.bincount(la.name, weights=la.loss & p.sides.sellable, minlength=n) > 0  # p's sell side
    sell |= has_loss & (base.buy_ub <= 0)

    def sides_of(sell: np.ndarray) -> Sides:
        return Sides(
            sellable=base.sellable & ~(la.loss & (has_loss & ~sell)[la.name]),
            buy_ub=np.where(sell, 0.0, base.buy_ub),
        )

    bought, loss_sold = x[coarse.ob : coarse.ob + n], x[0 : coarse.S : 2]
    decided = max(EPS_W, 0.5 * s.min_trade_dollars / account.value)
    close = has_loss & ~limits.excluded & (base.buy_ub > 0) & (loss_sold > decided) & (bought > decided)
    if not close.any():
        return sides_of(sell)
    nearness = np.abs(loss_sold - bought) / np.maximum(loss_sold, bought)
    order = np.flatnonzero(close)[np.argsort(nearness[close], kind="stable")][:flips]
    model = account.snap.model

    def value(sell: np.ndarray, layout: Layout) -> tuple[float, float] | None:
        """The fine objective (OBJ_SCALE·TE² + qᵀx) and TE with ``sell``; None: it did not solve."""
        res, q = _charged_solve(runner, Pass(layout, p.slot, sides_of(sell)))
        if not res.status.ok:
            return None
        a = res.x[layout.oa : layout.oa + n]
        return OBJ_SCALE * model.variance(a) + float(q @ res.x), model.te(a)

    layout = p.layout
    best = value(sell, layout)
    if best is not None and best[1] > s.te_max * (1 + 1e-4):  # the budget will be a cone: compare with it
        layout = replace(layout, cone=True)
        best = value(sell, layout)
    if best is None:
        return sides_of(sell)
    for i in order:
        trial = sell.copy()
        trial[i] = ~trial[i]
        got = value(trial, layout)
        if got is not None and got[0] < best[0] - 1e-9 and (got[1] <= s.te_max * (1 + 1e-4) or got[1] <= best[1]):
            sell, best = trial, got
    return sides_of(sell)


def _soc_pass(runner: _Runner, fine: Layout, sides: Sides, harvestable: bool, te: float) -> Solution:
    """The fine pass again with the TE budget as a second-order cone. When the sides chosen for
    harvesting cannot meet the budget, harvests are given up name by name (``_release``)."""
    la = runner.account.lot_slots
    cone = Layout(n=fine.n, L=fine.L, K=fine.K, cone=True)
    res = runner.run(Pass(cone, la.slot, sides))
    te_sides = None
    if res.status.infeasible and harvestable:
        te_sides = _te_sides(runner, fine)
        sides, res = _release(runner, cone, sides, te_sides, res)
    if not res.status.ok:
        if res.status.infeasible:  # say how far the budget is: the least TE found wash-safe
            least = runner.least_te(Pass(fine, la.slot, te_sides or sides), tax=0.01)
            if least is not None and runner.limits.paced and runner.gain_ub < GAIN_UNBOUND:  # a transition
                runner.notes.append(
                    f"TE budget {runner.account.settings.te_max:.2%} cannot be met within tonight's gain allowance "
                    f"({PACED}); traded to the least TE it allows, {least[0]:.2%}"
                )
                return runner.solved(fine, least[1])
            if least is not None and _windows_bind(runner, fine):
                runner.notes.append(
                    f"TE budget {runner.account.settings.te_max:.2%} cannot be met tonight: "
                    f"{int((runner.limits.no_buy & ~runner.limits.excluded).sum())} names may not be bought or "
                    f"sold at a loss (household wash-sale windows); traded to the least TE they allow, {least[0]:.2%}"
                )
                return runner.solved(fine, least[1])
            te = te if least is None else least[0]
        return runner.failed(res, te_min=te)
    return runner.solved(fine, fewer_orders(runner, Pass(cone, la.slot, sides), res.x))


def _windows_bind(runner: _Runner, fine: Layout) -> bool:
    """Would the TE budget hold without tonight's wash-sale windows (every lot sellable, every
    name not excluded buyable)? Then the windows, which pass in 30 days, are what breaks it."""
    account, limits = runner.account, runner.limits
    free = Sides(np.ones_like(limits.sellable), np.where(limits.excluded, 0.0, limits.cap))
    if np.array_equal(free.buy_ub, limits.buy_ub) and limits.sellable.all():
        return False
    coarse = Layout(n=account.n, L=2, K=fine.K, loose=True)
    least = runner.least_te(Pass(coarse, account.lot_slots.coarse_slot, free, relaxation=True))
    return least is not None and least[0] <= account.settings.te_max


def sell_side(account: Account, sides: Sides) -> np.ndarray:
    """(n,) bool: the names ``sides`` lets sell loss lots (the sell side of the side decision)."""
    la = account.lot_slots
    return np.bincount(la.name, weights=la.loss & sides.sellable, minlength=account.n) > 0


def sides_with(account: Account, limits: Limits, sell: np.ndarray) -> Sides:
    """The account's limits narrowed to a side per name: ``sell`` names may sell loss lots and not
    buy, the others may buy and not sell loss lots (gain lots stay sellable either way)."""
    la = account.lot_slots
    return Sides(limits.sellable & ~(la.loss & ~sell[la.name]), np.where(sell, 0.0, limits.buy_ub))


def _te_sides(runner: _Runner, fine: Layout) -> Sides:
    """The sides nearest the least tracking error: the side decision on a TE-only relaxation."""
    account, limits = runner.account, runner.limits
    la, n = account.lot_slots, account.n
    coarse = Layout(n=n, L=2, K=fine.K, loose=True)
    p = Pass(coarse, la.coarse_slot, Sides.of(limits), relaxation=True)
    q, b, g = runner._fill(p)
    name, x, _ = runner.cache.get(account.snap.model, coarse).solve(np.zeros_like(q), b, g)
    if not from_clarabel(name).ok:
        return Sides(limits.sellable & ~la.loss, limits.buy_ub)  # no harvest at all
    bought, loss_sold = x[coarse.ob : coarse.ob + n], x[0 : coarse.S : 2]
    return sides_with(
        account, limits, (loss_sold > bought + EPS_W) | (limits.excluded & sell_side(account, Sides.of(limits)))
    )


def _release(runner: _Runner, cone: Layout, sides: Sides, te_sides: Sides, res: PassResult) -> tuple[Sides, PassResult]:
    """Harvest sides that break the TE budget, moved toward the TE sides name by name: the fewest
    names changed (found by bisection over the names where the two differ, the names the TE
    relaxation trades most first) with which the cone pass is feasible; when even the TE sides
    are not, every name with losses buy side (no harvest), as the last resort."""
    account, limits, la = runner.account, runner.limits, runner.account.lot_slots
    harvest, te = sell_side(account, sides), sell_side(account, te_sides)
    differ = np.flatnonzero(harvest != te)
    w0 = account.w0
    differ = differ[np.argsort(-w0[differ], kind="stable")]  # the larger holdings first

    def at(k: int) -> Sides:
        sell = harvest.copy()
        sell[differ[:k]] = te[differ[:k]]
        return sides_with(account, limits, sell)

    best = runner.attempt(Pass(cone, la.slot, at(len(differ))))
    if not best.status.ok:
        last = Sides(sides.sellable & ~la.loss, limits.buy_ub)
        return last, runner.run(Pass(cone, la.slot, last))
    lo, hi = 0, len(differ)  # infeasible at lo (tried), feasible at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = runner.attempt(Pass(cone, la.slot, at(mid)))
        if r.status.ok:
            hi, best = mid, r
        else:
            lo = mid
    runner.notes.append(f"TE budget: {hi} of {len(differ)} names gave up their harvest to keep the budget")
    return at(hi), best


def _reason(
    res: PassResult, account: Account, limits: Limits, te_min: float | None, blocked_by: int | None = None
) -> str:
    """Why the account could not be solved; ``blocked_by``: the gain allowance it could not keep."""
    s, excluded = account.settings, limits.excluded
    if te_min is not None and res.status.infeasible:
        within = "" if blocked_by is None else f" within tonight's gain allowance {dollars(blocked_by)}"
        return (
            f"TE budget {s.te_max:.2%} cannot be met{within}: the least tracking error these limits allow "
            f"is {te_min:.2%} ({int(excluded.sum())} names excluded, cap {s.max_weight:.1%}); "
            + ("raise te_max or relax the exclusions" if blocked_by is None else "raise the gain budget or te_max")
        )
    if blocked_by is not None and res.status.infeasible:
        return (
            f"gain budget: tonight's allowance {dollars(blocked_by)} cannot be kept: the limits force sales "
            f"({int(excluded.sum())} names excluded, cap {s.max_weight:.1%}, cash target {s.cash_target:.2%}) "
            "that realize more net gain; raise the gain budget or relax those limits"
        )
    if res.status.infeasible:
        return (
            f"constraints cannot all hold ({int(excluded.sum())} names excluded, cap "
            f"{s.max_weight:.1%}, cash target {s.cash_target:.2%}); CLARABEL: {res.clarabel}"
        )
    return f"CLARABEL stopped with status {res.clarabel}"
