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

import numpy as np

from taxview.core.records import Lot, Restrictions

from . import tilts
from .account import Account, read_account, validate_lots, validate_settings
from .limits import account_limits
from .passes import run_passes
from .problem import ProblemCache
from .report import failed, report
from .rounding import Rounded, round_trades
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
    if solution.status.infeasible and limits.paced and account.settings.cash_target > 0:
        # a transition never fails on its cash target: fully invested in legacy gains, raising the
        # cash would realize what the gain budget does not allow; the target waits
        relaxed = replace(account, settings=replace(account.settings, cash_target=0.0))
        retry = run_passes(relaxed, limits, cache)
        if retry.status.ok:
            note = "cash target gave way: raising it would realize gains past the transition's gain budget"
            account, solution = relaxed, replace(retry, notes=(*retry.notes, note))
    if not solution.status.ok:
        result = failed(solution.status, solution.reason, t0, solution.passes, solution.iterations)
        return replace(result, reason=combined_reason(account, result.reason))
    rounded = round_trades(account, limits, solution.layout, solution.x, solution.allowance_cents)
    result = report(account, limits, rounded, solution, t0)
    if explain and account.tilts:
        result = replace(
            result,
            te_from_tilts=tilts.te_from_tilts(account, limits, cache),
            order_reasons=tilts.reasons(account, limits, cache, *_moved(account, rounded)),
        )
    return replace(result, notes=(*result.notes, limits.stuck_reason)) if limits.stuck else result


def combined_reason(account: Account, reason: str | None) -> str | None:
    """A failed account's reason, with outside holdings ``complete`` saying the TE figures in it
    are of the account's own units (the combined TE ÷ the account's share)."""
    if reason is None or account.alpha == 1.0 or "TE" not in reason:
        return reason
    return (
        f"{reason} (outside holdings, complete: the TE figures are the TE of account + outside holdings "
        f"÷ {account.alpha:.3f}, the account's share of the two; the mandate's budget is "
        f"{account.mandate.te_max:.2%} on the combined value)"
    )


def _moved(account: Account, rounded: Rounded) -> tuple[np.ndarray, np.ndarray]:
    """(bought, sold) (n,) weights of the rounded trades."""
    la, p, V = account.lot_slots, account.snap.prices, account.value
    bought, sold = np.zeros(account.n), np.zeros(account.n)
    for i, sh in rounded.buys:
        bought[i] += float(sh) * p[i] / V
    for k, sh in rounded.sells:
        sold[la.name[k]] += float(sh) * p[la.name[k]] / V
    return bought, sold
