"""Orders: one account's lot-level trades as what a custodian receives (domain.md §10).

One order per account, symbol and side, with its lot allocations — the specific-lot instruction: a
sell order lists the lots sold, in the order they are sold, each with its shares, basis, realized
gain and term; a buy order lists the lots it opens (their ids where the trades carry them: the
ledger's, not the solver's). Pure and exact: shares stay ``Decimal``, money integer cents, and the
allocations of an order always sum to its shares. ``taxview solve --json`` and the nightly's
``orders.parquet`` are both made here, so the count of orders is one number everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .money import cents_of, cents_to_dollars
from .records import Trade

SIDES = ("buy", "sell")


@dataclass(frozen=True, slots=True)
class Allocation:
    """One lot of an order. A sell's: the lot sold (``lot_id`` None: the trade named none, the
    custodian's default lot relief applies) with the basis of the shares sold, the realized gain
    (negative: a loss) and ``term``, each None where the trade does not carry its gain. A buy's:
    the lot it opens (None until the ledger names it); basis, gain and term None."""

    lot_id: str | None
    shares: Decimal
    basis_cents: int | None = None
    gain_cents: int | None = None
    term: str | None = None  # "short" | "long"


@dataclass(frozen=True, slots=True)
class Order:
    """One account's order in one symbol and side: ``shares`` (the sum of its allocations, exact),
    ``price`` (the limit/reference price, exact dollars per share), ``value_cents`` (what the
    ledger moves in cash for it: the sum of its trades' shares × price, each rounded to the cent)."""

    account: str
    symbol: str
    side: str  # "buy" | "sell"
    shares: Decimal
    price: Decimal
    value_cents: int
    allocations: tuple[Allocation, ...]


def orders_of(account: str, trades: Iterable[Trade]) -> list[Order]:
    """``account``'s trades as orders, sorted by (symbol, side); a buy and a sell of one symbol
    are two orders. A sell's allocation carries its gain when the trade does (``term`` set: the
    solver priced it or the ledger booked it), its basis being the proceeds less that gain (the
    solver's and the ledger's one definition). ``ValueError`` for a side other than buy or sell,
    or trades of one order at different prices (one order has one price)."""
    groups: dict[tuple[str, str], list[Trade]] = {}
    for t in trades:
        if t.side not in SIDES:
            raise ValueError(f"{account}: trade of {t.symbol} has side {t.side!r}, not buy or sell")
        groups.setdefault((t.symbol, t.side), []).append(t)
    out = []
    for (symbol, side), group in sorted(groups.items()):
        prices = {t.price for t in group}
        if len(prices) > 1:
            raise ValueError(
                f"{account}: the {side} order of {symbol} has trades at several prices "
                f"({', '.join(map(str, sorted(prices)))}); one order has one price"
            )
        allocations = tuple(_allocation(t) for t in group)
        out.append(
            Order(
                account,
                symbol,
                side,
                sum((a.shares for a in allocations), Decimal(0)),
                group[0].price,
                sum(cents_of(t.shares, t.price) for t in group),
                allocations,
            )
        )
    return out


def _allocation(t: Trade) -> Allocation:
    if t.side == "buy" or t.term is None:
        return Allocation(t.lot_id, t.shares)
    return Allocation(
        t.lot_id, t.shares, cents_of(t.shares, t.price) - t.realized_gain_cents, t.realized_gain_cents, t.term
    )


def _shares(x: Decimal) -> int | float:
    return int(x) if x == x.to_integral_value() else float(x)


def _dollars(cents: int | None) -> float | None:
    return None if cents is None else cents_to_dollars(cents)


def order_json(o: Order) -> dict[str, Any]:
    """The JSON form (README "taxview solve --json"): shares and prices as the trades', money in
    dollars with exact cents."""
    return {
        "account": o.account,
        "symbol": o.symbol,
        "side": o.side,
        "shares": _shares(o.shares),
        "price": float(o.price),
        "value": cents_to_dollars(o.value_cents),
        "allocations": [
            {
                "lot_id": a.lot_id,
                "shares": _shares(a.shares),
                "basis": _dollars(a.basis_cents),
                "realized_gain": _dollars(a.gain_cents),
                "term": a.term,
            }
            for a in o.allocations
        ],
    }
