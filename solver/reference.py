"""The same per-pass problem written plainly in CVXPY (an independent model of ``solver.problem``).

Built fresh per account it is the "naive" baseline of ``benchmarks/solve_latency.py``; reused with
``warm_start`` it is CVXPY's own cached path; the tests check the CLARABEL problem against it.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from .problem import LOOSE_TOL, MAX_TILTS, OBJ_SCALE, TOL, Layout, updatable
from .riskmodel import RiskModel

_STATUS = {
    cp.OPTIMAL: "Solved",
    cp.OPTIMAL_INACCURATE: "AlmostSolved",
    cp.INFEASIBLE: "PrimalInfeasible",
    cp.INFEASIBLE_INACCURATE: "AlmostPrimalInfeasible",
    cp.UNBOUNDED: "DualInfeasible",
    cp.UNBOUNDED_INACCURATE: "AlmostDualInfeasible",
    cp.USER_LIMIT: "MaxIterations",
}  # cvxpy's statuses as CLARABEL names (the inverse of ``solver.status.CLARABEL_STATUS``)


class ParamCvxpyProblem:
    """The same pass as a DPP-parametrized CVXPY problem: compiled once, re-solved with new values.

    This is how the problem is usually written for reuse in CVXPY (q and b as ``cp.Parameter``,
    the risk model as constants); built fresh per account it is the issue's "naive" baseline.
    """

    def __init__(self, model: RiskModel, layout: Layout) -> None:
        lay, M = layout, model
        n, S, K = lay.n, lay.S, lay.K
        self.layout = lay
        self.s, self.buy, self.a, self.y = cp.Variable(S), cp.Variable(n), cp.Variable(n), cp.Variable(K)
        s, buy, a, y = self.s, self.buy, self.a, self.y
        self.q_s, self.q_b = cp.Parameter(S), cp.Parameter(n)
        self.rhs, self.s_ub, self.b_ub = cp.Parameter(n), cp.Parameter(S), cp.Parameter(n)
        self.a_ub, self.budget = cp.Parameter(n), cp.Parameter(2)
        self.g, self.gain_ub = cp.Parameter(S), cp.Parameter()  # net gain per weight sold, its bound
        self.tilt, self.tilt_ub = cp.Parameter((MAX_TILTS, n)), cp.Parameter(MAX_TILTS)  # −sign·s/scale, −bound
        E = sp.csr_matrix((np.ones(S), (np.repeat(np.arange(n), lay.L), np.arange(S))), shape=(n, S))
        Fh = np.linalg.cholesky(M.F + 1e-14 * np.eye(K))
        objective = (
            OBJ_SCALE * (cp.sum_squares(cp.multiply(np.sqrt(M.D), a)) + cp.sum_squares(Fh.T @ y))
            + self.q_s @ s
            + self.q_b @ buy
        )
        cons = [
            a + E @ s - buy == self.rhs,
            y == M.B.T @ a,
            s >= 0,
            s <= self.s_ub,
            buy >= 0,
            buy <= self.b_ub,
            a <= self.a_ub,
            cp.sum(a) <= self.budget[0],
            -cp.sum(a) <= self.budget[1],
            self.g @ s <= self.gain_ub,
            self.tilt @ a <= self.tilt_ub,
        ]
        if lay.cone:
            self.te = cp.Parameter(nonneg=True)
            cons.append(cp.norm(cp.hstack([Fh.T @ y, cp.multiply(np.sqrt(M.D), a)])) <= self.te)
        self.problem = cp.Problem(cp.Minimize(objective), cons)

    def solve(self, q: np.ndarray, b: np.ndarray, g: np.ndarray | None = None) -> tuple[str, np.ndarray, int]:
        lay = self.layout
        n, S = lay.n, lay.S
        g = updatable(lay, g)
        self.g.value = g[:S]
        self.tilt.value = g[S:].reshape(n, MAX_TILTS).T
        self.tilt_ub.value = b[lay.r_tilt : lay.r_tilt + MAX_TILTS]
        self.gain_ub.value = b[lay.r_gain]
        self.q_s.value, self.q_b.value = q[:S], q[lay.ob : lay.ob + n]
        self.rhs.value = b[:n]
        self.s_ub.value = b[lay.r_sub : lay.r_sub + S]
        self.b_ub.value = b[lay.r_bub : lay.r_bub + n]
        self.a_ub.value = b[lay.r_cap : lay.r_cap + n]
        self.budget.value = b[lay.r_budget : lay.r_budget + 2]
        if lay.cone:
            self.te.value = b[lay.r_soc]
        tol = LOOSE_TOL if lay.loose else TOL
        self.problem.solve(
            solver=cp.CLARABEL, warm_start=True, tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, max_threads=1
        )
        status = _STATUS.get(self.problem.status, self.problem.status)
        if self.s.value is None:
            return status, np.zeros(lay.nx), 0
        x = np.concatenate([self.s.value, self.buy.value, self.a.value, self.y.value])
        return status, x, int(self.problem.solver_stats.num_iters or 0)


class FreshCache:
    """A ``ProblemCache`` look-alike that builds a fresh CVXPY problem on every request (naive)."""

    def get(self, model: RiskModel, layout: Layout, robust: bool = False) -> ParamCvxpyProblem:
        return ParamCvxpyProblem(model, layout)


class CvxpyCache:
    """Compiled DPP problems reused through CVXPY (``warm_start=True``): the CVXPY-cached path."""

    def __init__(self) -> None:
        self._items: dict = {}

    def get(self, model: RiskModel, layout: Layout, robust: bool = False) -> ParamCvxpyProblem:
        key = (model.fingerprint, layout)
        if key not in self._items:
            self._items[key] = ParamCvxpyProblem(model, layout)
        return self._items[key]
