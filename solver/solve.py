"""One account's tax-aware rebalance, in named stages.

    read_account   validate the input, price each lot's tax per dollar, lay lots out in slots
    account_limits exclusions, caps and household wash-sale restrictions per name and lot
    run_passes     side decision, fine solve, SOC pass only when the TE penalty broke the budget
    round_trades   whole shares (or fractional quanta), cash kept at or above its target, the net
                   realized gain checked against the gain allowance in cents (``solver.budget``)
    report         realized gains by term, weights after the trades, the ``SolveResult``

The compiled CLARABEL problems belong to the caller (``cache``): a worker keeps one
``ProblemCache`` for its life; without one, this call compiles its own and drops it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from taxview.core.records import Lot, Restrictions

from . import outside, tilts, transition
from .account import read_account, validate_lots, validate_settings
from .limits import account_limits
from .passes import run_passes
from .problem import ProblemCache
from .report import failed, report
from .rounding import round_trades
from .slots import MAX_SLOTS
from .snapshot import Snapshot
from .types import AccountSettings, SolveResult

__all__ = ["MAX_SLOTS", "solve_account", "validate_lots", "validate_settings"]


def solve_account(
    snap: Snapshot,
    lots: Sequence[Lot],
    cash_cents: int,
    settings: AccountSettings = AccountSettings(),
    restrictions: Restrictions = Restrictions(),
    cache: ProblemCache | None = None,
    max_slots: int = MAX_SLOTS,
    explain: bool = False,
) -> SolveResult:
    """Rebalance one account on ``snap.date``; never raises for an infeasible account.

    ``explain``: with tilts, also the TE they consume and the orders they turned (``solver.tilts``:
    a few more solves, so ``taxview solve`` asks for them and the nightly does not).
    Raises ``InputError`` for bad input (nothing is solved then).
    """
    t0 = time.perf_counter()
    cache = ProblemCache() if cache is None else cache
    account = read_account(snap, lots, cash_cents, settings, max_slots)
    limits = account_limits(account, restrictions)
    solution = run_passes(account, limits, cache)
    account, solution = transition.cash_gives_way(account, limits, cache, solution)
    if not solution.status.ok:
        result = failed(solution.status, solution.reason, t0, solution.passes, solution.iterations)
        return replace(result, reason=outside.combined_reason(account, result.reason))
    rounded = round_trades(account, limits, solution.layout, solution.x, solution.allowance_cents)
    result = report(account, limits, rounded, solution, t0)
    if explain and account.tilts:
        result = tilts.explained(result, account, limits, cache, rounded)
    return replace(result, notes=(*result.notes, limits.stuck_reason)) if limits.stuck else result
