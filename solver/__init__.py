"""taxview's per-account tax-aware solver (pure: no Redis, no Ray)."""

import importlib

# Imported on first use (PEP 562): ``import solver.errors`` (the ledger, the CLI's start) should not
# pay for numpy, scipy and CVXPY.
_WHERE = {
    "InputError": "errors",
    "SolverError": "errors",
    "TaxviewError": "errors",
    "Market": "market",
    "read_market": "market",
    "synthesize": "market",
    "write_market": "market",
    "ProblemCache": "problem",
    "RiskModel": "riskmodel",
    "estimate": "riskmodel",
    "read_riskmodel": "riskmodel",
    "write_riskmodel": "riskmodel",
    "Snapshot": "snapshot",
    "snapshot": "snapshot",
    "solve_account": "solve",
    "SolveStatus": "status",
    "AccountSettings": "types",
    "Lot": "types",
    "Realized": "types",
    "Restrictions": "types",
    "SolveResult": "types",
    "Trade": "types",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AccountSettings",
    "InputError",
    "Lot",
    "Market",
    "ProblemCache",
    "Realized",
    "Restrictions",
    "RiskModel",
    "Snapshot",
    "SolveResult",
    "SolveStatus",
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
