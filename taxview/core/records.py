"""The records every room shares: a lot, a trade, a household's restrictions.

Frozen and immutable. Units: quantities in shares (``Decimal``, whole or fractional), money in
integer cents where it is money (lot basis, realized gain), prices in dollars. ``money.py`` is the
one place converting between them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Lot:
    """One open tax lot: ``basis_cents`` is the total adjusted cost basis of ``quantity`` shares."""

    lot_id: str
    symbol: str
    quantity: Decimal
    basis_cents: int
    acquired: dt.date
    holding_start: dt.date | None = None  # after a wash-sale tack; defaults to ``acquired``

    @property
    def holding_from(self) -> dt.date:
        return self.holding_start or self.acquired


@dataclass(frozen=True, slots=True)
class Restrictions:
    """Household wash-sale restrictions for one account on one date (domain.md §3)."""

    no_buy: frozenset[str] = frozenset()  # sold at a loss in the household within 30 days
    no_loss_sale: frozenset[str] = frozenset()  # bought in the household within 30 days


class Trade(NamedTuple):
    """One trade: the solver makes it, the ledger books it as it is (``LedgerStore.commit``).

    Sells name a lot (or none: first in, first out), buys name none (the ledger makes the id) or a
    new one. ``price`` is exact dollars per share to the cent (``Decimal``), the price booked.
    A NamedTuple rather than a frozen dataclass: just as immutable, and an account makes about a
    thousand of them per rebalance (construction is 3× cheaper).
    """

    symbol: str
    side: str  # "buy" | "sell"
    shares: Decimal
    price: Decimal
    lot_id: str | None = None
    realized_gain_cents: int = 0
    term: str | None = None  # "short" | "long" for sells


@dataclass(frozen=True, slots=True)
class Outside:
    """Holdings the account's owner keeps elsewhere (not tradable here), and what the mandate does
    with them: ``exclude`` (the names are not bought here) or ``complete`` (the TE budget applies
    to the account and these holdings together against the benchmark)."""

    mode: str  # "exclude" | "complete"
    holdings: tuple[tuple[str, Decimal], ...]  # (symbol, dollars), sorted by symbol

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(s for s, _ in self.holdings)
