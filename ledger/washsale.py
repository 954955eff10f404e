"""The household wash-sale rule (IRC §1091; domain.md §3), pure Python, exact amounts.

Trades are applied one at a time, in date order, to a household's state: open lots (with how
many of their shares may still serve as replacement shares, "capacity") and pending losses
(loss sales whose shares are not all matched yet, waiting up to 30 days for a purchase).

* A loss sale is matched first against shares the household bought in the 30 days before it (or
  the same day), earliest acquisition first; what is left waits for purchases in the 30 days
  after it, sales in order of sale. Each replacement share absorbs one loss at most.
* Shares of the sold lot's own purchase never replace it (the part-of-one-purchase exception), and
  shares disposed of in the same sale never replace one another: a sale takes every share out of
  its lots before any of its losses is matched (one order = consecutive sells of one symbol in one
  account on one date, ``sales_of``). Only shares still held can be replacement shares.
* Purchase identity is the ledger's: every purchase gets ``p<seq>``; its lot id (the user's, or
  ``<account>-<yyyymmdd>-<seq>``) names it for good. A lot id used before in the household, open
  or closed, or inside another id's namespace (``b.1`` while ``b`` exists) is refused.
* A replacement in a taxable account gets the disallowed loss added to its basis and its holding
  period moved back by the days the sold shares were held; the lot is split when only part of it
  is used (``b`` → ``b.1`` used, ``b.2`` the rest). In an IRA the loss is lost for good and the
  IRA lot is not adjusted. Sales inside an IRA recognize nothing and wash nothing. A sell naming
  ``b`` after such a split sells its pieces in ``piece_order`` (``b.1`` first).
* Gains are never washed. ``identical`` maps symbols to a shared key (GOOG/GOOGL).

Money is integer cents, quantities ``Decimal`` shares. The ledger store plans every commit with
this module, so the batch report (``taxview washsale``) and the Redis ledger cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

from taxview.core.money import allocate_basis, cents_of
from taxview.core.tax import term_of

from .errors import LedgerInputError
from .keys import dot_prefixes, id_free, made_lot_id, piece_order
from .records import Account, OpenLot, Replacement, Sale, TradeIn
from .validate import plain_trade, row_prefix, validate_trade
from .windows import WINDOW_DAYS


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
        self.seq = 0  # purchases made: each gets the identity ``p<seq>``
        self.sale_seq = 0
        self.bites = 0  # wash-sale matches made (a nightly commit refuses any)
        # lot ids ever given to a purchase -> "1", and each dot-prefix of one -> "p" (see ``id_free``).
        # The batch report sees every purchase; the store fills in the ids a commit asks about.
        self.ids: dict[str, str] = {}
        self.last_parts: list[tuple[OpenLot, Decimal]] = []  # (lot, shares) of the last sale applied
        self.last_sales: list[Sale] = []  # one Sale per lot of the last sale applied
        # what the last ``apply`` calls touched (the store writes exactly these)
        self.changed_lots: set[str] = set()
        self.removed_lots: dict[str, str] = {}  # lot id -> symbol
        self.changed_sales: dict[str, Sale] = {}
        self.new_ids: list[str] = []  # lot ids given to purchases since ``reset_changes``
        # those of them the ledger made: id -> (purchase number, yyyymmdd, account) (``lua/_ids.lua``)
        self.new_made: dict[str, tuple[int, int, str]] = {}

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
        self.new_ids.clear()
        self.new_made.clear()

    def clone(self, keys: Iterable[str] | None = None) -> Household:
        """An independent copy to plan on (``ledger.memory``). A trade changes only the open lots
        and pending sales of its identity key: those of ``keys`` (default all) are copied, the
        rest shared with this household, which must not be changed again (the clone replaces it)."""
        h = Household(self.household, self.identical)
        h.accounts = dict(self.accounts)
        h.lots = dict(self.lots)
        h.by_key = {k: dict(v) for k, v in self.by_key.items()}
        changing = set(self.by_key if keys is None else keys)
        for k in changing & self.by_key.keys():
            for lot_id, lot in self.by_key[k].items():
                h.lots[lot_id] = h.by_key[k][lot_id] = lot.copy()
        copies = {
            s.sale_id: replace(s, replacements=list(s.replacements))
            for k in changing & self.pending_by_key.keys()
            for s in self.pending_by_key[k]
        }
        h.pending_by_key = {k: [copies.get(s.sale_id, s) for s in v] for k, v in self.pending_by_key.items()}
        h.sales = [copies.get(s.sale_id, s) for s in self.sales]
        h.last_date, h.seq, h.sale_seq, h.bites = self.last_date, self.seq, self.sale_seq, self.bites
        h.ids = dict(self.ids)
        return h

    # -- lot identity ------------------------------------------------------------------------

    def id_free(self, lot_id: str) -> bool:
        """May a new purchase of the household be called ``lot_id`` (``keys.id_free``)?"""
        return id_free(self.ids, lot_id)

    def _register_id(self, lot_id: str) -> None:
        self.ids[lot_id] = "1"
        for p in dot_prefixes(lot_id):
            self.ids.setdefault(p, "p")
        self.new_ids.append(lot_id)

    def open_lot(
        self,
        lot_id: str,
        account: str,
        symbol: str,
        quantity: Decimal,
        basis_cents: int,
        acquired: dt.date,
        holding_start: dt.date | None = None,
    ) -> OpenLot:
        """An opening lot (an import, a legacy portfolio): a new purchase of the household with its
        own identity, no wash-sale matching. Raises ``LedgerInputError`` for a used id."""
        if not self.id_free(lot_id):
            raise LedgerInputError("lot_id", f"lot id {lot_id!r} is already used in household {self.household!r}")
        seq = self._next_seq()
        lot = OpenLot(
            lot_id,
            account,
            symbol,
            quantity,
            basis_cents,
            acquired,
            holding_start or acquired,
            f"p{seq}",
            quantity,
            seq,
        )
        self._register_id(lot_id)
        self._put(lot)
        return lot

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

    def _bite(self, sale: Sale, lot: OpenLot, shares: Decimal) -> OpenLot | None:
        """``shares`` of ``lot`` absorb their share of ``sale``'s remaining loss; returns the piece
        of ``lot`` that is still unused as a replacement (``None`` when none is left)."""
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
            return lot if lot.capacity > 0 else None
        rest = None
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
        return rest if rest is not None and rest.capacity > 0 else None

    # -- the rule ----------------------------------------------------------------------------

    def register(self, account: str, account_type: str) -> Account:
        acct = self.accounts.get(account)
        if acct is None:
            acct = self.accounts[account] = Account(account, self.household, account_type)
        elif acct.account_type != account_type:
            raise LedgerInputError("account_type", f"account {account!r} is {acct.account_type}, not {account_type}")
        return acct

    def apply(self, t: TradeIn) -> Sale | OpenLot:
        """Apply one trade; raises ``LedgerInputError`` (state unchanged) for bad input.
        A sell is one sale (``apply_sale`` applies several lot allocations as one)."""
        if t.side == "sell":
            return self.apply_sale([t])[-1]
        self._check(t)
        t = plain_trade(t)
        acct = self.register(t.account, t.account_type)
        self.last_date = t.date
        return self._buy(t, acct)

    def apply_sale(self, trades: Sequence[TradeIn]) -> list[Sale]:
        """Apply one sale: sells of one symbol in one account on one date (an order with its lot
        allocations). Every sold share leaves its lot before any loss is matched, so shares disposed
        of in the same sale never replace one another, whatever their order. Returns a Sale per lot."""
        first = trades[0]
        parts: list[tuple[OpenLot, Decimal, TradeIn]] = []
        taken: dict[str, Decimal] = {}  # shares of each lot already allocated in this sale
        for t in trades:
            self._check(t)
            t = plain_trade(t)
            if t.side != "sell" or (t.date, t.account, t.symbol) != (first.date, first.account, first.symbol):
                raise LedgerInputError("side", f"{row_prefix(t)}one sale is sells of one symbol, account and date")
            for lot, q in self._lots_to_sell(t, taken):
                taken[lot.lot_id] = taken.get(lot.lot_id, Decimal(0)) + q
                parts.append((lot, q, t))
        # validated: from here on the sale is applied in full
        acct = self.register(first.account, first.account_type)
        self.last_date = first.date
        self.last_parts = [(lot, q) for lot, q, _ in parts]
        self.last_sales = self._sell(acct, parts)
        return self.last_sales

    def _check(self, t: TradeIn) -> None:
        validate_trade(t)
        if t.household != self.household:
            where = row_prefix(t)
            raise LedgerInputError(
                "household", f"{where}trade of household {t.household!r} applied to {self.household!r}"
            )
        if self.last_date is not None and t.date < self.last_date:
            raise LedgerInputError(
                "date",
                f"{row_prefix(t)}{t.date} is before the household's last trade {self.last_date}; "
                "trades must be in date order",
            )
        acct = self.accounts.get(t.account)
        if acct is not None and acct.account_type != t.account_type:
            raise LedgerInputError(
                "account_type", f"{row_prefix(t)}account {t.account!r} is {acct.account_type}, not {t.account_type}"
            )
        if t.side == "buy" and t.lot_id and not self.id_free(t.lot_id):
            raise LedgerInputError(
                "lot_id",
                f"{row_prefix(t)}lot id {t.lot_id!r} is already used in household {self.household!r}: "
                "a lot id names one purchase for good (leave it empty and the ledger makes one)",
            )

    def _lots_to_sell(self, t: TradeIn, taken: Mapping[str, Decimal]) -> list[tuple[OpenLot, Decimal]]:
        """The lots a sell takes shares from: the named lot, or the pieces a wash sale split it into
        (``b.1`` before ``b.2``, see ``piece_order``), or without a name the account's oldest lots."""
        if t.lot_id:
            lot = self.lots.get(t.lot_id)
            if lot is not None:
                if (  # the common case, in one test
                    lot.account == t.account
                    and lot.symbol == t.symbol
                    and lot.acquired <= t.date
                    and t.quantity <= lot.quantity - taken.get(lot.lot_id, 0)
                ):
                    return [(lot, t.quantity)]
                lots = [lot]
            else:
                prefix = t.lot_id + "."
                lots = [x for x in self.lots.values() if x.lot_id.startswith(prefix)]
                lots.sort(key=_piece_key)
                if not lots:
                    raise LedgerInputError("lot_id", f"{row_prefix(t)}no open lot {t.lot_id!r}")
            for x in lots:
                if x.account != t.account:
                    raise LedgerInputError(
                        "lot_id", f"{row_prefix(t)}lot {t.lot_id!r} belongs to account {x.account!r}, not {t.account!r}"
                    )
                if x.symbol != t.symbol:
                    raise LedgerInputError("symbol", f"{row_prefix(t)}lot {t.lot_id!r} is {x.symbol}, not {t.symbol}")
                if x.acquired > t.date:
                    raise LedgerInputError(
                        "date",
                        f"{row_prefix(t)}lot {x.lot_id!r} was acquired {x.acquired}, after this sale on {t.date}",
                    )
            what = f"lot {t.lot_id!r}"
        else:
            held_by_key = self.by_key.get(self.identical.get(t.symbol, t.symbol), {})
            lots = [  # the lots held on the sale's date
                x
                for x in held_by_key.values()
                if x.account == t.account and x.symbol == t.symbol and x.acquired <= t.date
            ]
            lots.sort(key=_fifo_key)
            what = f"{t.symbol} in {t.account!r}"
        out, left, held = [], t.quantity, Decimal(0)
        for x in lots:
            free = x.quantity - taken.get(x.lot_id, 0)
            held += free
            take = min(left, free)
            if take > 0:
                out.append((x, take))
                left -= take
        if left > 0:
            raise LedgerInputError("quantity", f"{row_prefix(t)}selling {t.quantity} of {what} which holds {held}")
        return out

    def _sell(self, acct: Account, parts: list[tuple[OpenLot, Decimal, TradeIn]]) -> list[Sale]:
        sales: list[Sale] = []
        fills: dict[int, list] = {}  # each row's proceeds left and shares left, split exactly over its lots
        for t in {id(t): t for _, _, t in parts}.values():
            fills[id(t)] = [cents_of(t.quantity, t.price), t.quantity]
        household, recognized = self.household, not acct.is_ira
        for lot, q, t in parts:
            fill = fills[id(t)]
            proceeds = allocate_basis(fill[0], q, fill[1])  # exact split of one fill
            fill[0] -= proceeds
            fill[1] -= q
            basis = allocate_basis(lot.basis_cents, q, lot.quantity)
            self.sale_seq += 1
            sale = Sale(
                f"{household}:{self.sale_seq}",
                t.date,
                t.account,
                t.symbol,
                q,
                proceeds,
                basis,
                term_of(lot.holding_start, t.date),
                lot.lot_id,
                lot.purchase_id,
                (t.date - lot.holding_start).days,
                recognized,
            )
            lot.quantity -= q
            lot.basis_cents -= basis
            if lot.capacity > lot.quantity:
                lot.capacity = lot.quantity
            if lot.quantity == 0:
                self._drop(lot.lot_id)
            else:
                self._put(lot)
            self.sales.append(sale)
            self.changed_sales[sale.sale_id] = sale
            sales.append(sale)
        # every share of the sale is out of its lot: only shares still held can replace a loss
        for sale in sales:
            if recognized and sale.proceeds_cents < sale.basis_cents:
                sale.unmatched, sale.loss_left_cents = sale.quantity, sale.basis_cents - sale.proceeds_cents
                self._match_earlier_purchases(sale)
                if sale.unmatched > 0:
                    self.pending_by_key.setdefault(self.key(sale.symbol), []).append(sale)
        return sales

    def _match_earlier_purchases(self, sale: Sale) -> None:
        start = sale.date - dt.timedelta(days=WINDOW_DAYS)
        key = self.key(sale.symbol)
        candidates = [
            x
            for x in self.by_key.get(key, {}).values()
            if x.capacity > 0 and start <= x.acquired <= sale.date and x.purchase_id != sale.purchase_id
        ]
        candidates.sort(key=_fifo_key)
        for lot in candidates:
            if sale.unmatched <= 0:
                break
            self._bite(sale, lot, min(sale.unmatched, lot.capacity))

    def _buy(self, t: TradeIn, acct: Account) -> OpenLot:
        seq = self._next_seq()
        lot_id = t.lot_id  # checked free by ``_check``
        while lot_id is None:  # a made id skips one a user already took
            lot_id = made_lot_id(t.account, t.date, seq)
            if not self.id_free(lot_id):
                lot_id, seq = None, self._next_seq()
            elif t.date.year >= 1000:  # its date is 8 digits
                self.new_made[lot_id] = (seq, int(f"{t.date:%Y%m%d}"), t.account)
        self._register_id(lot_id)
        cost = cents_of(t.quantity, t.price)
        lot = OpenLot(lot_id, t.account, t.symbol, t.quantity, cost, t.date, t.date, f"p{seq}", t.quantity, seq)
        self._put(lot)
        start = t.date - dt.timedelta(days=WINDOW_DAYS)
        key = self.key(t.symbol)
        waiting = [s for s in self.pending_by_key.get(key, ()) if s.date >= start and s.unmatched > 0]
        current: OpenLot | None = lot  # the piece of this purchase not yet used as replacement
        for sale in waiting:
            if current is None:
                break
            current = self._bite(sale, current, min(sale.unmatched, current.capacity))
        if waiting or key in self.pending_by_key:
            self.pending_by_key[key] = [s for s in waiting if s.unmatched > 0]
        return lot


def _piece_key(lot: OpenLot) -> tuple:
    return piece_order(lot.lot_id)


def _fifo_key(lot: OpenLot) -> tuple:
    """Oldest first: acquisition date, then purchase order, then a split lot's pieces in order."""
    return (lot.acquired, lot.seq, piece_order(lot.lot_id))


def _sale_number(sale: Sale) -> int:
    return int(sale.sale_id.rsplit(":", 1)[1])
