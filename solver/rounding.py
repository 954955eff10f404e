"""Rounding: the solution's weights as whole shares (or fractional quanta) per lot and per name.

Sells never exceed a lot, buys never exceed the cap, cash stays ≥ the target (and so ≥ 0), a name
traded by less than the minimum (``Account.min_trade``: its sells together, or its buy) is not
traded, and nothing is added that the solve did not do. The sells'
net realized gain stays within the gain allowance, exactly in cents (``solver.budget``: gain sales
cut by whole shares, else partial loss sales extended up to their lot, else a note).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

import numpy as np

from taxview.core.money import SHARE_QUANTUM, cents_at

from . import minimums
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
    sells = _keep_caps(account, limits, _round_sells(account, limits, layout, x))
    sells, notes = within_allowance(account, limits, sells, allowance_cents)
    buys = _round_buys(account, limits, layout, x, sells)
    r = _raise_cash(account, limits, _keep_cash(account, layout, x, sells, buys))
    return replace(_invest_cash(account, limits, r), notes=notes)


def cash_after(account: Account, sells: Iterable[tuple[int, Decimal]], buys: Iterable[tuple[int, Decimal]]) -> int:
    """The account's cash in cents after ``sells`` (lot index, shares) and ``buys`` (name index,
    shares) and their trading cost (rounded up to the cent)."""
    la, cents = account.lot_slots, account.snap.price_cents
    proceeds = sum(cents_at(sh, cents[int(la.name[k])]) for k, sh in sells)
    spent = sum(cents_at(sh, cents[i]) for i, sh in buys)
    return account.cash_cents + proceeds - spent - math.ceil((proceeds + spent) * account.settings.cost_bps / 1e4)


def _sold_shares(account: Account, sells: Iterable[tuple[int, Decimal]]) -> np.ndarray:
    la = account.lot_slots
    out = np.zeros(account.n)
    for k, sh in sells:
        out[la.name[k]] += float(sh)
    return out


def _keep_caps(account: Account, limits: Limits, sells: list[tuple[int, Decimal]]) -> list[tuple[int, Decimal]]:
    """A name the solve sold down to its cap stays at or under it in whole shares: rounding to the
    nearest share can leave it a share over, so its sells go up (lots in tax order, sellable ones).
    More over than rounding makes is the solve's own (a cap that gave way) and is left."""
    s, la, lots, p, V = account.settings, account.lot_slots, account.lots, account.snap.prices, account.value
    held = np.bincount(la.name, weights=la.weight * V / p[la.name], minlength=account.n)
    over = (held - _sold_shares(account, sells)) * p - limits.cap * V * (1 - s.cost_bps / 1e4)
    noise = 2 * p + 1e-4 * V  # rounding's own: a share or two and the solver's tolerance
    names = np.flatnonzero((over > 1e-6) & (over <= noise) & (account.w0 > 0) & ~limits.excluded)
    if not len(names):
        return sells
    sold = dict(sells)
    for i in names.tolist():
        need = Decimal(math.ceil(over[i] / p[i])) if not s.fractional else _shares(over[i] / p[i], True) + SHARE_QUANTUM
        for k in np.flatnonzero((la.name == i) & limits.sellable)[np.argsort(la.tax[(la.name == i) & limits.sellable])]:
            k = int(k)
            more = min(need, lots[k].quantity - sold.get(k, Decimal(0)))
            if more > 0:
                sold[k] = sold.get(k, Decimal(0)) + more
                need -= more
            if need <= 0:
                break
    return list(sold.items())


def _invest_cash(account: Account, limits: Limits, r: Rounded) -> Rounded:
    """Cash above ``cash_max`` after rounding (buys under the minimum dropped, whole shares) goes
    into names the account may buy: first more of the names it buys tonight (most under their
    benchmark weight first), then other names under their benchmark weight, largest shortfall
    first, in whole shares within the cap, each new buy at least the minimum and within
    ``max_names_traded``. Never a name sold tonight or one it may not buy."""
    s, la, p, V = account.settings, account.lot_slots, account.snap.prices, account.value
    top = math.floor(s.cash_max * V * 100 * (1 - 2 * s.cost_bps / 1e4))  # of the value after costs
    if r.cash_end <= top:
        return r
    buys = dict(r.buys)
    held = np.bincount(la.name, weights=la.weight * V / p[la.name], minlength=account.n)
    shares = held - _sold_shares(account, r.sells) + np.array([float(buys.get(i, 0)) for i in range(account.n)])
    sold = {int(la.name[k]) for k, _ in r.sells}
    target = account.snap.benchmark if account.offset is None else account.snap.benchmark - account.offset
    short = target * V - shares * p  # dollars under the benchmark weight (less outside holdings: solver.outside)
    room = limits.cap * V * (1 - s.cost_bps / 1e4) - shares * p
    bought = np.zeros(account.n, dtype=bool)
    bought[list(buys)] = True
    may = ~limits.no_buy & (room > 0) & ((short > 0) | bought)
    may[list(sold)] = False
    order = sorted(np.flatnonzero(may).tolist(), key=lambda i: (i not in buys, -short[i]))
    cash, least, step = r.cash_end, account.min_trade * V, SHARE_QUANTUM if s.fractional else Decimal(1)
    floor = math.ceil(s.cash_target * V * 100)
    most = s.max_names_traded or account.n
    for i in order:
        if cash <= top:
            break
        spare = (cash - top) / 100 / (1 + s.cost_bps / 1e4)
        amount = min(spare, room[i], max(short[i], spare) if i in buys else short[i] + least)
        if i not in buys and (amount < least or len(sold | buys.keys()) >= most):
            continue
        sh = _shares(amount / p[i], s.fractional)
        if float(sh) * p[i] < spare and float(sh + step) * p[i] <= room[i]:
            sh += step  # a share past the spare cash rather than cash left over its maximum
        if sh < step:
            continue
        buys[i] = buys.get(i, Decimal(0)) + sh
        after = cash_after(account, r.sells, buys.items())
        if after < floor:  # never below the target: give the share back, try a cheaper name
            buys[i] -= sh
            if buys[i] <= 0:
                del buys[i]
            continue
        cash = after
        if cash <= top:
            break
    return Rounded(r.sells, tuple(sorted(buys.items())), cash, r.notes)


def _raise_cash(account: Account, limits: Limits, r: Rounded) -> Rounded:
    """When cash is still below the target with every buy given back (small sells dropped by the
    minimum trade, or a withdrawal to raise), sell more: cheapest tax per dollar first (without tax
    awareness, the most overweight names first), lots the
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
    selling = {int(la.name[k]) for k in sold}
    least = account.min_trade * account.value * 100  # a name not sold yet is sold by at least this
    # tax-aware: the least tax per dollar first; else the lots of the most overweight names first
    order = la.tax if s.lambda_tax > 0 else (account.snap.benchmark - account.w0)[la.name]
    for k in np.argsort(order, kind="stable"):
        deficit = floor - (start + proceeds - math.ceil(proceeds * cost))
        if deficit <= 0:
            break
        k, i = int(k), int(la.name[k])
        price = cents[i]
        left = lots[k].quantity - sold.get(k, Decimal(0))
        if not limits.sellable[k] or left <= 0:
            continue
        need = _shares(max(deficit + 1, 0 if i in selling else least) / price / (1 - cost), s.fractional) + step
        more = min(left, need)
        selling.add(i)
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
    )
    for k, tk, q_f, f in zip(*columns):
        q = lots[k].quantity
        if f or tk >= q_f * (1 - 1e-6):  # excluded, or the solver sold (almost) all of the lot
            sh = q
        elif tk <= 0:
            continue
        else:  # nearest whole share (or fractional quantum), never more than held
            sh = min(_shares(tk if s.fractional else tk + 0.5, s.fractional), q)
        if sh > 0:
            sells.append((k, sh))
    return minimums.at_least_minimum(account, limits, sells)


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
    least = account.min_trade * V
    buys: dict[int, Decimal] = {}
    for i, r, price in zip(candidates.tolist(), rounded[candidates].tolist(), p[candidates].tolist()):
        sh = _shares(r, s.fractional)
        if sh > 0 and float(sh) * price >= least:
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
    cents, cash_cents, min_trade = account.snap.price_cents, account.cash_cents, account.min_trade * V
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
