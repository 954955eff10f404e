"""taxview's per-account tax-aware solver (pure: no Redis, no Ray)."""

from .errors import InputError, SolverError, TaxviewError
from .market import Market, read_market, synthesize, write_market
from .problem import DEFAULT_CACHE, ProblemCache
from .riskmodel import RiskModel, estimate, read_riskmodel, write_riskmodel
from .snapshot import Snapshot, snapshot
from .solve import solve_account
from .types import AccountSettings, Lot, Realized, Restrictions, SolveResult, Trade

__all__ = [
    "AccountSettings",
    "DEFAULT_CACHE",
    "InputError",
    "Lot",
    "Market",
    "ProblemCache",
    "Realized",
    "Restrictions",
    "RiskModel",
    "Snapshot",
    "SolveResult",
    "SolverError",
    "TaxviewError",
    "Trade",
    "estimate",
    "read_market",
    "read_riskmodel",
    "snapshot",
    "solve_account",
    "synthesize",
    "write_market",
    "write_riskmodel",
]
