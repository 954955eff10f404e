"""Rounding: the solution's weights as whole shares (or fractional quanta) per lot and per name.

Sells never exceed a lot, buys never exceed the cap, cash stays ≥ the target (and so ≥ 0), trades
below ``min_trade_dollars`` are dropped, and nothing is added that the solve did not do. The sells'
net realized gain stays within the gain allowance, exactly in cents (``solver.budget``: gain sales
cut by whole shares, else partial loss sales extended up to their lot, else a note).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

import numpy as np

from taxview.core.money import SHARE_QUANTUM, cents_at

from .account import Account
from .budget import within_allowance
from .limits import Limits
from .problem import EPS_W, Layout


@dataclass(frozen=True, slots=True)
class Rounded:
    """The trades in shares, and the cash they leave."""

    sells: tuple[tuple[int, Decimal], ...]  # (lot index, shares), by slot then tax per dollar
    buys: tuple[tuple[int, Decimal], ...]  # (name index, shares), by name index
    cash_end: int  # cents, after proceeds, purchases and trading costs
    notes: tuple[str, ...] = ()  # what rounding had to give way on (the gain allowance)


def _shares(x: float, fractional: bool) -> Decimal:
    """Round a share count down to a whole share (or to the fractional quantum)."""
    x = max(float(x), 0.0)
    if not fractional:
        return Decimal(int(x))
    return Decimal(repr(x)).quantize(SHARE_QUANTUM, rounding=ROUND_DOWN)


def round_trades(
    account: Account, limits: Limits, layout: Layout, x: np.ndarray, allowance_cents: int | None = None
) -> Rounded:
    """Whole shares (or fractional quanta) of the solution ``x`` on ``layout``; the sells realize at
    most ``allowance_cents`` net (None: no budget), or the notes say by how much they do not."""
    sells, notes = within_allowance(account, limits, _round_sells(account, limits, layout, x), allowance_cents)
    buys = _round_buys(account, limits, layout, x, sells)
    return replace(_raise_cash(account, limits, _keep_cash(account, layout, x, sells, buys)), notes=notes)


def _raise_cash(account: Account, limits: Limits, r: Rounded) -> Rounded:
    """When cash is still below the target with every buy given back (small sells dropped by the
    minimum trade, or a withdrawal to raise), sell more: cheapest tax per dollar first, lots the
    wash-sale rule lets go, whole shares (or quanta), until the target is met or nothing is left."""
    s, la, lots, cents = account.settings, account.lot_slots, account.lots, account.snap.price_cents
    floor = math.ceil(s.cash_target * account.value * 100)
    if r.buys or r.cash_end >= floor:
        return r
    cost = s.cost_bps / 1e4
    sold = dict(r.sells)
    proceeds = sum(cents_at(sh, cents[int(la.name[k])]) for k, sh in sold.items())
    start = r.cash_end - proceeds + math.ceil(proceeds * cost)  # cash before any sale
    step = SHARE_QUANTUM if s.fractional else Decimal(1)
    for k in np.argsort(la.tax, kind="stable"):
        deficit = floor - (start + proceeds - math.ceil(proceeds * cost))
        if deficit <= 0:
            break
        k, price = int(k), cents[int(la.name[k])]
        left = lots[k].quantity - sold.get(k, Decimal(0))
        if not limits.sellable[k] or left <= 0:
            continue
        need = _shares((deficit + 1) / price / (1 - cost), s.fractional) + step
        more = min(left, need)
        sold[k] = sold.get(k, Decimal(0)) + more
        proceeds += cents_at(more, price)
    cash_end = start + proceeds - math.ceil(proceeds * cost)
    return Rounded(tuple(sold.items()), r.buys, cash_end)


def _round_sells(account: Account, limits: Limits, layout: Layout, x: np.ndarray) -> list[tuple[int, Decimal]]:
    """Each slot's sold weight goes to its lots cheapest tax first, in whole shares."""
    s, la, V, p, lots = account.settings, account.lot_slots, account.value, account.snap.prices, account.lots
    qty = la.weight * V / p[la.name]
    target = x[: layout.S][la.slot] * V / p[la.name]  # shares the slot sells, per lot
    forced = limits.excluded[la.name] & limits.sellable  # excluded lots go, but for a wash-blocked loss
    idx = np.flatnonzero((target > EPS_W * V / p[la.name]) | forced)
    idx = idx[np.lexsort((la.tax[idx], la.slot[idx]))]
    cum = np.cumsum(qty[idx])
    first = np.r_[True, la.slot[idx][1:] != la.slot[idx][:-1]]
    before = cum - qty[idx] - np.maximum.accumulate(np.where(first, cum - qty[idx], 0.0))
    take = np.clip(target[idx] - before, 0.0, qty[idx])
    sells: list[tuple[int, Decimal]] = []  # (lot index, shares)
    columns = (
        idx.tolist(),
        take.tolist(),
        qty[idx].tolist(),
        forced[idx].tolist(),
        (qty * p[la.name])[idx].tolist(),
    )
    for k, tk, q_f, f, val in zip(*columns):
        q = lots[k].quantity
        if f or tk >= q_f * (1 - 1e-6):  # excluded, or the solver sold (almost) all of the lot
            sh = q
        elif tk <= 0:
            continue
        else:  # nearest whole share (or fractional quantum), never more than held
            sh = min(_shares(tk if s.fractional else tk + 0.5, s.fractional), q)
        if sh > 0 and (f or float(sh) / q_f * val >= s.min_trade_dollars):
            sells.append((k, sh))
    return sells


def _round_buys(
    account: Account, limits: Limits, layout: Layout, x: np.ndarray, sells: list[tuple[int, Decimal]]
) -> dict[int, Decimal]:
    """Nearest whole shares of each bought name within the cap; never a buy of a loss-sold name."""
    s, la, V, p, n = account.settings, account.lot_slots, account.value, account.snap.prices, layout.n
    bought_w = x[layout.ob : layout.ob + n]
    held_sh = np.bincount(la.name, weights=la.weight * V / p[la.name], minlength=n)
    sold_idx = np.fromiter((k for k, _ in sells), dtype=np.int64, count=len(sells))
    sold_sh = np.bincount(la.name[sold_idx], weights=[float(sh) for _, sh in sells], minlength=n)
    # the account after trading costs, which the cap applies to
    V_after = V * (1.0 - s.cost_bps / 1e4 * (x[: layout.S].sum() + bought_w.sum()) - 1e-9)
    want = bought_w * V / p
    room = np.maximum(limits.cap * V_after / p - (held_sh - sold_sh), 0.0)  # shares the cap still allows
    rounded = np.minimum(want + (0.0 if s.fractional else 0.5), room)
    candidates = np.flatnonzero((bought_w > EPS_W) & ~limits.no_buy)  # blocked buys never survive rounding
    buys: dict[int, Decimal] = {}
    for i, r, price in zip(candidates.tolist(), rounded[candidates].tolist(), p[candidates].tolist()):
        sh = _shares(r, s.fractional)
        if sh > 0 and float(sh) * price >= s.min_trade_dollars:
            buys[i] = sh

    # Never a buy and a loss-sale of the same name (solver noise cannot reintroduce one).
    loss_sold_names = {int(la.name[k]) for k, _ in sells if la.loss[k]}
    if s.taxable:
        for i in loss_sold_names & buys.keys():
            del buys[i]
    return buys


def _keep_cash(
    account: Account, layout: Layout, x: np.ndarray, sells: list[tuple[int, Decimal]], buys: dict[int, Decimal]
) -> Rounded:
    """Keep cash ≥ the target (and so ≥ 0): take shares off the buys rounding pushed up the most."""
    s, la, V, p, n = account.settings, account.lot_slots, account.value, account.snap.prices, layout.n
    cents, cash_cents, min_trade = account.snap.price_cents, account.cash_cents, s.min_trade_dollars
    bought_w = x[layout.ob : layout.ob + n]
    cost = s.cost_bps / 1e4
    proceeds = sum(cents_at(sh, cents[int(la.name[k])]) for k, sh in sells)

    spent = sum(cents_at(sh, cents[i]) for i, sh in buys.items())

    def fees(spent: int) -> int:
        return math.ceil((proceeds + spent) * cost)

    floor = math.ceil(s.cash_target * V * 100)
    step = SHARE_QUANTUM if s.fractional else Decimal(1)
    order = sorted(buys, key=lambda i: float(buys[i]) - bought_w[i] * V / p[i], reverse=True)
    while order and (deficit := floor - (cash_cents + proceeds - spent - fees(spent))) > 0:
        i = order.pop(0)  # the buy rounding pushed up the most gives back what is missing
        cut_f = (deficit * (1 + cost) + 1) / cents[i] / (1 - cost)
        cut = _shares(cut_f, True) + step if s.fractional else Decimal(math.ceil(cut_f))
        before = cents_at(buys[i], cents[i])
        buys[i] -= min(cut, buys[i])
        if buys[i] <= 0 or float(buys[i]) * p[i] < min_trade:
            del buys[i]
            spent -= before
        else:
            spent -= before - cents_at(buys[i], cents[i])
    cash_end = cash_cents + proceeds - spent - fees(spent)
    return Rounded(tuple(sells), tuple(sorted(buys.items())), cash_end)
