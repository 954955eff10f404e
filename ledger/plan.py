"""The commit planner: one account's trades of one date on a household snapshot, through the
pure wash-sale engine, into what ``lua/commit.lua`` checks and writes (no Redis here)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from taxview.core.money import cents_of
from taxview.core.records import Trade

from .batch import sales_of
from .codec import encode_lot, encode_sale
from .errors import CommitRejected, LedgerInputError
from .keys import dot_prefixes
from .records import TradeIn
from .validate import plain_shares, validate_trade
from .washsale import Household
from .windows import WINDOW_DAYS


def wire_trades(account: str, household: str, date: dt.date, trades: Sequence[Trade]) -> list[dict[str, Any]]:
    """The commit's trades validated (``LedgerInputError`` naming the trade and field), in the
    form the journal, the idempotency digest and the Lua scripts carry: strings, exact."""
    out = []
    for i, t in enumerate(trades):
        try:
            qty, price = Decimal(str(t.shares)), Decimal(str(t.price))
            side, symbol, lot_id = str(t.side).lower(), str(t.symbol), t.lot_id or None
        except (AttributeError, ArithmeticError, ValueError) as exc:
            raise LedgerInputError("trade", f"trade {i}: {exc!r} (need symbol, side, shares, price)") from None
        validate_trade(TradeIn(date, account, household, "taxable", symbol, side, qty, price, lot_id), f"trade {i}: ")
        out.append(
            {"symbol": symbol, "side": side, "quantity": str(plain_shares(qty)), "price": str(price), "lot_id": lot_id}
        )
    return out


def key_reused(idempotency_key: str) -> CommitRejected:
    return CommitRejected("KEY_REUSED", f"idempotency key {idempotency_key!r} was used for a different commit")


def trades_from_wire(rows: Iterable[dict[str, Any]]) -> list[Trade]:
    """Journaled trades back into records (a replay of the journal)."""
    return [
        Trade(r["symbol"], r["side"], Decimal(r["quantity"]), Decimal(r["price"]), r.get("lot_id") or None)
        for r in rows
    ]


def commit_digest(account: str, date: dt.date, request: list[dict[str, Any]], allow_wash: bool) -> str:
    """What an idempotency key is bound to: the same key with other content is ``KEY_REUSED``."""
    return hashlib.sha256(json.dumps([account, date.isoformat(), request, allow_wash]).encode()).hexdigest()


def plan_commit(
    house: Household, account: str, acct_type: str, date: dt.date, request: list[dict[str, Any]], allow_wash: bool
) -> dict[str, Any]:
    """Plan one account's commit on a household snapshot with the wash-sale engine (pure): the
    checks ``commit.lua`` re-validates, the writes it makes, the result, the cash change. A wash
    sale raises ``CommitRejected('WASH_CONFLICT')`` unless ``allow_wash``."""
    group_index = {g: i + 1 for i, g in enumerate(sorted({house.key(t["symbol"]) for t in request}))}
    before = {s.sale_id: (s.disallowed_cents, s.permanent_cents) for s in house.pending}
    start = date - dt.timedelta(days=WINDOW_DAYS)
    house.pending = [s for s in house.pending if s.date >= start]  # older ones can wash nothing more
    stored = set(house.lots)  # lots bought within this commit are not in Redis yet
    checks, sales_out, new_lots, win = [], [], [], {}
    house.reset_changes()
    trades = [
        TradeIn(
            date,
            account,
            house.household,
            acct_type,
            t["symbol"],
            t["side"],
            Decimal(t["quantity"]),
            Decimal(t["price"]),
            t["lot_id"],
            row=i,
        )
        for i, t in enumerate(request)
    ]
    for group in sales_of(trades):  # consecutive sells of one symbol are one sale (one order)
        trade = group[0]
        key = house.key(trade.symbol)
        bites = house.bites
        if trade.side == "sell":
            sales = house.apply_sale(group)
            for (lot, q), sale in zip(house.last_parts, sales):
                loss = sale.recognized and sale.gain_cents < 0
                checks.append(
                    {
                        "op": "sell" if lot.lot_id in stored else "sell_new",
                        "g": group_index[key],
                        "lot": lot.lot_id,
                        "qty": str(q),
                        "key": key,
                        "loss": loss,
                    }
                )
                if loss:
                    win.setdefault(key, [key, False, False])[2] = date.toordinal()
        else:
            out = house.apply(trade)
            new_lots.append(out.lot_id)
            checks.append({"op": "buy", "key": key})
            win.setdefault(key, [key, False, False])[1] = date.toordinal()
        if house.bites > bites and not allow_wash:
            raise CommitRejected(
                "WASH_CONFLICT",
                f"trade {trade.row} ({trade.side} {trade.symbol}) would create a wash sale "
                f"with a household purchase or loss sale within {WINDOW_DAYS} days",
            )
    washed = [
        s
        for s in house.changed_sales.values()
        if (s.disallowed_cents, s.permanent_cents) != before.get(s.sale_id, (0, 0))
    ]
    if washed and not allow_wash:
        raise CommitRejected(
            "WASH_CONFLICT",
            f"these trades would wash the loss of {washed[0].symbol} "
            f"sold {washed[0].date} in account {washed[0].account}",
        )
    sets = [
        [group_index[house.key(house.lots[lid].symbol)], lid, encode_lot(house.lots[lid])]
        for lid in sorted(house.changed_lots)
    ]
    dels = [[group_index[house.key(sym)], lid] for lid, sym in sorted(house.removed_lots.items())]
    changed = sorted(house.changed_sales.values(), key=lambda s: int(s.sale_id.rsplit(":", 1)[1]))
    pending_ids = {s.sale_id for s in house.pending if s.unmatched > 0}
    writes = {
        "set": sets,
        "del": dels,
        "sales": [[s.sale_id, encode_sale(s)] for s in changed],
        "pending_add": sorted(pending_ids - before.keys()),
        "pending_del": sorted(before.keys() - pending_ids),
        "win": list(win.values()),
        "seq": house.seq,
        "sale_seq": house.sale_seq,
        "groups": sorted(group_index),
        "ids": [[x, dot_prefixes(x)] for x in house.new_ids if x not in house.new_made],
        "made": [[x, *house.new_made[x]] for x in house.new_ids if x in house.new_made],
    }
    for s in changed:
        if s.account == account and s.date == date and s.sale_id not in before:
            sales_out.append(
                {
                    "sale_id": s.sale_id,
                    "symbol": s.symbol,
                    "lot_id": s.lot_id,
                    "quantity": str(s.quantity),
                    "proceeds_cents": s.proceeds_cents,
                    "basis_cents": s.basis_cents,
                    "gain_cents": s.gain_cents,
                    "disallowed_cents": s.disallowed_cents,
                    "permanent_cents": s.permanent_cents,
                    "term": s.term,
                    "recognized": s.recognized,
                }
            )
    cash_delta = sum(
        (1 if t["side"] == "sell" else -1) * cents_of(Decimal(t["quantity"]), Decimal(t["price"])) for t in request
    )
    result = {
        "account": account,
        "date": date.isoformat(),
        "sales": sales_out,
        "new_lots": new_lots,
        "trades": request,
    }
    realized = {"short": 0, "long": 0}  # recognized net gain of the commit, by term (the year to date)
    for s in sales_out:
        if s["recognized"]:
            realized[s["term"]] += s["gain_cents"] + s["disallowed_cents"] + s["permanent_cents"]
    return {"checks": checks, "writes": writes, "result": result, "cash_delta": cash_delta, "realized": realized}
