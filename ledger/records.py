"""The wash-sale engine's records: a trade (``TradeIn``), an open lot, a sale and the replacement
shares that absorbed its loss, an account."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class TradeIn:
    """One row of a trade history (domain.md §9)."""

    date: dt.date
    account: str
    household: str
    account_type: str  # taxable | ira | trust | other
    symbol: str
    side: str  # buy | sell
    quantity: Decimal
    price: Decimal  # dollars per share
    lot_id: str | None = None
    row: int | None = None  # source row, for error messages


@dataclass(slots=True)
class OpenLot:
    lot_id: str
    account: str
    symbol: str
    quantity: Decimal
    basis_cents: int
    acquired: dt.date
    holding_start: dt.date
    purchase_id: str  # the purchase the shares came from (kept through splits)
    capacity: Decimal  # shares not yet used as replacement shares
    seq: int  # creation order: ties of ``acquired`` go to the earlier lot

    @property
    def holding_from(self) -> dt.date:
        """The holding-period start (the solver reads lots through this, as on ``taxview.core.records.Lot``)."""
        return self.holding_start

    def copy(self) -> OpenLot:
        return OpenLot(
            self.lot_id,
            self.account,
            self.symbol,
            self.quantity,
            self.basis_cents,
            self.acquired,
            self.holding_start,
            self.purchase_id,
            self.capacity,
            self.seq,
        )


@dataclass(slots=True)
class Replacement:
    lot_id: str
    account: str
    shares: Decimal
    amount_cents: int
    permanent: bool  # an IRA replacement: lost for good


@dataclass(slots=True)
class Sale:
    sale_id: str
    date: dt.date
    account: str
    symbol: str
    quantity: Decimal
    proceeds_cents: int
    basis_cents: int
    term: str
    lot_id: str
    purchase_id: str
    held_days: int  # days the sold shares were held (for tacking)
    recognized: bool  # False inside an IRA
    disallowed_cents: int = 0
    permanent_cents: int = 0
    replacements: list[Replacement] = field(default_factory=list)
    unmatched: Decimal = Decimal(0)  # loss shares still waiting for a replacement
    loss_left_cents: int = 0  # part of the loss not yet disallowed

    @property
    def gain_cents(self) -> int:
        """Economic gain (negative: a loss) before the wash-sale rule."""
        return self.proceeds_cents - self.basis_cents

    @property
    def recognized_cents(self) -> int:
        return self.gain_cents + self.disallowed_cents + self.permanent_cents if self.recognized else 0


@dataclass(slots=True)
class Account:
    account: str
    household: str
    account_type: str

    @property
    def is_ira(self) -> bool:
        return self.account_type == "ira"
