"""Orders a portfolio manager would send: a name is traded by at least the minimum or not at all,
and at most ``max_names_traded`` names a night.

Both are combinatorial; the convex heuristic (issue 12): solve, fix the names traded by less than
the minimum (and, past the name limit, the names traded least) to no trade, re-solve on the same
compiled problem with those names' sides closed, and repeat while new names fall short (a few
rounds: each only closes names). A name the account must trade — excluded, or held above its
cap — is never closed. The rounding keeps the rule in shares (``solver.rounding``).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from taxview.core.money import cents_at

from .account import Account
from .problem import EPS_W, Layout

if TYPE_CHECKING:  # solver.limits and solver.data import solver.budget, which imports this
    from .data import Sides
    from .limits import Limits

ROUNDS = 2  # re-solves at most; measured, with the side decision's closures one is rarely needed


MATERIAL = 0.01  # weight traded under the minimum worth a re-solve rather than the rounding dropping it


def worth_solving(under: float) -> bool:
    """Is ``under`` (the weight the solution trades in sides under the minimum) enough to re-solve
    for? Measured on first nights (docs/benchmarks.md): after the side decision's closures the
    rest is a few basis points, and dropping it in rounding changed neither the tax benefit nor
    the TE; a re-solve costs as much as the fine pass."""
    return under > MATERIAL


def traded(layout: Layout, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sold, bought) weight per name of the solution ``x`` on ``layout``."""
    n = layout.n
    return x[: layout.S].reshape(n, layout.L).sum(axis=1), x[layout.ob : layout.ob + n]


def must_trade(account: Account, limits: Limits) -> np.ndarray:
    """(n,) names the account has to trade tonight: excluded and held, or held above the cap."""
    held = account.w0 > 0
    return held & (limits.excluded | (account.w0 > limits.cap * (1 + 1e-9) + EPS_W))


def harvest(account: Account, layout: Layout, slot: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(n,) the tax benefit of each name's sales in ``x`` (weight × tax per weight; > 0: a harvest)."""
    la, S = account.lot_slots, layout.S
    held = np.bincount(slot, weights=la.weight, minlength=S)
    tax = np.divide(np.bincount(slot, weights=la.weight * la.tax, minlength=S), held, out=np.zeros(S), where=held > 0)
    return -(x[:S] * tax).reshape(layout.n, layout.L).sum(axis=1)


def to_close(
    account: Account, limits: Limits, layout: Layout, slot: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(sell, buy): (n,) bool, the sides of names to close given the solution ``x`` (lots in
    ``slot`` of ``layout``).

    Under the minimum: of a side's names traded by less than the minimum, as many stay open as
    their total could fund at the minimum each (the largest), the rest close — the re-solve moves
    what they traded into the open names rather than dropping it (closing every small buy at once
    would leave a harvest's proceeds nowhere to go). Past ``max_names_traded``: sells ranked by
    tax benefit (names that must be sold first), then by weight; buys by weight;
    a quarter of the names to buys (a harvest's proceeds must go somewhere) and the rest to sells,
    and a side that needs fewer gives the rest to the other. Measured on first nights, harvests
    spread over ~200 names: 60 names keep about half the tax benefit (docs/benchmarks.md)."""
    sold, bought = traded(layout, x)
    forced = must_trade(account, limits)
    least = account.min_trade
    close_sell = _under_minimum(sold, least) & ~forced
    close_buy = _under_minimum(bought, least)
    most = account.settings.max_names_traded
    if most is not None:
        sell_key = np.where(forced, np.inf, np.maximum(harvest(account, layout, slot, x), 0.0) + sold * 1e-6)
        sells = _ranked(np.where(close_sell, 0.0, sold) > 0, sell_key)
        buys = _ranked(np.where(close_buy, 0.0, bought) > 0, bought)
        n_sell = max(int(forced.sum()), most - min(len(buys), most // 4))
        keep = set(sells[:n_sell].tolist())
        for i in buys.tolist():  # a name both sold and bought takes one place
            if len(keep) >= most and i not in keep:
                close_buy[i] = True
            else:
                keep.add(i)
        close_sell[sells[n_sell:]] = True
    return close_sell, close_buy


def _under_minimum(w: np.ndarray, least: float) -> np.ndarray:
    """(n,) bool: names to close on a side traded ``w``: every name under ``least``, but the
    largest of them that the total under ``least`` could fund at ``least`` each."""
    small = w < least
    fund = int((w[small & (w > EPS_W)].sum() + 1e-12) // least) if least > 0 else 0
    if fund:
        small[_ranked(small & (w > EPS_W), w)[:fund]] = False
    return small


def _ranked(mask: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Indices where ``mask``, largest ``key`` first."""
    idx = np.flatnonzero(mask)
    return idx[np.argsort(-key[idx], kind="stable")]


def closed_sides(account: Account, sides: Sides, sell: np.ndarray, buy: np.ndarray) -> Sides:
    """``sides`` with the ``sell`` names not sold and the ``buy`` names not bought."""
    la = account.lot_slots
    return replace(sides, sellable=sides.sellable & ~sell[la.name], buy_ub=np.where(buy, 0.0, sides.buy_ub))


def at_least_minimum(account: Account, limits: Limits, sells: list[tuple[int, Decimal]]) -> list[tuple[int, Decimal]]:
    """The sells of names sold by at least the minimum in all (their lots together), or that must
    be sold (excluded, or held above the cap: the cap is a limit, the minimum a preference)."""
    la, cents = account.lot_slots, account.snap.price_cents
    value: dict[int, int] = {}
    for k, sh in sells:
        i = int(la.name[k])
        value[i] = value.get(i, 0) + cents_at(sh, cents[i])
    least = account.min_trade * account.value * 100
    forced = must_trade(account, limits)
    return [(k, sh) for k, sh in sells if value[int(la.name[k])] >= least or forced[la.name[k]]]
