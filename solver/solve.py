"""One account's tax-aware rebalance: validate, two-pass wash-safe solve, whole-share rounding.

Pass 1 solves the relaxed problem (household restrictions applied, buy-and-loss-sell of one name
allowed). When it both buys a name and sells that name's lots at a loss, pass 2 fixes a side for
every name that has loss lots (sell side: no buys; buy side: no loss sales), chosen from pass 1,
and re-solves: the result is conflict-free by construction (Moehle et al., JOTA 2021).
The TE budget is a penalty first; only if the result breaks the budget is the SOC form solved.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

import numpy as np

from .errors import InputError
from .money import SHARE_QUANTUM, allocate_basis
from .problem import DEFAULT_CACHE, OBJ_SCALE, Layout, ProblemCache
from .snapshot import Snapshot
from .tax import add_one_year
from .types import AccountSettings, Lot, Realized, Restrictions, SolveResult, Trade

MAX_SLOTS = 4  # lot slots per name; more lots in one name are merged by tax per dollar
EPS_W = 1e-7  # weights below this are solver noise


def validate_settings(s: AccountSettings) -> None:
    checks = {
        "st_rate": 0 <= s.st_rate < 1,
        "lt_rate": 0 <= s.lt_rate < 1,
        "te_max": s.te_max > 0,
        "max_weight": 0 < s.max_weight <= 1,
        "cash_target": 0 <= s.cash_target < 1,
        "cash_max": s.cash_target <= s.cash_max < 1,
        "lambda_te": s.lambda_te > 0,
        "lambda_tax": s.lambda_tax >= 0,
        "cost_bps": s.cost_bps >= 0,
        "min_trade_dollars": s.min_trade_dollars >= 0,
    }
    for name, ok in checks.items():
        value = getattr(s, name)
        if not ok or not math.isfinite(value):
            raise InputError(name, f"invalid value {value!r}")
    if s.account_type not in {"taxable", "ira", "trust", "other"}:
        raise InputError("account_type", f"{s.account_type!r} is not taxable|ira|trust|other")


def validate_lots(lots: list[Lot] | tuple[Lot, ...], snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every lot: unique id, a symbol of the universe, quantity > 0, basis ≥ 0, acquired ≤ date."""
    N = len(lots)
    name = np.fromiter((snap.index.get(lot.symbol, -1) for lot in lots), dtype=np.int64, count=N)
    try:
        qty = np.fromiter((float(lot.quantity) for lot in lots), dtype=np.float64, count=N)
        basis = np.fromiter((lot.basis_cents for lot in lots), dtype=np.float64, count=N)
    except (TypeError, ValueError) as exc:
        raise InputError("quantity/basis", f"a lot has a non-numeric quantity or basis: {exc}") from None
    acquired = np.fromiter((lot.acquired.toordinal() for lot in lots), dtype=np.int64, count=N)
    checks = (
        ("symbol", name < 0, lambda x: f"{x.symbol!r} is not in the universe"),
        (
            "quantity",
            ~(np.isfinite(qty) & (qty > 0)),
            lambda x: f"quantity must be a finite number > 0, got {x.quantity!r}",
        ),
        ("basis", ~(basis >= 0), lambda x: f"basis must be >= 0 cents, got {x.basis_cents!r}"),
        ("acquired", acquired > snap.date.toordinal(), lambda x: f"acquired {x.acquired} after {snap.date}"),
    )
    for field, bad, message in checks:
        if bad.any():
            x = lots[int(np.argmax(bad))]
            raise InputError(field, f"lot {x.lot_id!r}: {message(x)}")
    for x in lots:
        if not isinstance(x.basis_cents, int):
            raise InputError("basis", f"lot {x.lot_id!r}: basis must be integer cents, got {x.basis_cents!r}")
    if len({x.lot_id for x in lots}) != N:
        seen: set[str] = set()
        for x in lots:
            if x.lot_id in seen:
                raise InputError("lot_id", f"lot {x.lot_id!r} appears twice")
            seen.add(x.lot_id)
    return name, qty, basis


@dataclass(slots=True)
class _Lots:
    """The account's lots as arrays in one ordering, and their assignment to solver slots."""

    name: np.ndarray  # (N,) universe index
    weight: np.ndarray  # (N,) held weight (value / account value)
    tax: np.ndarray  # (N,) tax per unit weight sold (negative: a loss, i.e. a benefit)
    loss: np.ndarray  # (N,) bool
    slot: np.ndarray  # (N,) slot index in the layout
    L: int  # slots per name
    merged: int  # lots merged into a neighbour's slot


def _lot_arrays(lots, arrays, snap: Snapshot, s: AccountSettings, V: float, max_slots: int) -> _Lots:
    """Assign lots to at most ``max_slots`` (≥ 2) slots per name; losses and gains never share one.

    Lots of one name sorted by tax per dollar fill slots in that order; the optimizer sells the
    cheapest first anyway, so merging only coarsens names with more lots than slots.
    """
    N = len(lots)
    name, qty, basis = arrays[0], arrays[1], arrays[2] / 100.0  # from validate_lots
    value = qty * snap.prices[name]
    gain_frac = 1.0 - basis / value
    if s.taxable:
        long = np.fromiter((_is_long(lot.holding_from, snap.date) for lot in lots), dtype=bool, count=N)
        tax = np.where(long, s.lt_rate, s.st_rate) * gain_frac
    else:
        tax = np.zeros(N)
    loss = gain_frac < 0
    counts = np.bincount(name, minlength=len(snap.symbols))
    most = int(counts.max()) if N else 1
    L = min(max_slots, 1 << max(most - 1, 0).bit_length())  # 1, 2, 4, ... (few shapes)
    order = np.lexsort((tax, ~loss, name))  # per name: losses first, then by tax
    starts = np.concatenate([[0], np.cumsum(counts)])
    rank = np.empty(N, dtype=np.int64)
    rank[order] = np.arange(N) - starts[name[order]]
    # Names with more lots than slots: split the losses and the gains (never mixed) into
    # contiguous runs of neighbouring tax per dollar, slots shared in proportion to lot counts.
    n_loss = np.bincount(name, weights=loss, minlength=len(counts)).astype(np.int64)
    n_gain = counts - n_loss
    L_loss = np.where(
        n_loss == 0,
        0,
        np.where(n_gain == 0, L, np.clip(np.rint(L * n_loss / np.maximum(counts, 1)), 1, L - 1)),
    ).astype(np.int64)
    L_gain = L - L_loss
    c, nl, ng, ll, lg = counts[name], n_loss[name], n_gain[name], L_loss[name], L_gain[name]
    squeezed = np.where(loss, rank * ll // np.maximum(nl, 1), ll + (rank - nl) * lg // np.maximum(ng, 1))
    slot = name * L + np.where(c > L, squeezed, rank)
    merged = N - len(np.unique(slot))
    return _Lots(name, value / V, tax, loss, slot, L, merged)


_ONE_YEAR: dict[dt.date, dt.date] = {}


def _is_long(start: dt.date, sold: dt.date) -> bool:
    end = _ONE_YEAR.get(start)
    if end is None:
        end = _ONE_YEAR[start] = add_one_year(start)
    return sold > end


def solve_account(
    snap: Snapshot,
    lots: list[Lot] | tuple[Lot, ...],
    cash_cents: int,
    settings: AccountSettings = AccountSettings(),
    restrictions: Restrictions = Restrictions(),
    cache: ProblemCache = DEFAULT_CACHE,
    max_slots: int = MAX_SLOTS,
) -> SolveResult:
    """Rebalance one account on ``snap.date``; never raises for an infeasible account.

    Raises ``InputError`` for bad input (nothing is solved then).
    """
    t0 = time.perf_counter()
    validate_settings(settings)
    arrays = validate_lots(lots, snap)
    if not isinstance(cash_cents, int) or cash_cents < 0:
        raise InputError("cash", f"cash must be >= 0 cents, got {cash_cents!r}")
    n, p = len(snap.symbols), snap.prices
    held_value = float(arrays[1] @ p[arrays[0]]) if len(lots) else 0.0
    V = held_value + cash_cents / 100.0
    if V <= 0:
        raise InputError("cash", "account has no holdings and no cash")

    la = _lot_arrays(lots, arrays, snap, settings, V, max_slots)
    K = snap.model.B.shape[1]
    excluded = np.fromiter(
        (
            sym in settings.exclude_symbols or sec in settings.exclude_sectors
            for sym, sec in zip(snap.symbols, snap.sectors)
        ),
        dtype=bool,
        count=n,
    )
    # The cap never forces a name below its benchmark weight (that alone would break any TE budget).
    cap = np.where(excluded, 0.0, np.maximum(settings.max_weight, snap.benchmark))
    no_buy = excluded.copy()
    for sym in restrictions.no_buy:
        if sym in snap.index:
            no_buy[snap.index[sym]] = True
    allowed = np.ones(len(lots), dtype=bool)  # lots the optimizer may sell
    if settings.taxable and restrictions.no_loss_sale:
        no_loss = np.zeros(n, dtype=bool)
        for sym in restrictions.no_loss_sale:
            if sym in snap.index:
                no_loss[snap.index[sym]] = True
        allowed &= ~(la.loss & no_loss[la.name])
    # A name that must go to zero but whose loss lots may not be sold cannot be fixed.
    stuck = sorted({snap.symbols[i] for i in la.name[~allowed & excluded[la.name]]})
    # Elsewhere the cap gives way to lots that may not be sold (rather than making it infeasible).
    unsellable = np.bincount(la.name, weights=la.weight * ~allowed, minlength=n)
    cap = np.where(excluded, 0.0, np.maximum(cap, unsellable * (1 + 1e-9)))
    if stuck:
        return _failed(
            "infeasible",
            f"excluded names {stuck[:5]} hold loss lots bought in the "
            "household within 30 days; they cannot be sold without a wash sale",
            t0,
        )

    cost = settings.cost_bps / 1e4
    w0 = np.bincount(la.name, weights=la.weight, minlength=n)

    def data(layout: Layout, slot: np.ndarray, sellable: np.ndarray, buy_ub: np.ndarray):
        S = layout.S
        held = np.bincount(slot, weights=la.weight, minlength=S)
        tax = np.bincount(slot, weights=la.weight * la.tax, minlength=S)
        q = np.zeros(layout.nx)
        q[:S] = settings.lambda_tax * np.divide(tax, held, out=np.zeros(S), where=held > 0) + cost
        q[layout.ob : layout.ob + n] = cost
        q *= OBJ_SCALE / settings.lambda_te
        b = np.zeros(layout.m)
        b[:n] = w0 - snap.benchmark
        b[layout.r_sub : layout.r_sub + S] = np.bincount(slot, weights=la.weight * sellable, minlength=S)
        b[layout.r_bub : layout.r_bub + n] = buy_ub
        b[layout.r_cap : layout.r_cap + n] = cap - snap.benchmark
        b[layout.r_budget] = 1.0 - settings.cash_target - snap.benchmark.sum()
        b[layout.r_budget + 1] = -(1.0 - cash_max - snap.benchmark.sum())
        if layout.cone:
            b[layout.r_soc] = settings.te_max
        return q, b

    passes = iters = 0
    cash_max = settings.cash_max
    notes: list[str] = []

    def run(layout: Layout, slot, sellable, buy_ub):
        nonlocal passes, iters, cash_max
        q, b = data(layout, slot, sellable, buy_ub)
        status, x, it = cache.get(snap.model, layout).solve(q, b)
        passes, iters = passes + 1, iters + it
        if status not in _OK and "Infeasible" not in status:  # numerical trouble: the careful solver
            status, x, it = cache.get(snap.model, layout, robust=True).solve(q, b)
            passes, iters = passes + 1, iters + it
        if "Infeasible" in status and cash_max < 1.0:
            # Names that may not be bought (wash-sale windows, caps) can leave nowhere to put the
            # cash: hold it rather than fail the day. Any other infeasibility stays infeasible.
            cash_max = 1.0
            notes.append(f"cash above cash_max {settings.cash_max:.2%}: too few names may be bought")
            q, b = data(layout, slot, sellable, buy_ub)
            status, x, it = cache.get(snap.model, layout).solve(q, b)
            passes, iters = passes + 1, iters + it
        return status, x

    buy_ub = np.where(no_buy, 0.0, cap)
    fine = Layout(n=n, L=la.L, K=K)
    harvestable = settings.taxable and bool((la.loss & allowed).any())
    if harvestable:
        # Pass 1 (coarse: one loss slot and one gain slot per name, loose tolerance) only
        # decides a side for each name with loss lots; pass 2 solves with the sides fixed.
        coarse = Layout(n=n, L=2, K=K, loose=True)
        status, x = run(coarse, la.name * 2 + ~la.loss, allowed, buy_ub)
        if status not in _OK:
            return _failed(_kind(status), _reason(status, settings, excluded), t0, passes, iters)
        bought = x[coarse.ob : coarse.ob + n]
        loss_sold = x[0 : coarse.S : 2]
        has_loss = np.bincount(la.name, weights=la.loss & allowed, minlength=n) > 0
        # a loss sale smaller than a minimum trade is solver noise, not a decision to harvest
        decided = max(EPS_W, 0.5 * settings.min_trade_dollars / V)
        sell_side = has_loss & (loss_sold > decided) & (loss_sold >= bought)
        buy_ub = np.where(sell_side, 0.0, buy_ub)
        allowed = allowed & ~(la.loss & (has_loss & ~sell_side)[la.name])
    status, x = run(fine, la.slot, allowed, buy_ub)
    if status not in _OK:
        return _failed(_kind(status), _reason(status, settings, excluded), t0, passes, iters)
    te = snap.model.te(x[fine.oa : fine.oa + n])
    if te > settings.te_max * (1 + 1e-4):  # the penalty alone broke the budget: the SOC form
        cone = Layout(n=n, L=la.L, K=K, cone=True)
        status, xc = run(cone, la.slot, allowed, buy_ub)
        if "Infeasible" in status and harvestable:
            # The sides chosen for harvesting leave too little freedom to meet the budget:
            # give up harvesting in names that need buying (every name with losses buy side).
            buy_ub = np.where(no_buy, 0.0, cap)
            allowed = allowed & ~la.loss
            status, xc = run(cone, la.slot, allowed, buy_ub)
        if status not in _OK:
            if "Infeasible" in status:  # say how far the budget is: the least TE these limits allow
                q0, b0 = data(fine, la.slot, allowed, buy_ub)
                st0, x0, _ = cache.get(snap.model, fine).solve(np.zeros_like(q0), b0)
                te = snap.model.te(x0[fine.oa : fine.oa + n]) if st0 in _OK else te
            return _failed(_kind(status), _reason(status, settings, excluded, te_min=te), t0, passes, iters)
        x = xc

    result = _round_and_report(
        snap, lots, cash_cents, settings, fine, la, x, V, excluded, no_buy, cap, t0, passes, iters
    )
    return dataclasses.replace(result, notes=tuple(notes)) if notes else result


_OK = ("Solved", "AlmostSolved")


def _kind(status: str) -> str:
    return "infeasible" if "Infeasible" in status else "error"


def _reason(status: str, s: AccountSettings, excluded: np.ndarray, te_min: float | None = None) -> str:
    if te_min is not None and "Infeasible" in status:
        return (
            f"TE budget {s.te_max:.2%} cannot be met: the least tracking error these limits allow "
            f"is {te_min:.2%} ({int(excluded.sum())} names excluded, cap {s.max_weight:.1%}); "
            "raise te_max or relax the exclusions"
        )
    if "Infeasible" in status:
        return (
            f"constraints cannot all hold ({int(excluded.sum())} names excluded, cap "
            f"{s.max_weight:.1%}, cash target {s.cash_target:.2%}); CLARABEL: {status}"
        )
    return f"CLARABEL stopped with status {status}"


def _failed(status: str, reason: str, t0: float, passes: int = 0, iters: int = 0) -> SolveResult:
    return SolveResult(
        status=status,
        reason=reason,
        solve_ms=(time.perf_counter() - t0) * 1e3,
        passes=passes,
        iterations=iters,
    )


def _shares(x: float, fractional: bool) -> Decimal:
    """Round a share count down to a whole share (or to the fractional quantum)."""
    x = max(float(x), 0.0)
    if not fractional:
        return Decimal(int(x))
    return Decimal(repr(x)).quantize(SHARE_QUANTUM, rounding=ROUND_DOWN)


def _round_and_report(snap, lots, cash_cents, s, layout, la, x, V, excluded, no_buy, cap, t0, passes, iters):
    """Whole shares (or fractional quanta), cash kept ≥ 0, nothing added that the solve did not do."""
    cents = snap.price_cents

    def value_cents(shares: Decimal, i: int) -> int:  # exact: shares × price in cents
        if shares == shares.to_integral_value():
            return int(shares) * cents[i]
        return int((shares * cents[i]).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    p, n = snap.prices, layout.n
    min_trade = s.min_trade_dollars
    # Sells: each slot's sold weight goes to its lots cheapest tax first, in whole shares.
    qty = la.weight * V / p[la.name]
    target = x[: layout.S][la.slot] * V / p[la.name]  # shares the slot sells, per lot
    forced = excluded[la.name]
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
        if sh > 0 and (f or float(sh) / q_f * val >= min_trade):
            sells.append((k, sh))
    bought_w = x[layout.ob : layout.ob + n]
    held_sh = np.bincount(la.name, weights=la.weight * V / p[la.name], minlength=n)
    sold_idx = np.fromiter((k for k, _ in sells), dtype=np.int64, count=len(sells))
    sold_sh = np.bincount(la.name[sold_idx], weights=[float(sh) for _, sh in sells], minlength=n)
    # the account after trading costs, which the cap applies to
    V_after = V * (1.0 - s.cost_bps / 1e4 * (x[: layout.S].sum() + bought_w.sum()) - 1e-9)
    want = bought_w * V / p
    room = np.maximum(cap * V_after / p - (held_sh - sold_sh), 0.0)  # shares the cap still allows
    rounded = np.minimum(want + (0.0 if s.fractional else 0.5), room)
    candidates = np.flatnonzero((bought_w > EPS_W) & ~no_buy)  # blocked buys never survive rounding
    buys: dict[int, Decimal] = {}
    for i, r, price in zip(candidates.tolist(), rounded[candidates].tolist(), p[candidates].tolist()):
        sh = _shares(r, s.fractional)
        if sh > 0 and float(sh) * price >= min_trade:
            buys[i] = sh

    # Never a buy and a loss-sale of the same name (solver noise cannot reintroduce one).
    loss_sold_names = {int(la.name[k]) for k, _ in sells if la.loss[k]}
    if s.taxable:
        for i in loss_sold_names & buys.keys():
            del buys[i]

    cost = s.cost_bps / 1e4
    proceeds = sum(value_cents(sh, int(la.name[k])) for k, sh in sells)

    spent = sum(value_cents(sh, i) for i, sh in buys.items())

    def fees(spent: int) -> int:
        return math.ceil((proceeds + spent) * cost)

    # Keep cash ≥ the target (and so ≥ 0): take shares off the buys rounding pushed up the most.
    floor = math.ceil(s.cash_target * V * 100)
    step = SHARE_QUANTUM if s.fractional else Decimal(1)
    order = sorted(buys, key=lambda i: float(buys[i]) - bought_w[i] * V / p[i], reverse=True)
    while order and (deficit := floor - (cash_cents + proceeds - spent - fees(spent))) > 0:
        i = order.pop(0)  # the buy rounding pushed up the most gives back what is missing
        cut_f = (deficit * (1 + cost) + 1) / cents[i] / (1 - cost)
        cut = _shares(cut_f, True) + step if s.fractional else Decimal(math.ceil(cut_f))
        before = value_cents(buys[i], i)
        buys[i] -= min(cut, buys[i])
        if buys[i] <= 0 or float(buys[i]) * p[i] < min_trade:
            del buys[i]
            spent -= before
        else:
            spent -= before - value_cents(buys[i], i)
    cash_end = cash_cents + proceeds - spent - fees(spent)

    trades: list[Trade] = []
    st_g = st_l = lt_g = lt_l = 0
    sold_shares = np.zeros(n)
    for k, sh in sells:
        lot = lots[k]
        i = int(la.name[k])
        gain = value_cents(sh, i) - allocate_basis(lot.basis_cents, sh, lot.quantity)
        term = "long" if _is_long(lot.holding_from, snap.date) else "short"
        if term == "short":
            st_g, st_l = (st_g + gain, st_l) if gain >= 0 else (st_g, st_l + gain)
        else:
            lt_g, lt_l = (lt_g + gain, lt_l) if gain >= 0 else (lt_g, lt_l + gain)
        sold_shares[i] += float(sh)
        trades.append(Trade(lot.symbol, "sell", sh, float(p[i]), lot.lot_id, gain, term))
    bought_shares = np.zeros(n)
    for i, sh in sorted(buys.items()):
        bought_shares[i] = float(sh)
        trades.append(Trade(snap.symbols[i], "buy", sh, float(p[i])))

    held = np.bincount(la.name, weights=la.weight * V / p[la.name], minlength=n)
    new_value = (held - sold_shares + bought_shares) * p
    total = new_value.sum() + cash_end / 100.0
    w = new_value / total
    traded = float((sold_shares * p).sum() + (bought_shares * p).sum())
    if s.taxable:
        st_net, lt_net = st_g + st_l, lt_g + lt_l
        tax = round(st_net * s.st_rate + lt_net * s.lt_rate)
        harvested = -(st_l + lt_l)
    else:
        tax, harvested = 0, 0
    return SolveResult(
        status="optimal",
        reason=None,
        solve_ms=(time.perf_counter() - t0) * 1e3,
        trades=tuple(trades),
        weights={snap.symbols[i]: float(w[i]) for i in np.flatnonzero(w > 0)},
        cash_weight=cash_end / 100.0 / total,
        te_ex_ante=snap.model.te(w - snap.benchmark),
        realized=Realized(st_g, st_l, lt_g, lt_l),
        tax_estimate_cents=int(tax),
        harvested_loss_cents=int(harvested),
        turnover=traded / (2 * V),
        passes=passes,
        iterations=iters,
    )
