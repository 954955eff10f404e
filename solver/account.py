"""The account as the solver sees it: validated input, lots priced (tax per dollar) and slotted.

Bad input raises ``InputError`` naming the field, before anything is solved.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import numpy as np

from taxview.core.errors import InputError
from taxview.core.mandate import MAX_TILT
from taxview.core.records import Lot
from taxview.core.tax import add_one_year

from . import outside
from .slots import LotSlots, assign_slots
from .snapshot import Snapshot
from .tilts import Tilt, account_tilts
from .types import AccountSettings

MAX_OUTSIDE_DOLLARS = Decimal(10) ** 13  # as the mandate's amounts (``taxview.core.mandate``)


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
        "min_trade_weight": 0 <= s.min_trade_weight < 1,
    }
    for name, ok in checks.items():
        value = getattr(s, name)
        if not ok or not math.isfinite(value):
            raise InputError(name, f"invalid value {value!r}")
    if s.account_type not in {"taxable", "ira", "trust", "other"}:
        raise InputError("account_type", f"{s.account_type!r} is not taxable|ira|trust|other")
    whole = lambda v, least: isinstance(v, int) and not isinstance(v, bool) and v >= least  # noqa: E731
    if s.max_names_traded is not None and not whole(s.max_names_traded, 1):
        raise InputError("max_names_traded", f"must be a whole number >= 1 or None, got {s.max_names_traded!r}")
    if not whole(s.term_horizon_days, 0):
        raise InputError("term_horizon_days", f"must be a whole number >= 0, got {s.term_horizon_days!r}")
    allowance = s.gain_allowance_cents
    if allowance is not None and (isinstance(allowance, bool) or not isinstance(allowance, int)):
        raise InputError("gain_allowance_cents", f"must be integer cents or None, got {allowance!r}")
    for style, t in s.tilts:
        if not isinstance(style, str) or isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise InputError("tilts", f"a tilt is (style, standard deviations), got {(style, t)!r}")
    if len({style for style, _ in s.tilts}) != len(s.tilts):
        raise InputError("tilts", "a style is tilted twice")
    for style, t in s.tilts:
        if abs(t) > MAX_TILT:
            raise InputError(f"tilts.{style}", f"a tilt must be within ±{MAX_TILT:g} standard deviations, got {t!r}")
    if s.outside is not None and s.outside.mode not in ("exclude", "complete"):
        raise InputError("outside", f"mode must be exclude|complete, got {s.outside.mode!r}")
    if s.outside is not None:
        if not s.outside.holdings:
            raise InputError("outside.holdings", "at least one symbol with its dollars")
        for symbol, d in s.outside.holdings:
            # NaN dollars once reached CLARABEL (a numerical error), infinite ones a ZeroDivisionError
            ok = isinstance(d, (Decimal, int, float)) and not isinstance(d, bool)
            if not ok or not (Decimal(str(d)).is_finite() and 0 < Decimal(str(d)) < MAX_OUTSIDE_DOLLARS):
                raise InputError(f"outside.holdings.{symbol}", f"must be dollars > 0 and under $10^13, got {d!r}")


class LotArrays(NamedTuple):
    """The lots' numbers as (N,) float64/int64 columns, in the input's order."""

    name: np.ndarray  # universe index
    quantity: np.ndarray  # shares
    basis_cents: np.ndarray  # total basis, cents (float64)


def validate_lots(lots: Sequence[Lot], snap: Snapshot) -> LotArrays:
    """Every lot: unique id, a symbol of the universe, quantity > 0, basis ≥ 0, acquired and its
    holding period's start ≤ date."""
    N = len(lots)
    name = np.fromiter((snap.index.get(lot.symbol, -1) for lot in lots), dtype=np.int64, count=N)
    try:
        qty = np.fromiter((float(lot.quantity) for lot in lots), dtype=np.float64, count=N)
        basis = np.fromiter((lot.basis_cents for lot in lots), dtype=np.float64, count=N)
    except (TypeError, ValueError) as exc:
        raise InputError("quantity/basis", f"a lot has a non-numeric quantity or basis: {exc}") from None
    acquired = np.fromiter((lot.acquired.toordinal() for lot in lots), dtype=np.int64, count=N)
    holding = np.fromiter((lot.holding_from.toordinal() for lot in lots), dtype=np.int64, count=N)
    checks = (
        ("symbol", name < 0, lambda x: f"{x.symbol!r} is not in the universe"),
        (
            "quantity",
            ~(np.isfinite(qty) & (qty > 0)),
            lambda x: f"quantity must be a finite number > 0, got {x.quantity!r}",
        ),
        ("basis", ~(basis >= 0), lambda x: f"basis must be >= 0 cents, got {x.basis_cents!r}"),
        ("acquired", acquired > snap.date.toordinal(), lambda x: f"acquired {x.acquired} after {snap.date}"),
        (
            "holding_start",
            holding > snap.date.toordinal(),
            lambda x: f"holding period starts {x.holding_from} after {snap.date}",
        ),
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
    return LotArrays(name, qty, basis)


def days_to_long_term(lots: Sequence[Lot], sold: dt.date) -> np.ndarray:
    """(N,) days until a sale would be long-term (≤ 0: it already is)."""
    starts = [lot.holding_from for lot in lots]
    first = {start: (add_one_year(start) - sold).days + 1 for start in set(starts)}
    return np.fromiter(map(first.__getitem__, starts), dtype=np.int64, count=len(starts))


def tax_rates(lots: Sequence[Lot], sold: dt.date, s: AccountSettings) -> np.ndarray:
    """(N,) the rate each lot's gain (or loss) is priced at in the objective when sold on ``sold``.

    Long-term lots: the long-term rate. Short-term lots: the short-term rate, and within
    ``term_horizon_days`` of turning long-term the short-term rate plus the difference
    (st − lt): selling a gain now costs that much more than waiting the few days would, and a
    loss harvested now is worth that much more than the same loss harvested long-term. The
    realized figures and the tax estimate use the true rates (``solver.report``).
    """
    days = days_to_long_term(lots, sold)
    soon = (days > 0) & (days <= s.term_horizon_days)
    return np.where(days <= 0, s.lt_rate, np.where(soon, 2 * s.st_rate - s.lt_rate, s.st_rate))


@dataclass(frozen=True, slots=True)
class Account:
    """One account on ``snap.date``, ready to solve: everything the stages after validation read."""

    snap: Snapshot
    lots: Sequence[Lot]
    cash_cents: int
    settings: AccountSettings
    value: float  # V: holdings at today's prices plus cash, dollars
    lot_slots: LotSlots
    w0: np.ndarray  # (n,) held weight per name
    gain: np.ndarray  # (N,) net gain per dollar sold of each lot (1 − basis/value, ≤ 1), any account type
    # the mandate's settings as given (``settings`` is what the optimizer sees: outside holdings
    # ``complete`` scale its te_max and lambda_te, ``exclude`` adds exclusions: ``solver.outside``)
    mandate: AccountSettings | None = None
    tilts: tuple[Tilt, ...] = ()
    offset: np.ndarray | None = None  # (n,) outside holdings' active-weight offset d (zeros: none)
    alpha: float = 1.0  # the account's share of account + outside holdings (``complete``)

    @property
    def n(self) -> int:
        return len(self.snap.symbols)

    @property
    def min_trade(self) -> float:
        """The least a name is traded by (its sells together, or its buy), as a weight."""
        s = self.settings
        return max(s.min_trade_dollars / self.value, s.min_trade_weight)


def read_account(
    snap: Snapshot, lots: Sequence[Lot], cash_cents: int, settings: AccountSettings, max_slots: int
) -> Account:
    """Validate, price each lot's tax per dollar sold today, and lay the lots out in slots."""
    validate_settings(settings)
    outside.check_outside(settings, snap)
    tilts = account_tilts(settings, snap)
    mandate, settings = settings, outside.excluded(settings)
    arrays = validate_lots(lots, snap)
    if not isinstance(cash_cents, int) or isinstance(cash_cents, bool):
        raise InputError("cash", f"cash must be integer cents, got {cash_cents!r}")
    # below zero: a withdrawal booked tonight, which the solve raises by selling (cash >= target)
    n, p = len(snap.symbols), snap.prices
    held_value = float(arrays.quantity @ p[arrays.name]) if len(lots) else 0.0
    V = held_value + cash_cents / 100.0
    if V <= 0:
        raise InputError(
            "cash",
            "account has no holdings and no cash"
            if cash_cents >= 0
            else f"a withdrawal leaves the account at ${V:,.2f}: more than it holds",
        )
    name, basis = arrays.name, arrays.basis_cents / 100.0
    value = arrays.quantity * p[name]
    gain_frac = 1.0 - basis / value
    if settings.taxable:
        tax = tax_rates(lots, snap.date, settings) * gain_frac
    else:  # no lot-level tax logic: one slot per name, lots sold in the order held
        tax, max_slots = np.zeros(len(lots)), 1
    slots = assign_slots(name, value / V, tax, gain_frac < 0, n=n, max_slots=max_slots)
    w0 = np.bincount(slots.name, weights=slots.weight, minlength=n)
    d, alpha = outside.offset(settings, snap, V)
    settings = outside.solver_settings(settings, alpha)
    return Account(snap, lots, cash_cents, settings, V, slots, w0, gain_frac, mandate, tilts, d, alpha)
