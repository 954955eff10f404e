"""The annual net realized-gain budget: tonight's allowance as one row of the problem, and the exact
check of the rounded trades against it.

The caller gives tonight's allowance (``AccountSettings.gain_allowance_cents``: the year's budget
minus the year's net realized gain so far, from the ledger). It limits the net realized gain of
the night, Σ over sold lot shares of (price − basis per share), short and long term together, in
taxable accounts (an IRA realizes nothing taxable: the budget does not apply).

In the problem (``solver.problem``) it is one row, gᵀs ≤ gain_ub, in weights like every row:
g is each slot's net gain per weight sold (1 − basis/value, averaged over the slot's lots by
weight, as the tax in ``q`` is; in the side decision's relaxation, the least of its lots, so that
pass is never stricter than the fine pass) and gain_ub = allowance / account value. Without a budget (None,
an IRA, or an allowance the account cannot reach even by selling every gain lot) g = 0 and the row
reads 0 ≤ GAIN_UNBOUND, in every pass: the problem the account had before the row.

An allowance ≥ 0 is a hard limit: selling nothing realizes nothing, so it conflicts only with
limits that force sales (excluded names, a holding above its cap, the cash target, the TE budget's
cone); the account is then infeasible with a reason naming the gain budget, as for any limits that
cannot all hold, and the manager raises the budget or relaxes the other limit.

A negative allowance (the year already realized more than its budget) is a soft target: the solve
asks for a net loss of at least that much, and when the limits cannot reach it (too few losses, or
losses in wash-sale windows) the bound gives way to 0 — no net gain tonight — with a note. Failing
the account instead would stop its whole rebalance (exclusions, harvests) over losses it does not
hold; zero is the most it can still promise, and the result's realized figures say what it got.

After rounding (whole shares, minimum trades dropped) the net gain is checked exactly in cents:
over the allowance, the gain sales the solve chose are cut, most gain per share first (whole shares,
dropped below the minimum trade), then partial loss sales are extended by whole shares up to their
lot; what is still over (forced sales of excluded names) is said in the notes.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING

import numpy as np

from taxview.core.money import SHARE_QUANTUM, allocate_basis, cents_at
from taxview.core.records import Lot

from .account import Account
from .minimums import at_least_minimum
from .problem import GAIN_UNBOUND

if TYPE_CHECKING:
    from .limits import Limits


def gain_bound(account: Account) -> float:
    """Tonight's net-gain bound in weights (allowance / account value), or ``GAIN_UNBOUND``."""
    s = account.settings
    if s.gain_allowance_cents is None or not s.taxable:
        return GAIN_UNBOUND
    bound = s.gain_allowance_cents / 100.0 / account.value
    most = float(np.maximum(account.gain, 0.0) @ account.lot_slots.weight)  # every gain lot sold
    return GAIN_UNBOUND if bound >= most else bound


def realized_cents(lot: Lot, shares: Decimal, price_cents: int) -> int:
    """Exact gain (negative: loss) of selling ``shares`` of ``lot`` at ``price_cents``, cents."""
    return cents_at(shares, price_cents) - allocate_basis(lot.basis_cents, shares, lot.quantity)


def dollars(cents: int) -> str:
    """Cents as a dollar amount for notes and reasons: -500000 -> '-$5,000.00'."""
    return f"{'-' if cents < 0 else ''}${Decimal(abs(cents)) / 100:,.2f}"


def soft_target_note(allowance_cents: int) -> str:
    return (
        f"gain budget: tonight's allowance {dollars(allowance_cents)} asks for a net realized loss "
        "these limits cannot reach; net realized gain held at or below $0.00 instead"
    )


def within_allowance(
    account: Account, limits: Limits, sells: list[tuple[int, Decimal]], allowance_cents: int | None
) -> tuple[list[tuple[int, Decimal]], tuple[str, ...]]:
    """The rounded sells (lot index, shares) repaired to realize at most ``allowance_cents`` net."""
    if allowance_cents is None:
        return sells, ()
    la, cents, s = account.lot_slots, account.snap.price_cents, account.settings
    lots = account.lots
    sold = dict(sells)

    def gain(k: int, sh: Decimal) -> int:
        return realized_cents(lots[k], sh, cents[int(la.name[k])]) if sh > 0 else 0

    net = sum(gain(k, sh) for k, sh in sold.items())
    if net <= allowance_cents:
        return sells, ()
    step = SHARE_QUANTUM if s.fractional else Decimal(1)

    def move(k: int, sh: Decimal, direction: int) -> None:
        """Move lot ``k``'s sale to ``sh`` shares, then a step further while still over."""
        nonlocal net
        limit = lots[k].quantity
        before = gain(k, sold[k])
        sh = min(max(sh, Decimal(0)), limit)
        while net - before + gain(k, sh) > allowance_cents and 0 < sh < limit:
            sh = min(max(sh + direction * step, Decimal(0)), limit)
        net += gain(k, sh) - before
        sold[k] = sh

    def per_share(k: int) -> Decimal:
        return Decimal(gain(k, sold[k])) / sold[k]

    # 1. fewer shares of the gain sales the solve chose (not forced), most gain per share first
    forced = limits.excluded[la.name]
    cuts = sorted((k for k in sold if not forced[k] and gain(k, sold[k]) > 0), key=per_share, reverse=True)
    for k in cuts:
        if net <= allowance_cents:
            break
        move(k, sold[k] - _steps(Decimal(net - allowance_cents) / per_share(k), step), -1)
    # 2. more shares of partial loss sales, most loss per share first (never past the lot)
    extend = sorted((k for k in sold if gain(k, sold[k]) < 0 and sold[k] < lots[k].quantity), key=per_share)
    for k in extend:
        if net <= allowance_cents:
            break
        move(k, sold[k] + _steps(Decimal(net - allowance_cents) / -per_share(k), step), +1)
    # a name the cuts left under the minimum is not sold at all, where that realizes no more gain
    out = [(k, sold[k]) for k, _ in sells if sold[k] > 0]
    kept = set(at_least_minimum(account, limits, out))
    by_name: dict[int, int] = {}
    for k, sh in out:
        if (k, sh) not in kept:
            by_name[int(la.name[k])] = by_name.get(int(la.name[k]), 0) + gain(k, sh)
    out = [(k, sh) for k, sh in out if (k, sh) in kept or by_name[int(la.name[k])] < 0]
    net -= sum(g for g in by_name.values() if g >= 0)
    if net <= allowance_cents:
        return out, ()
    note = (
        f"gain budget: the trades realize {dollars(net)} net, {dollars(net - allowance_cents)} over "
        f"tonight's allowance {dollars(allowance_cents)}; no sale is left that rounding may cut or "
        "extend (excluded names are sold whole)"
    )
    return out, (note,)


def _steps(shares: Decimal, step: Decimal) -> Decimal:
    """``shares`` rounded up to a whole number of ``step``."""
    return max((shares / step).to_integral_value(rounding=ROUND_CEILING), Decimal(1)) * step
