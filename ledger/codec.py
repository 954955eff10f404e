"""How the ledger writes its records in Redis: one lot encoding, shared by Python and the Lua scripts.

An open lot is stored in its household's lot hash as ``lot id -> "account|symbol|...|seq"``: the
fields of ``LOT_FIELDS`` in that order, joined by ``|`` (no field can hold one: ids, symbols and
numbers never do). Dates are proleptic ordinals, money integer cents, quantities ``Decimal`` text.
The Lua scripts read fields by position through ``LOT``, which ``lua_prelude`` puts in front of
every script when it is registered: the order lives here only. Sales are JSON (``encode_sale``).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from .records import OpenLot, Replacement, Sale

# What an import supplies for a new purchase (``ledger.importer`` joins these columns, by name);
# import.lua numbers the purchase and writes the rest.
HEAD_FIELDS = ("account", "symbol", "quantity", "basis_cents", "acquired", "holding_start")
LOT_FIELDS = (*HEAD_FIELDS, "purchase_id", "capacity", "seq")  # named as on ``OpenLot``
LOT = {name: i for i, name in enumerate(LOT_FIELDS, start=1)}  # 1-based positions, as Lua counts


def encode_lot(x: OpenLot) -> str:
    """The lot's fields in ``LOT_FIELDS`` order (not its id: that is the hash field)."""
    return "|".join(
        (
            x.account,
            x.symbol,
            str(x.quantity),
            str(x.basis_cents),
            str(x.acquired.toordinal()),
            str(x.holding_start.toordinal()),
            x.purchase_id,
            str(x.capacity),
            str(x.seq),
        )
    )


def decode_lot(lot_id: str, enc: str) -> OpenLot:
    a, s, q, b, acq, hs, pid, cap, seq = enc.split("|")  # LOT_FIELDS
    return OpenLot(
        lot_id,
        a,
        s,
        Decimal(q),
        int(b),
        dt.date.fromordinal(int(acq)),
        dt.date.fromordinal(int(hs)),
        pid,
        Decimal(cap),
        int(seq),
    )


def lot_field(enc: str, name: str) -> str:
    """One field of an encoded lot (or of an import's head, for a field of ``HEAD_FIELDS``), as text."""
    return enc.split("|")[LOT[name] - 1]


def lua_prelude() -> str:
    """Lua put in front of every ledger script: ``LOT`` (name -> position), ``LOT_HEAD`` (how many
    fields an import's head has) and ``lot_field(enc, name)``, the field's text (``nil`` if absent)."""
    positions = ", ".join(f"{name} = {i}" for name, i in LOT.items())
    return (
        f"local LOT, LOT_HEAD = {{{positions}}}, {len(HEAD_FIELDS)}  -- generated from ledger/codec.py\n"
        "local LOT_PATTERN = {}\n"
        "for name, i in pairs(LOT) do LOT_PATTERN[name] = '^' .. string.rep('[^|]*|', i - 1) .. '([^|]*)' end\n"
        "local function lot_field(enc, name) return string.match(enc, LOT_PATTERN[name]) end\n"
    )


def encode_sale(s: Sale) -> str:
    return json.dumps(
        {
            "id": s.sale_id,
            "d": s.date.toordinal(),
            "a": s.account,
            "s": s.symbol,
            "q": str(s.quantity),
            "p": s.proceeds_cents,
            "b": s.basis_cents,
            "t": s.term,
            "l": s.lot_id,
            "pid": s.purchase_id,
            "h": s.held_days,
            "r": s.recognized,
            "dis": s.disallowed_cents,
            "perm": s.permanent_cents,
            "rep": [[x.lot_id, x.account, str(x.shares), x.amount_cents, x.permanent] for x in s.replacements],
            "u": str(s.unmatched),
            "left": s.loss_left_cents,
        },
        separators=(",", ":"),
    )


def decode_sale(text: str) -> Sale:
    d = json.loads(text)
    return Sale(
        sale_id=d["id"],
        date=dt.date.fromordinal(d["d"]),
        account=d["a"],
        symbol=d["s"],
        quantity=Decimal(d["q"]),
        proceeds_cents=d["p"],
        basis_cents=d["b"],
        term=d["t"],
        lot_id=d["l"],
        purchase_id=d["pid"],
        held_days=d["h"],
        recognized=d["r"],
        disallowed_cents=d["dis"],
        permanent_cents=d["perm"],
        replacements=[Replacement(a, b, Decimal(c), e, f) for a, b, c, e, f in d["rep"]],
        unmatched=Decimal(d["u"]),
        loss_left_cents=d["left"],
    )


__all__ = [
    "HEAD_FIELDS",
    "LOT",
    "LOT_FIELDS",
    "decode_lot",
    "decode_sale",
    "encode_lot",
    "encode_sale",
    "lot_field",
    "lua_prelude",
]
