"""A household wash-sale check of intended trades: what each would wash, on the ledger's own engine.

The household's open lots and pending loss sales (as a ledger reads them) are loaded into a
``ledger.washsale.Household`` — the engine every commit is planned with — and the trades are
applied to it in date order with wash sales allowed, as a client-directed commit would be; what
each trade changed is reported. Nothing is written. Pure: no Redis, no Ray.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from ledger.batch import sales_of
from ledger.errors import LedgerInputError
from ledger.records import OpenLot, Sale, TradeIn
from ledger.washsale import Household
from ledger.windows import WINDOW_DAYS
from taxview.core.money import cents_of


@dataclass(frozen=True, slots=True)
class Intended:
    """One trade someone is about to place: shares (``Decimal``), price in exact dollars per share;
    a sell may name its lot (else first in, first out)."""

    account: str
    symbol: str
    side: str  # buy | sell
    quantity: Decimal
    price: Decimal
    date: dt.date
    lot_id: str | None = None


def dollars(cents: int) -> str:
    """Cents as an exact decimal string of dollars: -12345 -> "-123.45" (JSON money)."""
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def household_engine(
    household: str,
    account_types: Mapping[str, str],
    lots: Iterable[OpenLot],
    pending: Iterable[Sale],
    identical: Mapping[str, str] | None = None,
    seq: int = 0,
    sale_seq: int = 0,
    last_date: dt.date | None = None,
) -> Household:
    """The engine's state of ``household`` from what a ledger reads (``household_state``): its
    accounts' types, open lots and loss sales still waiting for replacement shares (copied), the
    household's purchase and sale numbers and last trade date. The numbers go on after the highest
    seen too, so a purchase made here never shares an identity with a loaded lot."""
    house = Household(household, identical)
    for account, kind in account_types.items():
        house.register(account, kind)
    for lot in lots:
        house.load(lot.copy())
        house.ids[lot.lot_id] = "1"
        seq = max(seq, lot.seq)
    waiting = []
    for s in pending:
        sale_seq = max(sale_seq, int(s.sale_id.rsplit(":", 1)[1]))
        if s.unmatched > 0:
            waiting.append(replace(s, replacements=list(s.replacements)))
    house.pending = waiting
    house.seq, house.sale_seq, house.last_date = seq, sale_seq, last_date
    return house


def wash_check(house: Household, trades: Sequence[Intended]) -> list[dict[str, Any]]:
    """Each of ``trades`` applied to ``house`` (changed: pass a copy) in date order, the same date
    in the order given; one answer per trade, in the order given: whether it washes, the sales
    it makes (a sell: per lot, with the loss disallowed by earlier purchases, permanently when the
    replacement is an IRA's) or washes (a buy: the loss sales it replaces), and what the name is
    blocked from and until when afterwards. ``LedgerInputError`` names the trade and field."""
    for i, t in enumerate(trades):
        if t.account not in house.accounts:
            raise LedgerInputError(
                "account", f"trade {i}: account {t.account!r} is not in household {house.household!r}"
            )
        if t.side == "buy" and t.lot_id:
            raise LedgerInputError("lot_id", f"trade {i}: a buy names no lot (the ledger makes its id)")
        if house.last_date is not None and t.date < house.last_date:
            raise LedgerInputError(
                "date", f"trade {i}: {t.date} is before the household's last trade {house.last_date}"
            )
    rows = sorted(
        (
            TradeIn(
                t.date,
                t.account,
                house.household,
                house.accounts[t.account].account_type,
                t.symbol,
                t.side,
                t.quantity,
                t.price,
                t.lot_id,
                row=i,
            )
            for i, t in enumerate(trades)
        ),
        key=lambda r: (r.date, r.row),
    )
    answers: dict[int, dict[str, Any]] = {}
    for group in sales_of(rows):
        first = group[0]
        before = {s.sale_id: (s.disallowed_cents, s.permanent_cents) for s in house.pending}
        house.reset_changes()
        if first.side == "sell":
            _sell_answers(group, house.apply_sale(group), answers)
        else:
            house.apply(first)
            answers[first.row] = _buy_answer(first, house, before)
    return [answers[i] for i in range(len(trades))]


def _sell_answers(group: Sequence[TradeIn], made: Sequence[Sale], answers: dict[int, dict[str, Any]]) -> None:
    """One order's lot sales shared out to its rows (the engine takes each row's shares from its
    lots in turn): per row its sales, the loss they lose to purchases already made, and a loss
    sale's block (no purchase of the name in the household for 30 days: it would wash the rest)."""
    sales = list(made)
    for t in group:
        left, mine = t.quantity, []
        while left > 0 and sales:
            mine.append(sales.pop(0))
            left -= mine[-1].quantity
        loss = any(s.recognized and s.gain_cents < 0 for s in mine)
        answers[t.row] = {
            **_trade_json(t),
            "washes": any(s.disallowed_cents or s.permanent_cents for s in mine),
            "sales": [_sale_json(s) for s in mine],
            "washed_sales": [],
            "disallowed": dollars(sum(s.disallowed_cents for s in mine)),
            "permanently_disallowed": dollars(sum(s.permanent_cents for s in mine)),
            "blocked": _until("no_buy", t.date) if loss else None,
        }


def _until(what: str, date: dt.date) -> dict[str, str]:
    return {"what": what, "until": (date + dt.timedelta(days=WINDOW_DAYS)).isoformat()}


def _buy_answer(t: TradeIn, house: Household, before: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    washed = []
    total = permanent = 0
    for s in house.changed_sales.values():
        was = before.get(s.sale_id, (0, 0))
        d, p = s.disallowed_cents - was[0], s.permanent_cents - was[1]
        if d or p:
            shares = sum((r.shares for r in s.replacements[-1:]), Decimal(0))
            washed.append(
                {
                    "sale_id": s.sale_id,
                    "account": s.account,
                    "symbol": s.symbol,
                    "date": s.date.isoformat(),
                    "shares": str(shares),
                    "disallowed": dollars(d),
                    "permanently_disallowed": dollars(p),
                }
            )
            total, permanent = total + d, permanent + p
    washed.sort(key=lambda w: int(w["sale_id"].rsplit(":", 1)[1]))
    return {
        **_trade_json(t),
        "washes": bool(washed),
        "sales": [],
        "washed_sales": washed,
        "disallowed": dollars(total),
        "permanently_disallowed": dollars(permanent),
        # a purchase, in an IRA too, washes the household's loss sales of the name for 30 days
        "blocked": _until("no_loss_sale", t.date),
    }


def _trade_json(t: TradeIn) -> dict[str, Any]:
    return {
        "index": t.row,
        "account": t.account,
        "symbol": t.symbol,
        "side": t.side,
        "quantity": str(t.quantity),
        "price": str(t.price),
        "value": dollars(cents_of(t.quantity, t.price)),
        "date": t.date.isoformat(),
    }


def _sale_json(s: Sale) -> dict[str, Any]:
    return {
        "lot_id": s.lot_id,
        "shares": str(s.quantity),
        "proceeds": dollars(s.proceeds_cents),
        "basis": dollars(s.basis_cents),
        "gain": dollars(s.gain_cents),
        "term": s.term,
        "disallowed": dollars(s.disallowed_cents),
        "permanently_disallowed": dollars(s.permanent_cents),
        "replacements": [
            {
                "lot_id": r.lot_id,
                "account": r.account,
                "shares": str(r.shares),
                "amount": dollars(r.amount_cents),
                "permanent": r.permanent,
            }
            for r in s.replacements
        ],
    }
