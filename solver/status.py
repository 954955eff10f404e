"""How a CLARABEL pass ended, as one enum with an explicit map from CLARABEL's status names.

Modelled on cvxpy's CLARABEL interface (``clarabel_conif.STATUS_MAP``): every name CLARABEL 0.11
reports is listed; a name not listed (a newer CLARABEL) is an error, with a warning, never optimal.
``SolveResult.status`` keeps its three public strings: ``SolveStatus.public.value``.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping
from types import MappingProxyType


class SolveStatus(enum.Enum):
    """Outcome of one pass in cvxpy's vocabulary; OPTIMAL, INFEASIBLE and ERROR are also public."""

    OPTIMAL = "optimal"
    OPTIMAL_INACCURATE = "optimal_inaccurate"
    INFEASIBLE = "infeasible"
    INFEASIBLE_INACCURATE = "infeasible_inaccurate"
    UNBOUNDED = "unbounded"
    UNBOUNDED_INACCURATE = "unbounded_inaccurate"
    USER_LIMIT = "user_limit"  # iteration or time limit: retried with the careful settings
    ERROR = "error"  # numerical trouble or an unknown status

    @property
    def ok(self) -> bool:
        """A solution to use (the reduced-accuracy one too, as CLARABEL's defaults allow)."""
        return self in _SOLVED

    @property
    def infeasible(self) -> bool:
        """A certificate that the limits cannot all hold: no retry with careful settings helps.

        Dual infeasibility counts too, as ``"Infeasible" in status`` did before the enum (every
        variable is bounded, so CLARABEL cannot find the problem unbounded in exact arithmetic).
        """
        return self in _CERTIFICATE

    @property
    def public(self) -> SolveStatus:
        """The ``SolveResult.status`` this outcome reports: OPTIMAL, INFEASIBLE or ERROR."""
        return SolveStatus.OPTIMAL if self.ok else SolveStatus.INFEASIBLE if self.infeasible else SolveStatus.ERROR


_SOLVED = frozenset({SolveStatus.OPTIMAL, SolveStatus.OPTIMAL_INACCURATE})
_CERTIFICATE = frozenset(
    {
        SolveStatus.INFEASIBLE,
        SolveStatus.INFEASIBLE_INACCURATE,
        SolveStatus.UNBOUNDED,
        SolveStatus.UNBOUNDED_INACCURATE,
    }
)

CLARABEL_STATUS: Mapping[str, SolveStatus] = MappingProxyType(
    {
        "Solved": SolveStatus.OPTIMAL,
        "AlmostSolved": SolveStatus.OPTIMAL_INACCURATE,
        "PrimalInfeasible": SolveStatus.INFEASIBLE,
        "AlmostPrimalInfeasible": SolveStatus.INFEASIBLE_INACCURATE,
        "DualInfeasible": SolveStatus.UNBOUNDED,
        "AlmostDualInfeasible": SolveStatus.UNBOUNDED_INACCURATE,
        "MaxIterations": SolveStatus.USER_LIMIT,
        "MaxTime": SolveStatus.USER_LIMIT,
        "CallbackTerminated": SolveStatus.USER_LIMIT,
        "NumericalError": SolveStatus.ERROR,
        "InsufficientProgress": SolveStatus.ERROR,
        "Unsolved": SolveStatus.ERROR,  # solve() returned without starting
    }
)
"""CLARABEL's ``SolverStatus`` names (``str(status)`` without the class prefix) → ``SolveStatus``."""


def from_clarabel(name: str) -> SolveStatus:
    """Map CLARABEL's status name; an unknown name warns and is an ERROR (never a solution)."""
    status = CLARABEL_STATUS.get(name)
    if status is None:
        warnings.warn(f"unknown CLARABEL status {name!r}: treated as a solver error", RuntimeWarning, stacklevel=2)
        return SolveStatus.ERROR
    return status
