"""What the engine accepts: the input limits (shares, price, value, decimal places, dates), a
trade's fields checked (``validate_trade``), and the plain form quantities are stored in."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from .errors import LedgerInputError
from .keys import check_id, check_lot_id, check_symbol, is_id, is_lot_id, is_symbol
from .records import TradeIn

MAX_SHARES = Decimal(10) ** 12  # per trade or lot: far above any real position, safe in Lua's doubles
MAX_PRICE = Decimal(10) ** 7  # dollars per share
MAX_VALUE = Decimal(10) ** 13  # dollars in one trade (cents stay exact in Lua's doubles and Redis integers)
MAX_PLACES = 6  # fractional shares to a millionth (``taxview.core.money.SHARE_QUANTUM``)
_ONE = Decimal(1)
_PLACES = Decimal(1).scaleb(-MAX_PLACES)
EARLIEST = dt.date(1900, 1, 1)


def check_quantity(q: object, where: str = "", field: str = "quantity") -> Decimal:
    """A share count: a finite ``Decimal`` > 0, at most 10^12 shares and 6 decimal places."""
    if not _quantity_ok(q):
        if isinstance(q, Decimal) and q.is_finite() and 0 < q <= MAX_SHARES:
            raise LedgerInputError(field, f"{where}{field} {q} has more than {MAX_PLACES} decimal places")
        raise LedgerInputError(field, f"{where}{field} must be a number of shares > 0 and <= 10^12, got {q!r}")
    return q  # type: ignore[return-value]


def _quantity_ok(q: object) -> bool:
    return (
        type(q) is Decimal
        and q.is_finite()
        and 0 < q <= MAX_SHARES
        and (q.as_tuple().exponent >= -MAX_PLACES or q == q.quantize(_PLACES, rounding=ROUND_HALF_EVEN))
    )


_SIDES = frozenset(("buy", "sell"))
_TYPES = frozenset(("taxable", "ira", "trust", "other"))


def validate_trade(t: TradeIn, where: str | None = None) -> None:
    """Every field of a trade, or ``LedgerInputError`` naming it (``where``: default its row)."""
    if (  # the fast path: everything fine, in one expression
        t.side in _SIDES
        and t.account_type in _TYPES
        and type(t.date) is dt.date
        and t.date >= EARLIEST
        and _names_ok(t.account, t.household, t.symbol)
        and (t.lot_id is None or is_lot_id(t.lot_id))
        and _quantity_ok(t.quantity)
        and type(t.price) is Decimal
        and t.price.is_finite()
        and 0 < t.price <= MAX_PRICE
        and t.quantity * t.price <= MAX_VALUE
    ):
        return
    where = row_prefix(t) if where is None else where
    if t.side not in _SIDES:
        raise LedgerInputError("side", f"{where}side must be buy or sell, got {t.side!r}")
    if t.account_type not in _TYPES:
        raise LedgerInputError("account_type", f"{where}{t.account_type!r} is not taxable|ira|trust|other")
    if type(t.date) is not dt.date or t.date < EARLIEST:
        raise LedgerInputError("date", f"{where}date {t.date!r} is not a date from {EARLIEST}")
    check_id("account", t.account, where)
    check_id("household", t.household, where)
    check_symbol(t.symbol, where)
    if t.lot_id is not None:
        check_lot_id(t.lot_id, where)
    check_quantity(t.quantity, where)
    if not isinstance(t.price, Decimal) or not t.price.is_finite() or not 0 < t.price <= MAX_PRICE:
        raise LedgerInputError("price", f"{where}price must be a number > 0 and <= 10^7, got {t.price!r}")
    raise LedgerInputError("quantity", f"{where}{t.quantity} shares at {t.price} is over $10^13 in one trade")


@lru_cache(maxsize=1 << 16)  # the same accounts and symbols come back trade after trade
def _names_ok(account: object, household: object, symbol: object) -> bool:
    return is_id(account) and is_id(household) and is_symbol(symbol)


def plain_shares(q: Decimal) -> Decimal:
    """``5E+2`` -> ``500``, ``1.0000000`` -> ``1``: the form quantities are stored and shown in."""
    q = q.normalize()
    return q.quantize(_ONE) if q.as_tuple().exponent > 0 else q


def plain_trade(t: TradeIn) -> TradeIn:
    exponent = t.quantity.as_tuple().exponent
    if isinstance(exponent, int) and -MAX_PLACES <= exponent <= 0:
        return t
    return replace(t, quantity=plain_shares(t.quantity))


def row_prefix(t: TradeIn) -> str:
    return f"row {t.row}: " if t.row is not None else ""
