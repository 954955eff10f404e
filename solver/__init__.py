"""taxview's per-account tax-aware solver (pure: no Redis, no Ray)."""

import importlib

# Imported on first use (PEP 562): importing one solver module (the CLI's start) should not pay
# for numpy, scipy and CVXPY. The records shared with the ledger are in taxview.core.
_WHERE = {
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
    "Styles": "styles",
    "read_styles": "styles",
    "AccountSettings": "types",
    "Realized": "types",
    "SolveResult": "types",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AccountSettings",
    "Market",
    "ProblemCache",
    "Realized",
    "RiskModel",
    "Snapshot",
    "SolveResult",
    "SolveStatus",
    "Styles",
    "estimate",
    "read_market",
    "read_riskmodel",
    "read_styles",
    "snapshot",
    "solve_account",
    "synthesize",
    "write_market",
    "write_riskmodel",
]
