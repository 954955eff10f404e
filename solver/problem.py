"""The compiled per-account problem: CLARABEL data built once, re-solved with new q and b.

Layout (weights are fractions of account value, TE is annualized):
  x = [s (n·L lot slots sold), b (n bought), a (n active weights), y (K factor exposures)]
  minimize   aᵀDa + yᵀFy + qᵀx                 (q: λ_tax/λ_te·tax per weight + cost/λ_te)
  subject to a + Σ_slots(s) − b = w0 − w_b       (zero cone, n rows)
             y − Bᵀa = 0                         (zero cone, K rows)
             0 ≤ s ≤ s_ub, 0 ≤ b ≤ b_ub           (blocked lots/buys and padding: ub = 0)
             a ≤ cap − w_b,  1 − cash_max ≤ Σ(a + w_b) ≤ 1 − cash_target
             gᵀs ≤ gain_ub                       (net realized gain, one row: ``solver.budget``)
             −Tᵀa ≤ −t                           (MAX_TILTS style-tilt rows: ``solver.tilts``)
             [optional] ‖(Lᵀy, √D·a)‖ ≤ TE_max    (SOC, only when the penalty alone breaks the budget)
Every account-specific number lives in q, b or g (the updatable A values: the gain row's S
coefficients, net gain per weight sold of each slot, then the tilt rows' MAX_TILTS × n
coefficients on a), so P and A's sparsity (explicit zeros kept) never change: CLARABEL's
``update(q=, b=)`` and a partial ``update(A=)`` of those values skip set-up (needs
``presolve_enable=False``). One compiled problem serves every account, with or without a budget
or tilts (an unused tilt row reads 0 ≤ GAIN_UNBOUND).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import clarabel
import numpy as np
import scipy.sparse as sp

from taxview.core.mandate import MAX_TILTS

from .riskmodel import RiskModel

TOL = 1e-6
LOOSE_TOL = 1e-4
OBJ_SCALE = 1e4  # objective in (percent)²: TE² of 1% is 1, so tolerances mean something
EPS_W = 1e-7  # weights below this are solver noise
# The gain row's bound when no budget applies (g = 0 then). It would never bind with any g either:
# gᵀs ≤ Σs ≤ 1 (g ≤ 1 as basis ≥ 0; s ≤ the held weights, which sum to ≤ 1). Not a huge number:
# CLARABEL scales its primal residual by ‖b‖, so an entry of 1e9 would loosen every row's tolerance.
GAIN_UNBOUND = 2.0
# Style-tilt rows in every compiled problem (``solver.tilts``): MAX_TILTS, the most styles a mandate
# may tilt (``taxview.core.mandate``); rows an account does not use have zero coefficients.


@dataclass(frozen=True, slots=True)
class Layout:
    n: int
    L: int  # lot slots per name
    K: int
    cone: bool = False  # with the TE-budget second-order cone
    loose: bool = False  # looser tolerances (a pass that only decides buy/sell sides)

    @property
    def S(self) -> int:
        return self.n * self.L

    @property
    def nx(self) -> int:
        return self.S + 2 * self.n + self.K

    # variable offsets
    @property
    def ob(self) -> int:
        return self.S

    @property
    def oa(self) -> int:
        return self.S + self.n

    @property
    def oy(self) -> int:
        return self.S + 2 * self.n

    # row offsets in b
    @property
    def r_nonneg(self) -> int:
        return self.n + self.K

    @property
    def r_sub(self) -> int:  # s ≤ s_ub
        return self.r_nonneg + self.S

    @property
    def r_bub(self) -> int:  # b ≤ b_ub
        return self.r_sub + self.S + self.n

    @property
    def r_cap(self) -> int:
        return self.r_bub + self.n

    @property
    def r_budget(self) -> int:
        return self.r_cap + self.n

    @property
    def r_gain(self) -> int:  # gᵀs ≤ gain_ub
        return self.r_budget + 2

    @property
    def r_tilt(self) -> int:  # MAX_TILTS rows: −(sign·s/scale)ᵀa ≤ −bound
        return self.r_gain + 1

    @property
    def G(self) -> int:  # the updatable A values: gain row (S), then tilt rows (n per row)
        return self.S + MAX_TILTS * self.n

    @property
    def r_soc(self) -> int:
        return self.r_tilt + MAX_TILTS

    @property
    def m(self) -> int:
        return self.r_soc + (1 + self.K + self.n if self.cone else 0)


def _settings(robust: bool = False, loose: bool = False, max_iter: int = 100) -> clarabel.DefaultSettings:
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.presolve_enable = False  # required for update() to skip set-up
    s.max_threads = 1
    s.tol_gap_abs = s.tol_gap_rel = s.tol_feas = LOOSE_TOL if loose else TOL
    s.tol_ktratio = 1e-3 if loose else 1e-5
    s.max_iter = max_iter
    # Measured: iterative refinement doubles the time per iteration here and moves the
    # objective by < 1e-12; a solve that fails without it is retried with it (``robust``).
    s.iterative_refinement_enable = robust
    return s


class CompiledProblem:
    """CLARABEL solver for one (risk model, layout); ``solve(q, b)`` re-solves in place."""

    def __init__(self, model: RiskModel, layout: Layout, robust: bool = False) -> None:
        n, L, K, S = layout.n, layout.L, layout.K, layout.S
        self.layout = layout
        nx = layout.nx
        # P (upper triangle): 2·D on a, 2·F on y
        P = sp.block_diag(
            [
                sp.csc_matrix((S + n, S + n)),
                sp.diags(2.0 * OBJ_SCALE * model.D),
                sp.csc_matrix(2.0 * OBJ_SCALE * np.triu(model.F)),
            ],
            format="csc",
        )
        rows = []
        slot_name = np.repeat(np.arange(n), L)
        # zero cone: a + Σs − b = rhs
        E_s = sp.csc_matrix((np.ones(S), (slot_name, np.arange(S))), shape=(n, S))
        I_n = sp.identity(n, format="csc")
        rows.append(sp.hstack([E_s, -I_n, I_n, sp.csc_matrix((n, K))]))
        # zero cone: y − Bᵀa = 0 (dense K×n block, it is small)
        rows.append(sp.hstack([sp.csc_matrix((K, S + n)), sp.csc_matrix(-model.B.T), sp.identity(K)]))
        # nonneg: −s ≤ 0, s ≤ ub, −b ≤ 0, b ≤ ub, a ≤ cap, Σa ≤ budget
        I_S = sp.identity(S, format="csc")
        Z = lambda r, c: sp.csc_matrix((r, c))  # noqa: E731
        rows.append(sp.hstack([-I_S, Z(S, 2 * n + K)]))
        rows.append(sp.hstack([I_S, Z(S, 2 * n + K)]))
        rows.append(sp.hstack([Z(n, S), -I_n, Z(n, n + K)]))
        rows.append(sp.hstack([Z(n, S), I_n, Z(n, n + K)]))
        rows.append(sp.hstack([Z(n, S + n), I_n, Z(n, K)]))
        rows.append(sp.hstack([Z(2, S + n), sp.csc_matrix(np.vstack([np.ones(n), -np.ones(n)])), Z(2, K)]))
        # gᵀs ≤ gain_ub: compiled with g = 1 so CLARABEL equilibrates it like the rows beside it; each
        # solve sets g (zeros without a budget: measured, a row Σs ≤ 2 instead costs ~3 iterations more)
        rows.append(sp.hstack([sp.csc_matrix(np.ones((1, S))), Z(1, 2 * n + K)]))
        # tilt rows on a, compiled with the ∞-norm every solve's rows have (``solver.tilts``: s/max|s|)
        rows.append(sp.hstack([Z(MAX_TILTS, S + n), sp.csc_matrix(np.ones((MAX_TILTS, n))), Z(MAX_TILTS, K)]))
        cones = [clarabel.ZeroConeT(n + K), clarabel.NonnegativeConeT(2 * S + 3 * n + 3 + MAX_TILTS)]
        if layout.cone:
            Lc = np.linalg.cholesky(model.F + 1e-14 * np.eye(K))
            rows.append(sp.csc_matrix((1, nx)))  # the TE_max row (b only)
            rows.append(sp.hstack([Z(K, S + 2 * n), sp.csc_matrix(-Lc.T)]))
            rows.append(sp.hstack([Z(n, S + n), sp.diags(-np.sqrt(model.D)), Z(n, K)]))
            cones.append(clarabel.SecondOrderConeT(1 + K + n))
        A = sp.vstack(rows, format="csc")
        assert A.shape == (layout.m, nx), (A.shape, layout.m, nx)
        # where the gain row's coefficients sit in A's values (CSC: one per slot column, in order)
        gain_nz = np.flatnonzero(A.indices == layout.r_gain)
        assert len(gain_nz) == S, (len(gain_nz), S)
        # the tilt rows' values, CSC order: column by column of a, MAX_TILTS rows each (g's order)
        tilt_nz = np.flatnonzero((A.indices >= layout.r_tilt) & (A.indices < layout.r_tilt + MAX_TILTS))
        assert len(tilt_nz) == MAX_TILTS * n, (len(tilt_nz), MAX_TILTS * n)
        self._gain_nz = np.concatenate([gain_nz, tilt_nz])
        self._g = np.ones(layout.G)
        self._q = np.zeros(nx)
        self._b = np.zeros(layout.m)
        self.solver = clarabel.DefaultSolver(P, self._q, A, self._b, cones, _settings(robust, layout.loose))
        self.solves = 0

    def solve(self, q: np.ndarray, b: np.ndarray, g: np.ndarray | None = None) -> tuple[str, np.ndarray, int]:
        """Returns (status, x, iterations); status is CLARABEL's status name (``solver.status`` maps it).

        ``g``: the updatable A values (``Layout.G``): the gain row's S coefficients, then the tilt
        rows' (n, MAX_TILTS) coefficients raveled (only S values: no tilts); None: zeros (no budget,
        no tilts: those rows read 0 ≤ b's bound). Given on every call, so a solve never depends on
        the account solved before it.
        """
        g = updatable(self.layout, g)
        if not np.array_equal(g, self._g):
            self.solver.update(A=(self._gain_nz, g))
            self._g = g.copy()
        self.solver.update(q=q, b=b)
        sol = self.solver.solve()
        self.solves += 1
        return str(sol.status).split(".")[-1], np.asarray(sol.x), int(sol.iterations)


def updatable(layout: Layout, g: np.ndarray | None) -> np.ndarray:
    """``g`` as the layout's G updatable A values (S values alone: the tilt rows' are zeros)."""
    out = np.zeros(layout.G)
    if g is not None:
        g = np.asarray(g, dtype=np.float64)
        out[: len(g)] = g
    return out


class ProblemCache:
    """Explicit, bounded LRU cache of compiled problems keyed by (risk model, layout).

    Owned by its caller, one per worker process: CLARABEL solvers do not pickle and are not
    thread safe.
    """

    def __init__(self, maxsize: int = 8) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, CompiledProblem] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, model: RiskModel, layout: Layout, robust: bool = False) -> CompiledProblem:
        key = (model.fingerprint, layout, robust)
        prob = self._items.get(key)
        if prob is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return prob
        self.misses += 1
        prob = CompiledProblem(model, layout, robust)
        self._items[key] = prob
        if len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        return prob

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
