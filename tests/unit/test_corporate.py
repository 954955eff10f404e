"""Corporate actions, the pure part (ledger/corporate.py): ratios, ids, the plan of one household."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest

from ledger.corporate import (
    HouseholdState,
    action_from_json,
    check_identity,
    parse_ratio,
    plan_household,
    rename_action,
    split_action,
)
from ledger.errors import LedgerInputError
from ledger.records import OpenLot

D = dt.date


@pytest.mark.parametrize(
    ("text", "ratio"),
    [
        ("2", Fraction(2)),
        ("3:2", Fraction(3, 2)),
        ("1:10", Fraction(1, 10)),
        ("4:2", Fraction(2)),
        ("1.5", Fraction(3, 2)),
    ],
)
def test_a_ratio_is_new_shares_per_old_share_exactly(text, ratio):
    assert parse_ratio(text) == ratio


@pytest.mark.parametrize("text", ["0", "0:3", "-2", "NaN", "inf", "2:0", "abc", "3:2:1", "", "1", "2:2", "1:10000000"])
def test_a_ratio_that_is_not_a_positive_exact_rational_other_than_one_is_refused(text):
    with pytest.raises(LedgerInputError, match="ratio"):
        parse_ratio(text)


def test_the_default_id_names_the_action_with_its_ratio_reduced():
    assert split_action("XYZ", "4:2", D(2024, 6, 10)).action_id == "split:XYZ:2:2024-06-10"
    assert split_action("XYZ", "1:10", D(2024, 6, 10)).action_id == "split:XYZ:1:10:2024-06-10"
    assert rename_action("FB", "META", D(2022, 6, 9)).action_id == "rename:FB:META:2022-06-09"
    a, b = split_action("XYZ", "2", D(2024, 6, 10)), split_action("XYZ", "4:2", D(2024, 6, 10), "mine")
    assert a.digest == b.digest  # the same action under two ids
    assert split_action("XYZ", "3", D(2024, 6, 10)).digest != a.digest
    assert action_from_json(a.content) == a


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: rename_action("XYZ", "XYZ", D(2024, 6, 10)), "new"),
        (lambda: rename_action("XYZ", "bad name", D(2024, 6, 10)), "new"),
        (lambda: split_action("XYZ", "2", D(2024, 6, 10), "x|y"), "id"),
        (lambda: split_action("{hh:H2}", "2", D(2024, 6, 10)), "symbol"),
        (lambda: split_action("XYZ", "2", "2024-06-10"), "date"),
    ],
)
def test_a_malformed_action_is_refused_naming_the_field(make, field):
    with pytest.raises(LedgerInputError) as exc:
        make()
    assert exc.value.field == field


def test_a_rename_inside_an_identical_group_is_refused():
    with pytest.raises(LedgerInputError, match="identical"):
        check_identity(rename_action("GOOGL", "GOOGX", D(2024, 6, 10)), {"GOOGL": "GOOG"})
    check_identity(split_action("GOOGL", "20", D(2022, 7, 18)), {"GOOGL": "GOOG"})  # a split is fine


def _lot(lot_id, qty, acquired, capacity=None):
    q = Decimal(qty)
    return OpenLot(
        lot_id, "A", "XYZ", q, 1000, acquired, acquired, "p1", q if capacity is None else Decimal(capacity), 1
    )


def test_a_split_plan_scales_quantity_and_capacity_and_leaves_later_lots():
    st = HouseholdState(
        "H", [_lot("a", "33", D(2023, 1, 3), "10"), _lot("b", "5", D(2024, 6, 10))], [], {}, D(2024, 6, 7)
    )
    plan = plan_household(split_action("XYZ", "3:2", D(2024, 6, 10)), st)
    assert [(x.lot_id, x.quantity, x.capacity, x.basis_cents) for x in plan.lots] == [
        ("a", Decimal("49.5"), Decimal(15), 1000)
    ]


def test_a_split_plan_refuses_a_quantity_finer_than_a_millionth():
    st = HouseholdState("H", [_lot("a", "0.000001", D(2023, 1, 3))], [], {}, None)
    with pytest.raises(LedgerInputError, match="lot a of account A.*millionths"):
        plan_household(split_action("XYZ", "3:2", D(2024, 6, 10)), st)
