"""The wash-safe optimum of one account's fine problem, as a mixed-integer program (SCIP), for tests
and benchmarks only: nothing in the solve imports this module (``pip install taxview[reference]``).

The problem is the fine pass of ``solver.passes`` (the account's slot layout, caps, cash, exclusions,
restrictions, gain row, the TE penalty) with the TE budget as a hard constraint (the fine pass and,
when the penalty breaks the budget, the SOC pass, together) — and no side decision: a binary per
name with sellable loss lots chooses its side, loss sales allowed and no buys (``sell side``) or
buys allowed and no loss sales (``buy side``), domain.md §3 rule 3. Its optimum is the best any
side decision can reach; the passes' objective minus it is what their side choice leaves behind.

Written independently of ``solver.problem`` (same data: ``solver.data.fill``), in the objective's
own units: ``OBJ_SCALE · TE² + qᵀx``, i.e. ``OBJ_SCALE / λ_te`` × (λ_te·TE² + λ_tax·tax + cost) in
fractions of account value; ``bps`` converts a difference to basis points of account value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyscipopt

from .account import Account
from .data import Pass, Sides, fill
from .limits import Limits
from .problem import OBJ_SCALE, Layout


@dataclass(frozen=True, slots=True)
class MipResult:
    status: str  # SCIP's status: "optimal", "gaplimit" (within the gap asked), "infeasible", "timelimit", ...
    objective: float  # OBJ_SCALE·TE² + qᵀx (nan unless a solution was found)
    x: np.ndarray | None  # on the fine layout, as the passes' x: [s, b, a, y]
    sell_side: np.ndarray | None  # (n,) bool: names whose loss lots may be sold (no buys)
    gap: float  # SCIP's relative gap at the end
    nodes: int
    seconds: float

    @property
    def solved(self) -> bool:
        """Optimal within the gaps asked."""
        return self.status in ("optimal", "gaplimit")


def fine_layout(account: Account) -> tuple[Layout, np.ndarray]:
    """The fine pass's layout and each lot's slot in it."""
    la = account.lot_slots
    return Layout(n=account.n, L=la.L, K=account.snap.model.B.shape[1]), la.slot


def objective(account: Account, limits: Limits, x: np.ndarray) -> float:
    """The fine problem's objective at ``x`` (the passes' or the MIP's): OBJ_SCALE·TE² + qᵀx."""
    layout, slot = fine_layout(account)
    q, _, _ = fill(account, limits, Pass(layout, slot, Sides.of(limits)), account.settings.cash_max, limits.gain_ub)
    a = x[layout.oa : layout.oa + layout.n]
    return OBJ_SCALE * account.snap.model.variance(a) + float(q @ x)


def bps(account: Account, objective_difference: float) -> float:
    """An objective difference in basis points of account value (tax + TE penalty + cost dollars / V)."""
    return objective_difference * account.settings.lambda_te / OBJ_SCALE * 1e4


def wash_safe_optimum(
    account: Account,
    limits: Limits,
    *,
    cash_max: float | None = None,
    gain_ub: float | None = None,
    te_max: float | None = None,
    sell_side: np.ndarray | None = None,
    time_limit: float = 120.0,
    gap: float = 1e-7,
    absgap: float = 1e-5,
) -> MipResult:
    """The best wash-safe fine solution; ``sell_side`` (n,) bool fixes every name's side instead
    (a check of this model against the passes). ``cash_max``/``gain_ub``: the passes' values when
    they gave way (default: the settings' and the limits'); ``te_max``: the budget (default the
    settings'; ``inf``: none, the penalty alone). ``gap``/``absgap``: SCIP stops within them of the
    optimum (relative; objective units, 1e-5 is 0.0005 bps at λ_te = 50): closer costs it minutes."""
    t0 = time.perf_counter()
    s = account.settings
    model, la, n = account.snap.model, account.lot_slots, account.n
    layout, slot = fine_layout(account)
    S, K, L = layout.S, layout.K, layout.L
    cash_max = s.cash_max if cash_max is None else cash_max
    gain_ub = limits.gain_ub if gain_ub is None else gain_ub
    te_max = s.te_max if te_max is None else te_max
    q, b, g = fill(account, limits, Pass(layout, slot, Sides.of(limits)), cash_max, gain_ub)
    rhs = b[:n]
    s_ub = b[layout.r_sub : layout.r_sub + S]
    b_ub = b[layout.r_bub : layout.r_bub + n]
    a_ub = b[layout.r_cap : layout.r_cap + n]
    budget_hi, budget_lo = b[layout.r_budget], -b[layout.r_budget + 1]
    loss_slot = np.zeros(S, dtype=bool)  # slots holding sellable loss lots (slots never mix losses and gains)
    loss_slot[slot[la.loss & limits.sellable]] = True
    choice = np.bincount(np.arange(S) // L, weights=loss_slot, minlength=n) > 0  # names with a side to choose

    m = pyscipopt.Model()
    m.hideOutput()
    m.setParam("limits/time", time_limit)
    m.setParam("limits/gap", gap)
    m.setParam("limits/absgap", absgap)
    m.setParam("numerics/feastol", 1e-9)
    m.setParam("numerics/dualfeastol", 1e-9)
    m.setParam("display/verblevel", 0)
    sv = [m.addVar(f"s{j}", lb=0.0, ub=float(s_ub[j])) for j in range(S)]
    bv = [m.addVar(f"b{i}", lb=0.0, ub=float(b_ub[i])) for i in range(n)]
    av = [m.addVar(f"a{i}", lb=None, ub=float(a_ub[i])) for i in range(n)]
    yv = [m.addVar(f"y{k}", lb=None, ub=None) for k in range(K)]
    # the quadratic in scaled units (percent): TE² ·OBJ_SCALE = Σ D·(100a)² + ‖Lᵀ(100y)‖²
    root = np.sqrt(OBJ_SCALE)
    Fh = np.linalg.cholesky(model.F + 1e-14 * np.eye(K))
    uv = [m.addVar(f"u{k}", lb=None, ub=None) for k in range(K)]
    ev = [m.addVar(f"e{i}", lb=None, ub=None) for i in range(n)]
    risk = m.addVar("risk", lb=0.0, ub=None if not np.isfinite(te_max) else OBJ_SCALE * te_max**2)
    for i in range(n):
        m.addCons(av[i] + pyscipopt.quicksum(sv[i * L + j] for j in range(L)) - bv[i] == float(rhs[i]))
        m.addCons(ev[i] == float(root * np.sqrt(model.D[i])) * av[i])
    for k in range(K):
        m.addCons(yv[k] == pyscipopt.quicksum(float(model.B[i, k]) * av[i] for i in range(n)))
        m.addCons(uv[k] == pyscipopt.quicksum(float(root * Fh[j, k]) * yv[j] for j in range(K)))
    total = pyscipopt.quicksum(av)
    m.addCons(total <= float(budget_hi))
    m.addCons(total >= float(budget_lo))
    if np.any(g != 0):
        m.addCons(pyscipopt.quicksum(float(g[j]) * sv[j] for j in range(S) if g[j] != 0) <= float(gain_ub))
    m.addCons(pyscipopt.quicksum(e * e for e in ev) + pyscipopt.quicksum(u * u for u in uv) <= risk)
    z = {}
    for i in np.flatnonzero(choice):
        z[i] = m.addVar(f"z{i}", vtype="B")
        if sell_side is not None:
            m.fixVar(z[i], float(bool(sell_side[i])))
        for j in range(i * L, (i + 1) * L):
            if loss_slot[j]:
                m.addCons(sv[j] <= float(s_ub[j]) * z[i])
        m.addCons(bv[i] <= float(b_ub[i]) * (1 - z[i]))
    lin = pyscipopt.quicksum(float(q[j]) * sv[j] for j in range(S) if q[j] != 0)
    lin += pyscipopt.quicksum(float(q[layout.ob + i]) * bv[i] for i in range(n) if q[layout.ob + i] != 0)
    m.setObjective(risk + lin, "minimize")
    m.optimize()
    status = m.getStatus()
    if m.getNSols() == 0:
        return MipResult(status, float("nan"), None, None, float("inf"), int(m.getNNodes()), time.perf_counter() - t0)
    sol = m.getBestSol()
    x = np.concatenate([[sol[v] for v in sv], [sol[v] for v in bv], [sol[v] for v in av], [sol[v] for v in yv]])
    sides = np.zeros(n, dtype=bool)
    for i, zi in z.items():
        sides[i] = sol[zi] > 0.5
    return MipResult(
        status,
        objective(account, limits, x),
        x,
        sides,
        float(m.getGap()),
        int(m.getNNodes()),
        time.perf_counter() - t0,
    )
