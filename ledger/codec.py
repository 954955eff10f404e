"""How the ledger writes its records in Redis: one lot encoding, shared by Python and the Lua scripts.

An open lot is stored in its household's lot hash as ``lot id -> "account|symbol|...|seq"``: the
fields of ``LOT_FIELDS`` in that order, joined by ``|`` (no field can hold one: ids, symbols and
numbers never do). Dates are proleptic ordinals, money integer cents, quantities ``Decimal`` text.
The Lua scripts read fields by position through ``LOT``, which ``lua_prelude`` puts in front of
every script when it is registered: the order lives here only. Sales are ``|`` records too
(``encode_sale``; no script reads their fields).
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


# A sale is stored as ``sale id -> "id|date|account|...|left"``: the fields of ``SALE_FIELDS`` in
# that order, joined by ``|``, then five fields per replacement (``REPLACEMENT_FIELDS``). Dates are
# ordinals, money integer cents, quantities ``Decimal`` text, ``term`` "s" | "l", booleans "1" | "0";
# ``purchase_id`` is "=" when it is the sold lot's id (no id holds "="). About 80 bytes where the
# JSON of the first version (still read: ``decode_sale``) took about 230.
SALE_FIELDS = (
    "sale_id",
    "date",
    "account",
    "symbol",
    "quantity",
    "proceeds_cents",
    "basis_cents",
    "term",
    "lot_id",
    "purchase_id",
    "held_days",
    "recognized",
    "disallowed_cents",
    "permanent_cents",
    "unmatched",
    "loss_left_cents",
)
REPLACEMENT_FIELDS = ("lot_id", "account", "shares", "amount_cents", "permanent")
_TERM = {"short": "s", "long": "l"}
_TERM_OF = {v: k for k, v in _TERM.items()}


def encode_sale(s: Sale) -> str:
    """The sale's fields in ``SALE_FIELDS`` order, then its replacements' (see above)."""
    parts = [
        s.sale_id,
        str(s.date.toordinal()),
        s.account,
        s.symbol,
        str(s.quantity),
        str(s.proceeds_cents),
        str(s.basis_cents),
        _TERM[s.term],
        s.lot_id,
        "=" if s.purchase_id == s.lot_id else s.purchase_id,
        str(s.held_days),
        "1" if s.recognized else "0",
        str(s.disallowed_cents),
        str(s.permanent_cents),
        str(s.unmatched),
        str(s.loss_left_cents),
    ]
    for x in s.replacements:
        parts += (x.lot_id, x.account, str(x.shares), str(x.amount_cents), "1" if x.permanent else "0")
    return "|".join(parts)


def decode_sale(text: str) -> Sale:
    """A stored sale: the ``|`` record of ``encode_sale``, or the JSON of the first version."""
    if text.startswith("{"):
        return _decode_sale_json(text)
    f = text.split("|")
    n = len(SALE_FIELDS)
    if len(f) < n or (len(f) - n) % len(REPLACEMENT_FIELDS):
        raise ValueError(f"not a stored sale: {text[:80]!r}")
    rep = f[n:]
    return Sale(
        sale_id=f[0],
        date=dt.date.fromordinal(int(f[1])),
        account=f[2],
        symbol=f[3],
        quantity=Decimal(f[4]),
        proceeds_cents=int(f[5]),
        basis_cents=int(f[6]),
        term=_TERM_OF[f[7]],
        lot_id=f[8],
        purchase_id=f[8] if f[9] == "=" else f[9],
        held_days=int(f[10]),
        recognized=f[11] == "1",
        disallowed_cents=int(f[12]),
        permanent_cents=int(f[13]),
        unmatched=Decimal(f[14]),
        loss_left_cents=int(f[15]),
        replacements=[
            Replacement(rep[i], rep[i + 1], Decimal(rep[i + 2]), int(rep[i + 3]), rep[i + 4] == "1")
            for i in range(0, len(rep), len(REPLACEMENT_FIELDS))
        ],
    )


def _decode_sale_json(text: str) -> Sale:
    """A sale as the first version stored it (JSON; in Redis until rewritten, and in archives)."""
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
    "REPLACEMENT_FIELDS",
    "SALE_FIELDS",
    "decode_lot",
    "decode_sale",
    "encode_lot",
    "encode_sale",
    "lot_field",
    "lua_prelude",
]
