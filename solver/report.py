"""The report: rounded trades as ``SolveResult`` (realized gains by term, weights after, TE, tax)."""

from __future__ import annotations

import time
from decimal import Decimal

import numpy as np

from taxview.core.records import Trade
from taxview.core.tax import term_of

from .account import Account
from .budget import realized_cents
from .limits import Limits
from .passes import Solution
from .rounding import Rounded
from .status import SolveStatus
from .tilts import exposures, missed
from .types import Realized, SolveResult


def failed(status: SolveStatus, reason: str | None, t0: float, passes: int = 0, iterations: int = 0) -> SolveResult:
    """A result without trades; its status is ``status.public`` (infeasible or error)."""
    return SolveResult(
        status=status.public.value,
        reason=reason,
        solve_ms=(time.perf_counter() - t0) * 1e3,
        passes=passes,
        iterations=iterations,
    )


def unkept(
    account: Account, limits: Limits, solution: Solution, w: np.ndarray, cash_weight: float, te: float
) -> tuple[str, ...]:
    """The mandate's limits the rounded trades do not keep, as notes (none when all hold): the TE
    budget, the cash maximum, the per-name cap (where the solve did not already give way on them:
    cash held when too few names may be bought, a cap over lots that may not be sold, a TE budget
    wash-sale windows break)."""
    s, snap, notes = account.settings, account.snap, []
    te_max = (account.mandate or s).te_max  # ``te``: the budgeted TE (with outside holdings, combined)
    if te > te_max * (1 + 1e-3) and not any(n.startswith("TE budget") for n in solution.notes):
        notes.append(f"after rounding to whole shares the TE is {te:.2%}, over the budget {te_max:.2%}")
    if cash_weight > s.cash_max + 1e-6 and solution.cash_max < 1:
        notes.append(f"after rounding the cash is {cash_weight:.2%}, over cash_max {s.cash_max:.2%}")
    over = np.flatnonzero(w > limits.cap * (1 + 1e-6) + 1e-9)
    if len(over):
        names = ", ".join(f"{snap.symbols[i]} {w[i]:.2%}" for i in over[:5])
        notes.append(f"after rounding {len(over)} names are over their cap ({names})")
    return tuple(notes)


def report(account: Account, limits: Limits, rounded: Rounded, solution: Solution, t0: float) -> SolveResult:
    """The optimal result; ``t0`` is when the solve started (``time.perf_counter``)."""
    snap, s, la, V, lots = account.snap, account.settings, account.lot_slots, account.value, account.lots
    p, n, cents = snap.prices, account.n, snap.price_cents
    trades: list[Trade] = []
    st_g = st_l = lt_g = lt_l = 0
    sold_shares = np.zeros(n)
    # a name's sells back to back: the ledger books them as one sale (none washes another)
    for k, sh in sorted(rounded.sells, key=lambda ks: int(la.name[ks[0]])):
        lot = lots[k]
        i = int(la.name[k])
        gain = realized_cents(lot, sh, cents[i])
        term = term_of(lot.holding_from, snap.date)
        if term == "short":
            st_g, st_l = (st_g + gain, st_l) if gain >= 0 else (st_g, st_l + gain)
        else:
            lt_g, lt_l = (lt_g + gain, lt_l) if gain >= 0 else (lt_g, lt_l + gain)
        sold_shares[i] += float(sh)
        trades.append(Trade(lot.symbol, "sell", sh, Decimal(cents[i]) / 100, lot.lot_id, gain, term))
    bought_shares = np.zeros(n)
    for i, sh in rounded.buys:
        bought_shares[i] = float(sh)
        trades.append(Trade(snap.symbols[i], "buy", sh, Decimal(cents[i]) / 100))

    held = np.bincount(la.name, weights=la.weight * V / p[la.name], minlength=n)
    new_value = (held - sold_shares + bought_shares) * p
    total = new_value.sum() + rounded.cash_end / 100.0
    w = new_value / total
    te = snap.model.te(w - snap.benchmark)
    combined = None  # outside holdings ``complete``: the TE of the account and them together
    if account.alpha != 1.0 and account.offset is not None:
        combined = account.alpha * snap.model.te(w - snap.benchmark + account.offset)
    traded = float((sold_shares * p).sum() + (bought_shares * p).sum())
    if s.taxable:
        st_net, lt_net = st_g + st_l, lt_g + lt_l
        tax = round(st_net * s.st_rate + lt_net * s.lt_rate)
        harvested = -(st_l + lt_l)
    else:
        tax, harvested = 0, 0
    return SolveResult(
        status=SolveStatus.OPTIMAL.value,
        reason=None,
        solve_ms=(time.perf_counter() - t0) * 1e3,
        trades=tuple(trades),
        weights={snap.symbols[i]: float(w[i]) for i in np.flatnonzero(w > 0)},
        cash_weight=rounded.cash_end / 100.0 / total,
        te_ex_ante=te,
        realized=Realized(st_g, st_l, lt_g, lt_l),
        tax_estimate_cents=int(tax),
        harvested_loss_cents=int(harvested),
        turnover=traded / (2 * V),
        passes=solution.passes,
        iterations=solution.iterations,
        notes=solution.notes
        + rounded.notes
        + unkept(account, limits, solution, w, rounded.cash_end / 100.0 / total, te if combined is None else combined)
        + missed(account.tilts, w - snap.benchmark),
        active_exposures=exposures(snap, account.tilts, w - snap.benchmark),
        te_combined=combined,
    )
