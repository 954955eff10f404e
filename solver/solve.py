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
) -> SolveResult:
    """Rebalance one account on ``snap.date``; never raises for an infeasible account.

    Raises ``InputError`` for bad input (nothing is solved then).
    """
    t0 = time.perf_counter()
    account = read_account(snap, lots, cash_cents, settings, max_slots)
    limits = account_limits(account, restrictions)
    solution = run_passes(account, limits, ProblemCache() if cache is None else cache)
    if not solution.status.ok:
        return failed(solution.status, solution.reason, t0, solution.passes, solution.iterations)
    rounded = round_trades(account, limits, solution.layout, solution.x, solution.allowance_cents)
    result = report(account, limits, rounded, solution, t0)
    return replace(result, notes=(*result.notes, limits.stuck_reason)) if limits.stuck else result
