"""Lot ids: the registry rule (``ledger.keys.id_free``) and the form of the ids the ledger makes."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.keys import id_free, made_lot_id, made_number


@pytest.mark.parametrize(
    ("lot_id", "number"),
    [
        (made_lot_id("acct-7", dt.date(2024, 3, 15), 7), 7),
        (made_lot_id("H1/spouse.2", dt.date(2024, 3, 15), 123456), 123456),  # "." becomes "_"
        ("acct-7-20240315-7.2", None),  # a piece: inside the namespace of a made id, not one
        ("acct-2024031-7", None),
        ("acct:7-20240315-7", None),
        ("-20240315-7", None),
        ("L1", None),
    ],
)
def test_made_number_reads_the_purchase_number_of_the_made_form_only(lot_id, number):
    assert made_number(lot_id) == number


def test_a_name_of_the_made_form_is_free_only_past_the_households_purchases():
    made = made_lot_id("A", dt.date(2024, 1, 3), 2)
    assert not id_free({}, made, purchases=2) and not id_free({}, made + ".1", purchases=5)
    assert id_free({}, made, purchases=1)  # purchase 2 not made yet: registered when named
    assert id_free({}, made, purchases=0)  # how the ledger checks an id it makes: the registry alone
    assert id_free({}, made, freed={made}, purchases=9)  # given back by the lots an import removes
    assert not id_free({made: "1"}, made)  # a registry written before made ids left it


def test_the_registry_rule_is_unchanged_for_other_names():
    used = {"b": "1", "c": "p", "c.1": "1"}
    assert not id_free(used, "b") and not id_free(used, "b.1") and not id_free(used, "c")
    assert id_free(used, "d", purchases=10**6) and id_free(used, "b.1", freed={"b"})
