"""The one boundary between exact money (integer cents, ``Decimal`` shares) and float64 math."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
SHARE_QUANTUM = Decimal("0.000001")  # fractional shares are kept to a millionth
_ONE = Decimal(1)


def dollars_to_cents(x: float | Decimal | str) -> int:
    """Round a dollar amount to integer cents, half to even."""
    return int((Decimal(str(x)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def cents_to_dollars(c: int) -> float:
    """For reports only (JSON numbers with exact cents): 12345 -> 123.45."""
    return float(Decimal(c) / 100)


def price_cents(price: float) -> int:
    if not math.isfinite(price) or price <= 0:
        raise ValueError(f"price must be finite and > 0, got {price!r}")
    return dollars_to_cents(price)


def cents_of(shares: Decimal, price: Decimal) -> int:
    """Proceeds or cost: ``shares`` × ``price`` (exact dollars per share) in cents, half to even.
    The one place shares times a price becomes money (the ledger, the backtest, ``value_cents``)."""
    return int((shares * price * 100).quantize(_ONE, rounding=ROUND_HALF_EVEN))


def cents_at(shares: Decimal, price_cents: int) -> int:
    """``cents_of`` for a price already in cents (the solver's snapshot prices), whole shares fast."""
    if shares == shares.to_integral_value():
        return int(shares) * price_cents
    return int((shares * price_cents).quantize(_ONE, rounding=ROUND_HALF_EVEN))


def value_cents(shares: Decimal, price: float) -> int:
    """Proceeds or cost of ``shares`` at a market ``price`` (float64 dollars, rounded to cents first)."""
    return cents_of(shares, Decimal(price_cents(price)) / 100)


def allocate_basis(basis_cents: int, sold: Decimal, held: Decimal) -> int:
    """Basis of ``sold`` of ``held`` shares; selling all returns the whole basis (no drift)."""
    if sold >= held:
        return basis_cents
    return int((Decimal(basis_cents) * sold / held).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
