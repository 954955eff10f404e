"""The one lot and sale encoding (ledger.codec), the wash-sale window rule and the cents conversion, each
with one home. No Redis: the Lua side of the codec is pinned in tests/integration/test_ledger_lua_codec.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from ledger.codec import (
    HEAD_FIELDS,
    LOT,
    LOT_FIELDS,
    REPLACEMENT_FIELDS,
    SALE_FIELDS,
    decode_lot,
    decode_sale,
    encode_lot,
    encode_sale,
    lot_field,
    lua_prelude,
)
from ledger.files import lots_table
from ledger.records import OpenLot, Replacement, Sale
from ledger.windows import WINDOW_DAYS, restrictions_from_windows
from taxview.core.money import cents_of, value_cents

LOT_SAMPLE = OpenLot(
    "b.1",
    "acct-7",
    "BRK.B",
    Decimal("12.345678"),
    1234567,
    dt.date(2024, 3, 15),
    dt.date(2023, 12, 1),
    "p42",
    Decimal("2.5"),
    42,
)


def field_text(lot: OpenLot, name: str) -> str:
    """How the encoding writes a field: dates as proleptic ordinals, numbers as their text."""
    value = getattr(lot, name)
    return str(value.toordinal()) if isinstance(value, dt.date) else str(value)


def test_a_lot_decodes_to_what_was_encoded():
    assert decode_lot("b.1", encode_lot(LOT_SAMPLE)) == LOT_SAMPLE


def test_every_field_sits_at_its_position_in_lot_fields():
    enc = encode_lot(LOT_SAMPLE)
    assert len(enc.split("|")) == len(LOT_FIELDS) == len(LOT)
    assert list(LOT) == list(LOT_FIELDS) and list(LOT.values()) == list(range(1, len(LOT_FIELDS) + 1))
    for name in LOT_FIELDS:
        assert lot_field(enc, name) == field_text(LOT_SAMPLE, name), name


def test_an_import_head_is_the_leading_fields_of_a_lot_named_as_the_lots_table_columns():
    assert LOT_FIELDS[: len(HEAD_FIELDS)] == HEAD_FIELDS
    assert set(HEAD_FIELDS) <= set(lots_table([LOT_SAMPLE]).column_names)  # ledger.importer joins them by name
    # import.lua writes the rest after the head: one purchase number, the capacity, the number again
    assert set(LOT_FIELDS[len(HEAD_FIELDS) :]) == {"purchase_id", "capacity", "seq"}


def test_lua_prelude_states_every_position_from_lot_fields():
    prelude = lua_prelude()
    for name, i in LOT.items():
        assert f"{name} = {i}" in prelude
    assert f", {len(HEAD_FIELDS)}" in prelude


# --- the wash-sale window: one rule for the ledger and the backtest ------------------------------

TODAY = dt.date(2024, 6, 14)


def ago(days: int) -> int:
    return TODAY.toordinal() - days


@pytest.mark.parametrize(("days", "blocked"), [(0, True), (WINDOW_DAYS, True), (WINDOW_DAYS + 1, False), (-1, False)])
def test_a_loss_sale_blocks_household_buys_for_the_window_inclusive(days, blocked):
    r = restrictions_from_windows([("XYZ", 0, ago(days))], TODAY, {"A": "taxable", "I": "ira"})
    assert r["A"].no_buy == r["I"].no_buy == (frozenset({"XYZ"}) if blocked else frozenset())
    assert r["A"].no_loss_sale == frozenset()


@pytest.mark.parametrize(("days", "blocked"), [(0, True), (WINDOW_DAYS, True), (WINDOW_DAYS + 1, False)])
def test_a_purchase_blocks_loss_sales_for_the_window_but_never_in_an_ira(days, blocked):
    r = restrictions_from_windows([("XYZ", ago(days), 0)], TODAY, {"A": "taxable", "I": "ira"})
    assert r["A"].no_loss_sale == (frozenset({"XYZ"}) if blocked else frozenset())
    assert r["I"].no_loss_sale == frozenset()  # an IRA's sales recognize nothing
    assert r["A"].no_buy == r["I"].no_buy == frozenset()


def test_an_identity_key_restricts_all_its_symbols():
    r = restrictions_from_windows([("GOOG", 0, ago(3))], TODAY, {"A": "taxable"}, {"GOOG": {"GOOG", "GOOGL"}})
    assert r["A"].no_buy == {"GOOG", "GOOGL"}


# --- shares × price -> cents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shares", "price", "cents"),
    [
        ("100", "7.50", 75000),
        ("0.5", "0.01", 0),  # half a cent: half to even
        ("1.5", "0.01", 2),
        ("3", "12.345", 3704),  # 37.035 dollars
        ("0.000001", "10000000", 1000),
    ],
)
def test_cents_of_is_exact_and_rounds_half_to_even(shares, price, cents):
    assert cents_of(Decimal(shares), Decimal(price)) == cents


def test_value_cents_rounds_the_market_price_to_cents_first():
    assert value_cents(Decimal(3), 12.345) == cents_of(Decimal(3), Decimal("12.34"))  # 12.345 is 12.3449… in binary
    assert value_cents(Decimal("2.5"), 40.0) == 10000


# --- sales: a "|" record, and the JSON of the first version still read ----------------------------

SALE_SAMPLE = Sale(
    "hh-1:17",
    dt.date(2024, 3, 15),
    "acct-7",
    "BRK.B",
    Decimal("12.5"),
    150000,
    180000,
    "short",
    "b.1",
    "p42",
    105,
    True,
    disallowed_cents=20000,
    permanent_cents=4000,
    replacements=[
        Replacement("b.2", "acct-7", Decimal("10"), 20000, False),
        Replacement("i.1", "ira-7", Decimal("2"), 4000, True),
    ],
    unmatched=Decimal("0.5"),
    loss_left_cents=6000,
)
# how the first version stored it (ledger written before the record: must still read)
SALE_JSON = (
    '{"id":"hh-1:17","d":738960,"a":"acct-7","s":"BRK.B","q":"12.5","p":150000,"b":180000,"t":"short",'
    '"l":"b.1","pid":"p42","h":105,"r":true,"dis":20000,"perm":4000,"rep":[["b.2","acct-7","10",20000,false],'
    '["i.1","ira-7","2",4000,true]],"u":"0.5","left":6000}'
)


@pytest.mark.parametrize(
    "sale",
    [
        SALE_SAMPLE,
        replace(SALE_SAMPLE, replacements=[], term="long", recognized=False, purchase_id="b.1", unmatched=Decimal(0)),
    ],
)
def test_a_sale_decodes_to_what_was_encoded(sale):
    enc = encode_sale(sale)
    assert decode_sale(enc) == sale
    assert len(enc.split("|")) == len(SALE_FIELDS) + len(REPLACEMENT_FIELDS) * len(sale.replacements)


def test_a_sale_stored_as_json_by_the_first_version_reads_the_same():
    assert decode_sale(SALE_JSON) == SALE_SAMPLE
    assert len(encode_sale(SALE_SAMPLE)) < len(SALE_JSON) / 2


def test_a_sale_record_names_the_fields_in_order_and_elides_a_purchase_that_is_the_lot():
    f = encode_sale(replace(SALE_SAMPLE, replacements=[], purchase_id="b.1")).split("|")
    assert dict(zip(SALE_FIELDS, f)) == {
        "sale_id": "hh-1:17",
        "date": "738960",
        "account": "acct-7",
        "symbol": "BRK.B",
        "quantity": "12.5",
        "proceeds_cents": "150000",
        "basis_cents": "180000",
        "term": "s",
        "lot_id": "b.1",
        "purchase_id": "=",
        "held_days": "105",
        "recognized": "1",
        "disallowed_cents": "20000",
        "permanent_cents": "4000",
        "unmatched": "0.5",
        "loss_left_cents": "6000",
    }


@pytest.mark.parametrize("text", ["", "hh-1:17|738960", encode_sale(SALE_SAMPLE) + "|x"])
def test_a_truncated_sale_record_is_refused(text):
    with pytest.raises(ValueError, match="not a stored sale"):
        decode_sale(text)
