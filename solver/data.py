"""Problem data fill: one pass's ``q`` and ``b`` for a compiled problem (``solver.problem``).

Every account-specific number enters the compiled problem here, and only here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .account import Account
from .limits import Limits
from .problem import GAIN_UNBOUND, MAX_TILTS, OBJ_SCALE, Layout
from .tilts import rows


@dataclass(frozen=True, slots=True)
class Sides:
    """What a pass may trade: the side decision narrows the account's limits."""

    sellable: np.ndarray  # (N,) bool: lots the pass may sell
    buy_ub: np.ndarray  # (n,) largest weight bought per name

    @classmethod
    def of(cls, limits: Limits) -> Sides:
        return cls(limits.sellable, limits.buy_ub)


@dataclass(frozen=True, slots=True)
class Pass:
    """One CLARABEL pass: the problem shape, the lots' slots in it, and what may be traded."""

    layout: Layout
    slot: np.ndarray  # (N,) slot of each lot in ``layout``
    sides: Sides
    relaxation: bool = False  # the side decision: the gain row takes each slot's least gain per weight


def fill(
    account: Account, limits: Limits, p: Pass, cash_max: float, gain_ub: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q, b, g) of ``p``; ``cash_max`` is the settings' or 1.0 once the cash limit gave way,
    ``gain_ub`` the limits' or 0 once a negative gain allowance gave way (``solver.budget``).
    ``g``: the updatable A values (the gain row, then the tilt rows: ``solver.tilts``). The
    outside holdings' offset d (``solver.outside``) moves the bounds on a = w − w_b + d."""
    snap, settings, la, n = account.snap, account.settings, account.lot_slots, account.n
    layout, slot = p.layout, p.slot
    cost = settings.cost_bps / 1e4
    S = layout.S
    held = np.bincount(slot, weights=la.weight, minlength=S)
    tax = np.bincount(slot, weights=la.weight * la.tax, minlength=S)
    q = np.zeros(layout.nx)
    q[:S] = settings.lambda_tax * np.divide(tax, held, out=np.zeros(S), where=held > 0) + cost
    q[layout.ob : layout.ob + n] = cost
    q *= OBJ_SCALE / settings.lambda_te
    d = account.offset
    shift = 0.0 if d is None else float(d.sum())
    b = np.zeros(layout.m)
    b[:n] = account.w0 - snap.benchmark
    b[layout.r_sub : layout.r_sub + S] = np.bincount(slot, weights=la.weight * p.sides.sellable, minlength=S)
    b[layout.r_bub : layout.r_bub + n] = p.sides.buy_ub
    b[layout.r_cap : layout.r_cap + n] = limits.cap - snap.benchmark
    if shift or (d is not None and d.any()):  # outside holdings ``complete`` (solver.outside)
        b[:n] += d
        b[layout.r_cap : layout.r_cap + n] += d
    b[layout.r_budget] = 1.0 - settings.cash_target - snap.benchmark.sum() + shift
    b[layout.r_budget + 1] = -(1.0 - cash_max - snap.benchmark.sum() + shift)
    b[layout.r_gain] = gain_ub
    g_all = np.zeros(layout.G)
    g_all[S:], b[layout.r_tilt : layout.r_tilt + MAX_TILTS] = rows(account.tilts, np.zeros(n) if d is None else d, n)
    g = g_all[:S]  # without a budget the row reads 0 ≤ GAIN_UNBOUND
    if gain_ub < GAIN_UNBOUND and p.relaxation:  # never stricter than the fine pass it decides for
        order = np.lexsort((account.gain, slot))
        least = np.r_[True, slot[order][1:] != slot[order][:-1]]  # each slot's first: its least gain
        g[slot[order][least]] = account.gain[order][least]
    elif gain_ub < GAIN_UNBOUND:  # net gain per weight sold, averaged over the slot's lots like the tax
        gain = np.bincount(slot, weights=la.weight * account.gain, minlength=S)
        np.divide(gain, held, out=g, where=held > 0)
    if layout.cone:
        b[layout.r_soc] = settings.te_max
    return q, b, g_all
