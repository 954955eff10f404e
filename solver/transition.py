"""Legacy transitions: the annual net realized-gain budget sets the pace toward the benchmark.

An account is paced (``Limits.paced``) when its mandate says ``transition`` or it holds names
outside the universe (benchmark weight 0, not delisted). Then (``solver.limits``) such names are
never bought nor forced out, a name over its cap is trimmed over time, and with no allowance left
(or a zero budget) nothing with a gain is sold; a TE budget the allowance cannot meet is traded
toward, to the least TE it allows (``solver.passes``), and the cash target gives way (here).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .passes import Solution, run_passes
from .problem import ProblemCache

if TYPE_CHECKING:
    from .account import Account
    from .limits import Limits

CASH_NOTE = "cash target gave way: raising it would realize gains past the transition's gain budget"


def cash_gives_way(
    account: Account, limits: Limits, cache: ProblemCache, solution: Solution
) -> tuple[Account, Solution]:
    """A paced account infeasible on its cash target (fully invested in legacy gains, raising the
    cash would realize what the budget does not allow) is solved again without it, noted."""
    if not (solution.status.infeasible and limits.paced and account.settings.cash_target > 0):
        return account, solution
    relaxed = replace(account, settings=replace(account.settings, cash_target=0.0))
    retry = run_passes(relaxed, limits, cache)
    if not retry.status.ok:
        return account, solution
    return relaxed, replace(retry, notes=(*retry.notes, CASH_NOTE))
