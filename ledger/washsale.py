"""The household wash-sale rule (IRC §1091; domain.md §3), pure Python, exact amounts.

Trades are applied one at a time, in date order, to a household's state: open lots (with how
many of their shares may still serve as replacement shares, "capacity") and pending losses
(loss sales whose shares are not all matched yet, waiting up to 30 days for a purchase).

* A loss sale is matched first against shares the household bought in the 30 days before it (or
  the same day), earliest acquisition first; what is left waits for purchases in the 30 days
  after it, sales in order of sale. Each replacement share absorbs one loss at most.
* Shares of the sold lot's own purchase never replace it (the part-of-one-purchase exception).
* A replacement in a taxable account gets the disallowed loss added to its basis and its holding
  period moved back by the days the sold shares were held; the lot is split when only part of it
  is used (``b`` → ``b.1`` used, ``b.2`` the rest). In an IRA the loss is lost for good and the
  IRA lot is not adjusted. Sales inside an IRA recognize nothing and wash nothing.
* Gains are never washed. ``identical`` maps symbols to a shared key (GOOG/GOOGL).

Money is integer cents, quantities ``Decimal`` shares. The ledger store plans every commit with
this module, so the batch report (``taxview washsale``) and the Redis ledger cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from solver.money import allocate_basis
from solver.tax import term_of

from .errors import LedgerInputError

WINDOW_DAYS = 30


def cents_of(quantity: Decimal, price: Decimal) -> int:
    """Proceeds or cost: quantity × price in cents, half to even."""
    return int((quantity * price * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


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
        """The holding-period start (the solver reads lots through this, as on ``solver.types.Lot``)."""
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


class Household:
    """One household's wash-sale state; ``apply`` mutates it and records what changed."""

    def __init__(self, household: str, identical: Mapping[str, str] | None = None) -> None:
        self.household = household
        self.identical = dict(identical or {})
        self.accounts: dict[str, Account] = {}
        self.lots: dict[str, OpenLot] = {}
        self.by_key: dict[str, dict[str, OpenLot]] = {}  # identity key -> its open lots
        # loss sales with unmatched shares, per identity key, in order of sale
        self.pending_by_key: dict[str, list[Sale]] = {}
        self.sales: list[Sale] = []
        self.last_date: dt.date | None = None
        self.seq = 0
        self.sale_seq = 0
        self.bites = 0  # wash-sale matches made (a nightly commit refuses any)
        self.last_parts: list[tuple[OpenLot, Decimal]] = []  # (lot, shares) of the last sell applied
        # what the last ``apply`` calls touched (the store writes exactly these)
        self.changed_lots: set[str] = set()
        self.removed_lots: dict[str, str] = {}  # lot id -> symbol
        self.changed_sales: dict[str, Sale] = {}

    def key(self, symbol: str) -> str:
        return self.identical.get(symbol, symbol)

    @property
    def pending(self) -> list[Sale]:
        """All pending loss sales, in order of sale."""
        return sorted((s for v in self.pending_by_key.values() for s in v), key=lambda s: _sale_number(s))

    @pending.setter
    def pending(self, sales: list[Sale]) -> None:
        self.pending_by_key = {}
        for sale in sorted(sales, key=_sale_number):
            self.pending_by_key.setdefault(self.key(sale.symbol), []).append(sale)

    def reset_changes(self) -> None:
        self.changed_lots.clear()
        self.removed_lots.clear()
        self.changed_sales.clear()

    # -- helpers -----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def load(self, lot: OpenLot) -> None:
        """Add a stored lot to the state (not a change)."""
        self.lots[lot.lot_id] = lot
        self.by_key.setdefault(self.key(lot.symbol), {})[lot.lot_id] = lot

    def _put(self, lot: OpenLot) -> None:
        self.load(lot)
        self.changed_lots.add(lot.lot_id)
        self.removed_lots.pop(lot.lot_id, None)

    def _drop(self, lot_id: str) -> None:
        symbol = self.lots.pop(lot_id).symbol
        del self.by_key[self.key(symbol)][lot_id]
        self.removed_lots[lot_id] = symbol
        self.changed_lots.discard(lot_id)

    def _bite(self, sale: Sale, lot: OpenLot, shares: Decimal) -> None:
        """``shares`` of ``lot`` absorb their share of ``sale``'s remaining loss."""
        self.bites += 1
        amount = allocate_basis(sale.loss_left_cents, shares, sale.unmatched)
        sale.unmatched -= shares
        sale.loss_left_cents -= amount
        self.changed_sales[sale.sale_id] = sale
        if self.accounts[lot.account].is_ira:
            lot.capacity -= shares
            self._put(lot)
            sale.permanent_cents += amount
            sale.replacements.append(Replacement(lot.lot_id, lot.account, shares, amount, True))
            return
        if shares < lot.quantity:  # split: the used shares become their own lot
            used_basis = allocate_basis(lot.basis_cents, shares, lot.quantity)
            rest = lot.copy()
            rest.lot_id = f"{lot.lot_id}.2"
            rest.quantity = lot.quantity - shares
            rest.basis_cents = lot.basis_cents - used_basis
            rest.capacity = lot.capacity - shares
            self._drop(lot.lot_id)
            used = lot.copy()
            used.lot_id = f"{lot.lot_id}.1"
            used.quantity, used.basis_cents, used.capacity = shares, used_basis, Decimal(0)
            self._put(rest)
            lot = used
        else:
            lot.capacity -= shares
        lot.basis_cents += amount
        lot.holding_start = lot.holding_start - dt.timedelta(days=sale.held_days)
        self._put(lot)
        sale.disallowed_cents += amount
        sale.replacements.append(Replacement(lot.lot_id, lot.account, shares, amount, False))

    # -- the rule ----------------------------------------------------------------------------

    def register(self, account: str, account_type: str) -> Account:
        acct = self.accounts.get(account)
        if acct is None:
            acct = self.accounts[account] = Account(account, self.household, account_type)
        elif acct.account_type != account_type:
            raise LedgerInputError("account_type", f"account {account!r} is {acct.account_type}, not {account_type}")
        return acct

    def apply(self, t: TradeIn) -> Sale | OpenLot:
        """Apply one trade; raises ``LedgerInputError`` (state unchanged) for bad input."""
        where = f"row {t.row}: " if t.row is not None else ""
        validate_trade(t, where)
        if t.household != self.household:
            raise LedgerInputError(
                "household", f"{where}trade of household {t.household!r} applied to {self.household!r}"
            )
        if self.last_date is not None and t.date < self.last_date:
            raise LedgerInputError(
                "date",
                f"{where}{t.date} is before the household's last trade {self.last_date}; trades must be in date order",
            )
        acct = self.accounts.get(t.account)
        if acct is not None and acct.account_type != t.account_type:
            raise LedgerInputError(
                "account_type", f"{where}account {t.account!r} is {acct.account_type}, not {t.account_type}"
            )
        if t.side == "sell":
            parts = self.last_parts = self._lot_to_sell(t, where)
        else:
            parts = []
            same = self.by_key.get(self.key(t.symbol), {})
            if t.lot_id and (t.lot_id in self.lots or any(x.startswith(t.lot_id + ".") for x in same)):
                raise LedgerInputError("lot_id", f"{where}lot id {t.lot_id!r} is already open")
        # validated: from here on the trade is applied in full
        acct = self.register(t.account, t.account_type)
        self.last_date = t.date
        return self._sell(t, acct, parts) if t.side == "sell" else self._buy(t, acct)

    def _lot_to_sell(self, t: TradeIn, where: str) -> list[tuple[OpenLot, Decimal]]:
        if t.lot_id:
            lot = self.lots.get(t.lot_id)
            if lot is None:
                raise LedgerInputError("lot_id", f"{where}no open lot {t.lot_id!r}")
            if lot.account != t.account:
                raise LedgerInputError(
                    "lot_id", f"{where}lot {t.lot_id!r} belongs to account {lot.account!r}, not {t.account!r}"
                )
            if lot.symbol != t.symbol:
                raise LedgerInputError("symbol", f"{where}lot {t.lot_id!r} is {lot.symbol}, not {t.symbol}")
            if t.quantity > lot.quantity:
                raise LedgerInputError(
                    "quantity", f"{where}selling {t.quantity} of lot {t.lot_id!r} which holds {lot.quantity}"
                )
            return [(lot, t.quantity)]
        fifo = sorted(
            (
                x
                for x in self.by_key.get(self.key(t.symbol), {}).values()
                if x.account == t.account and x.symbol == t.symbol
            ),
            key=lambda x: (x.acquired, x.seq),
        )
        held = sum((x.quantity for x in fifo), Decimal(0))
        if t.quantity > held:
            raise LedgerInputError(
                "quantity", f"{where}selling {t.quantity} {t.symbol} in {t.account!r} which holds {held}"
            )
        out, left = [], t.quantity
        for x in fifo:
            if left <= 0:
                break
            take = min(left, x.quantity)
            out.append((x, take))
            left -= take
        return out

    def _sell(self, t: TradeIn, acct: Account, parts: list[tuple[OpenLot, Decimal]]) -> Sale:
        sale = None
        proceeds_total = cents_of(t.quantity, t.price)
        proceeds_left, qty_left = proceeds_total, t.quantity
        for lot, q in parts:
            proceeds = allocate_basis(proceeds_left, q, qty_left)  # exact split of one fill
            proceeds_left, qty_left = proceeds_left - proceeds, qty_left - q
            basis = allocate_basis(lot.basis_cents, q, lot.quantity)
            self.sale_seq += 1
            sale = Sale(
                sale_id=f"{self.household}:{self.sale_seq}",
                date=t.date,
                account=t.account,
                symbol=t.symbol,
                quantity=q,
                proceeds_cents=proceeds,
                basis_cents=basis,
                term=term_of(lot.holding_start, t.date),
                lot_id=lot.lot_id,
                purchase_id=lot.purchase_id,
                held_days=(t.date - lot.holding_start).days,
                recognized=not acct.is_ira,
            )
            lot.quantity -= q
            lot.basis_cents -= basis
            lot.capacity = min(lot.capacity, lot.quantity)
            if lot.quantity == 0:
                self._drop(lot.lot_id)
            else:
                self._put(lot)
            self.sales.append(sale)
            self.changed_sales[sale.sale_id] = sale
            if sale.recognized and sale.gain_cents < 0:
                sale.unmatched, sale.loss_left_cents = q, -sale.gain_cents
                self._match_earlier_purchases(sale)
                if sale.unmatched > 0:
                    self.pending_by_key.setdefault(self.key(sale.symbol), []).append(sale)
        assert sale is not None
        return sale

    def _match_earlier_purchases(self, sale: Sale) -> None:
        start = sale.date - dt.timedelta(days=WINDOW_DAYS)
        key = self.key(sale.symbol)
        candidates = sorted(
            (
                x
                for x in self.by_key.get(key, {}).values()
                if x.capacity > 0
                and start <= x.acquired <= sale.date
                and self.key(x.symbol) == key
                and x.purchase_id != sale.purchase_id
            ),
            key=lambda x: (x.acquired, x.seq),
        )
        for lot in candidates:
            if sale.unmatched <= 0:
                break
            self._bite(sale, lot, min(sale.unmatched, lot.capacity))

    def _buy(self, t: TradeIn, acct: Account) -> OpenLot:
        seq = self._next_seq()
        lot_id = t.lot_id or f"{t.account}-{t.date:%Y%m%d}-{seq}"
        lot = OpenLot(
            lot_id,
            t.account,
            t.symbol,
            t.quantity,
            cents_of(t.quantity, t.price),
            t.date,
            t.date,
            lot_id,
            t.quantity,
            seq,
        )
        self._put(lot)
        start = t.date - dt.timedelta(days=WINDOW_DAYS)
        key = self.key(t.symbol)
        waiting = [s for s in self.pending_by_key.get(key, ()) if s.date >= start and s.unmatched > 0]
        current: OpenLot | None = lot  # the piece of this purchase not yet used as replacement
        for sale in waiting:
            if current is None or current.capacity <= 0:
                break
            if sale.purchase_id == lot.purchase_id:
                continue
            shares = min(sale.unmatched, current.capacity)
            split = not acct.is_ira and shares < current.quantity
            self._bite(sale, current, shares)
            if not acct.is_ira:
                current = self.lots[f"{current.lot_id}.2"] if split else None
        if waiting or key in self.pending_by_key:
            self.pending_by_key[key] = [s for s in waiting if s.unmatched > 0]
        return lot


def _sale_number(sale: Sale) -> int:
    return int(sale.sale_id.rsplit(":", 1)[1])


def validate_trade(t: TradeIn, where: str = "") -> None:
    if t.side not in ("buy", "sell"):
        raise LedgerInputError("side", f"{where}side must be buy or sell, got {t.side!r}")
    if t.account_type not in ("taxable", "ira", "trust", "other"):
        raise LedgerInputError("account_type", f"{where}{t.account_type!r} is not taxable|ira|trust|other")
    for name in ("account", "household", "symbol"):
        if not getattr(t, name):
            raise LedgerInputError(name, f"{where}{name} is empty")
    if not isinstance(t.quantity, Decimal) or not t.quantity.is_finite() or t.quantity <= 0:
        raise LedgerInputError("quantity", f"{where}quantity must be a number > 0, got {t.quantity!r}")
    if not isinstance(t.price, Decimal) or not t.price.is_finite() or t.price <= 0:
        raise LedgerInputError("price", f"{where}price must be a number > 0, got {t.price!r}")


@dataclass(slots=True)
class Report:
    sales: list[Sale]
    lots: list[OpenLot]
    accounts: dict[str, Account]


def run(trades: Iterable[TradeIn], identical: Mapping[str, str] | None = None) -> Report:
    """Apply a whole trade history (any number of households), in order."""
    households: dict[str, Household] = {}
    account_home: dict[str, str] = {}
    for t in trades:
        home = account_home.setdefault(t.account, t.household)
        if home != t.household:
            where = f"row {t.row}: " if t.row is not None else ""
            raise LedgerInputError(
                "household", f"{where}account {t.account!r} is in household {home!r}, not {t.household!r}"
            )
        hh = households.get(t.household)
        if hh is None:
            hh = households[t.household] = Household(t.household, identical)
        hh.apply(t)
    sales = [s for hh in households.values() for s in hh.sales]
    sales.sort(key=lambda s: (s.date, s.sale_id.rsplit(":", 1)[0], int(s.sale_id.rsplit(":", 1)[1])))
    lots = sorted(
        (x for hh in households.values() for x in hh.lots.values()),
        key=lambda x: (x.account, x.symbol, x.acquired, x.seq),
    )
    accounts = {a.account: a for hh in households.values() for a in hh.accounts.values()}
    return Report(sales, lots, accounts)
