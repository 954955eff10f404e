"""Style tilts (``AccountSettings.tilts``): the account's active exposure to a style at least t
standard deviations of the style's score (t < 0: at most t, a lean away).

With s (n,) the style's scores (``Snapshot.styles``), σ their cross-sectional standard deviation
and a the problem's active weights (w − w_b, plus the outside offset d in ``complete`` mode), a
tilt is one linear row sign(t)·sᵀ(a − d) ≥ |t|·σ, written in the compiled problem's nonnegative
cone as −(sign·s/c)ᵀa ≤ −(|t|·σ + sign·sᵀd)/c with c = max|s| (every tilt row has ∞-norm 1, as
compiled). The problem always has ``MAX_TILTS`` such rows; an account's unused ones have zero
coefficients and the bound GAIN_UNBOUND (0 ≤ 2): one compiled problem serves every account. Every
pass fills them (``solver.data``), so the side decision, its fallbacks, the least-TE computations
and the minimum-trade re-solves all keep the tilts. The rows ask for ``MARGIN`` more than the
target so whole-share rounding rarely falls short; the report re-checks the rounded trades and
notes a tilt they miss by more than ``TOLERANCE``.

Diagnostics: an infeasible account with tilts is asked, tilt by tilt, for the largest exposure
the TE budget allows (``unreachable``: a linear objective on the cone pass); with ``explain``, the
TE the tilts consume (least TE with them minus without) and which orders the tilts turned
(``tilt:<style>``: the name is traded that way only because of the tilt, by a solve without them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from taxview.core.errors import InputError
from taxview.core.mandate import MAX_TILTS

from .problem import GAIN_UNBOUND, Layout, ProblemCache
from .snapshot import Snapshot
from .status import from_clarabel
from .types import AccountSettings

if TYPE_CHECKING:
    from .account import Account
    from .limits import Limits
    from .rounding import Rounded
    from .types import SolveResult

MARGIN = 0.002  # standard deviations asked beyond the target (rounding's room)
TOLERANCE = 0.001  # standard deviations a rounded exposure may fall short before a note
PUSH = 1e4  # weight of the exposure in the largest-exposure objective (problem units)


@dataclass(frozen=True, slots=True, eq=False)
class Tilt:
    style: str
    target: float  # standard deviations of the score (< 0: a lean away)
    scores: np.ndarray  # (n,)
    sd: float  # cross-sectional standard deviation of the scores
    scale: float  # max |score|: the row's ∞-norm

    @property
    def sign(self) -> float:
        return -1.0 if self.target < 0 else 1.0

    def exposure(self, active: np.ndarray) -> float:
        """sᵀ(active) in standard deviations of the score."""
        return float(self.scores @ active) / self.sd


def account_tilts(settings: AccountSettings, snap: Snapshot) -> tuple[Tilt, ...]:
    """The mandate's tilts on the snapshot's styles; a style the market has no scores for is refused."""
    if not settings.tilts:
        return ()
    if len(settings.tilts) > MAX_TILTS:
        raise InputError("tilts", f"at most {MAX_TILTS} styles may be tilted, got {len(settings.tilts)}")
    if snap.styles is None:
        raise InputError("tilts", "the account tilts styles but the market has no styles.parquet")
    out = []
    for style, t in settings.tilts:
        if style not in snap.styles.names:
            raise InputError(f"tilts.{style}", f"no style {style!r} in the market (styles: {list(snap.styles.names)})")
        s = np.asarray(snap.styles.column(style), dtype=np.float64)
        sd, scale = float(np.std(s)), float(np.abs(s).max())
        if not sd > 0:
            raise InputError(f"tilts.{style}", f"style {style!r} has the same score for every name: nothing to tilt")
        out.append(Tilt(style, float(t), s, sd, scale))
    return tuple(out)


def rows(tilts: tuple[Tilt, ...], offset: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients (n·MAX_TILTS,) in the compiled problem's order, bounds (MAX_TILTS,))."""
    coef = np.zeros((n, MAX_TILTS))
    ub = np.full(MAX_TILTS, GAIN_UNBOUND)
    for j, t in enumerate(tilts):
        coef[:, j] = -t.sign * t.scores / t.scale
        ub[j] = -((abs(t.target) + MARGIN) * t.sd + t.sign * float(t.scores @ offset)) / t.scale
    return coef.ravel(), ub


def exposures(snap: Snapshot, tilts: tuple[Tilt, ...], active: np.ndarray) -> dict[str, tuple[float, float | None]]:
    """Every style's exposure of ``active`` (the account's own w − w_b), with the tilt's target."""
    if snap.styles is None:
        return {}
    targets = {t.style: t.target for t in tilts}
    out = {}
    for j, style in enumerate(snap.styles.names):
        s = snap.styles.scores[:, j]
        sd = float(np.std(s))
        out[style] = (float(s @ active) / sd if sd > 0 else 0.0, targets.get(style))
    return out


def missed(tilts: tuple[Tilt, ...], active: np.ndarray) -> tuple[str, ...]:
    """Notes for the tilts the rounded trades miss by more than ``TOLERANCE``."""
    notes = []
    for t in tilts:
        got = t.exposure(active)
        if t.sign * (got - t.target) < -TOLERANCE:
            side = "under" if t.sign > 0 else "over"
            notes.append(f"after rounding the {t.style} exposure is {got:.3f}, {side} its target {t.target:.3f}")
    return tuple(notes)


def _solve(account: Account, limits: Limits, cache: ProblemCache, layout: Layout, q_of, tilted: bool):
    """One diagnostic solve on the coarse relaxation of ``layout`` (the account's limits, no sides):
    ``q_of(q)`` gives the objective; without ``tilted`` the tilt rows are left out."""
    from .data import Pass, Sides, fill  # solver.data imports this module

    acc = account if tilted else replace(account, tilts=())
    p = Pass(layout, account.lot_slots.coarse_slot, Sides.of(limits), relaxation=True)
    q, b, g = fill(acc, limits, p, 1.0, limits.gain_ub)
    name, x, _ = cache.get(account.snap.model, layout).solve(q_of(q, layout), b, g)
    return x if from_clarabel(name).ok else None


def _coarse(account: Account, cone: bool = False) -> Layout:
    return Layout(n=account.n, L=2, K=account.snap.model.B.shape[1], cone=cone, loose=True)


def unreachable(account: Account, limits: Limits, cache: ProblemCache) -> str | None:
    """The reason an infeasible account fails on its tilts, or None when they are not the cause:
    each tilt's strongest exposure within the TE budget (and the limits), without the tilt rows."""
    if not account.tilts:
        return None
    lay = _coarse(account, cone=True)
    if _solve(account, limits, cache, lay, lambda q, lay: 0.01 * q, tilted=False) is None:
        return None  # infeasible without any tilt: something else
    short, reached = [], []
    te = f"TE budget {account.mandate.te_max:.2%}"
    for t in account.tilts:

        def push(q: np.ndarray, lay: Layout, t: Tilt = t) -> np.ndarray:
            q = np.zeros_like(q)
            q[lay.oa : lay.oa + lay.n] = -PUSH * t.sign * t.scores / t.scale
            return q

        x = _solve(account, limits, cache, lay, push, tilted=False)
        if x is None:
            continue
        most = t.exposure(x[lay.oa : lay.oa + lay.n] - account.offset)
        if t.sign * (most - t.target) < MARGIN:
            short.append(
                f"tilt {t.style} {t.target:+.2f} is unreachable: the strongest {t.style} exposure the {te} "
                f"allows is {most:+.2f}"
            )
        else:
            reached.append(f"{t.style} {t.target:+.2f} (alone up to {most:+.2f})")
    if short:
        return "; ".join(short) + " (standard deviations of the style score); lower the tilt or raise te_max"
    return (
        f"tilts unreachable together within the {te}: {', '.join(reached)} (standard deviations of the "
        "style score); lower the tilts or raise te_max"
    )


def te_from_tilts(account: Account, limits: Limits, cache: ProblemCache) -> float | None:
    """The TE the tilts consume: the least TE the limits allow with the tilts minus without (the
    budgeted TE: with outside holdings ``complete``, the combined), or None where either fails."""
    if not account.tilts:
        return 0.0
    lay = _coarse(account)
    tes = []
    for tilted in (True, False):
        x = _solve(account, limits, cache, lay, lambda q, lay: 0.01 * q, tilted)
        if x is None:
            return None
        tes.append(account.alpha * account.snap.model.te(x[lay.oa : lay.oa + lay.n]))
    return tes[0] - tes[1]


def reasons(
    account: Account, limits: Limits, cache: ProblemCache, bought: np.ndarray, sold: np.ndarray
) -> dict[tuple[str, str], str]:
    """(symbol, side) -> ``tilt:<style>`` for each rounded buy (sell) of a name that the same solve
    without the tilts does not buy (sell) — net of its relaxation — where a tilt favours that side;
    the style that favours it most. ``bought``/``sold``: (n,) weights the rounded trades move."""
    if not account.tilts:
        return {}
    lay = _coarse(account)
    x = _solve(account, limits, cache, lay, lambda q, lay: q, tilted=False)
    if x is None:
        return {}
    n, S = lay.n, lay.S
    net = x[lay.ob : lay.ob + n] - x[:S].reshape(n, lay.L).sum(axis=1)
    least = 0.5 * account.min_trade
    pull = np.column_stack([t.sign * t.scores / t.sd for t in account.tilts])  # (n, tilts): > 0 favours buying
    out = {}
    for i in np.flatnonzero((bought > 0) & (net < least)):
        j = int(np.argmax(pull[i]))
        if pull[i, j] > 0:
            out[(account.snap.symbols[i], "buy")] = f"tilt:{account.tilts[j].style}"
    for i in np.flatnonzero((sold > 0) & (net > -least)):
        j = int(np.argmin(pull[i]))
        if pull[i, j] < 0:
            out[(account.snap.symbols[i], "sell")] = f"tilt:{account.tilts[j].style}"
    return out


def explained(result: SolveResult, account: Account, limits: Limits, cache: ProblemCache, rounded: Rounded):
    """``result`` with ``te_from_tilts`` and the orders the tilts turned (``order_reasons``)."""
    la, p, V = account.lot_slots, account.snap.prices, account.value
    bought, sold = np.zeros(account.n), np.zeros(account.n)
    for i, sh in rounded.buys:
        bought[i] += float(sh) * p[i] / V
    for k, sh in rounded.sells:
        sold[la.name[k]] += float(sh) * p[la.name[k]] / V
    return replace(
        result,
        te_from_tilts=te_from_tilts(account, limits, cache),
        order_reasons=reasons(account, limits, cache, bought, sold),
    )
