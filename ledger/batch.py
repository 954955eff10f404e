"""A whole trade history through the engine: its grouping into sales (``sales_of``, also what the
commit planner applies at once) and the batch wash-sale report (``run``, ``Report``) of
``taxview washsale``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter

from .errors import LedgerInputError
from .keys import piece_order
from .records import Account, OpenLot, Sale, TradeIn
from .washsale import Household


def sales_of(trades: Iterable[TradeIn]) -> Iterable[list[TradeIn]]:
    """Group a trade history into what is applied at once: a buy alone; sells of one symbol in one
    account on one date that follow each other among their household's rows, together (one order
    with several lot allocations). Other households' rows in between change nothing."""
    gathering: dict[str, list[TradeIn]] = {}  # household -> the sale it is gathering
    for t in trades:
        group = gathering.get(t.household)
        if group is not None:
            first = group[0]
            if t.side == "sell" and (t.date, t.account, t.symbol) == (first.date, first.account, first.symbol):
                group.append(t)
                continue
            yield gathering.pop(t.household)
        if t.side == "sell":
            gathering[t.household] = [t]
        else:
            yield [t]
    yield from gathering.values()


@dataclass(slots=True)
class Report:
    sales: list[Sale]
    lots: list[OpenLot]
    accounts: dict[str, Account]


def run(trades: Iterable[TradeIn], identical: Mapping[str, str] | None = None) -> Report:
    """Apply a whole trade history (any number of households), in order."""
    households: dict[str, Household] = {}
    account_home: dict[str, str] = {}
    for group in sales_of(trades):
        t = group[0]
        home = account_home.setdefault(t.account, t.household)
        if home != t.household:
            where = f"row {t.row}: " if t.row is not None else ""
            raise LedgerInputError(
                "household", f"{where}account {t.account!r} is in household {home!r}, not {t.household!r}"
            )
        hh = households.get(t.household)
        if hh is None:
            hh = households[t.household] = Household(t.household, identical)
        if t.side == "sell":
            hh.apply_sale(group)
        else:
            hh.apply(t)
    # by date, then household, then order of sale (each household's sales are in that order)
    sales = [s for _, hh in sorted(households.items()) for s in hh.sales]
    sales.sort(key=attrgetter("date"))
    lots = sorted(
        (x for hh in households.values() for x in hh.lots.values()),
        key=lambda x: (x.account, x.symbol, x.acquired, x.seq, piece_order(x.lot_id), x.lot_id),
    )
    accounts = {a.account: a for hh in households.values() for a in hh.accounts.values()}
    return Report(sales, lots, accounts)
