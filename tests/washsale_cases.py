"""Trade-history builders shared by the engine tests and the engine-vs-Redis behaviour suite."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ledger.records import TradeIn

ACCOUNT_TYPES = {"A": "taxable", "SPOUSE": "taxable", "IRA": "ira", "OTHER": "taxable"}
HOUSEHOLD = {"A": "H1", "SPOUSE": "H1", "IRA": "H1", "OTHER": "H2"}


def day(text: str, offset: int = 0) -> dt.date:
    return dt.date.fromisoformat(text) + dt.timedelta(days=offset)


def T(date: dt.date | str, account: str, side: str, qty, price, lot: str | None = None, symbol: str = "XYZ") -> TradeIn:
    d = date if isinstance(date, dt.date) else dt.date.fromisoformat(date)
    return TradeIn(
        d,
        account,
        HOUSEHOLD[account],
        ACCOUNT_TYPES[account],
        symbol,
        side,
        Decimal(str(qty)),
        Decimal(str(price)),
        lot,
    )
