"""The wash-sale rule with exact amounts (domain.md §3), against the pure engine, the in-memory
ledger and the Redis ledger alike: ``ledger_backend`` runs each case on all three and they must
agree to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.errors import LedgerInputError
from ledger.records import TradeIn
from tests.washsale_cases import T, day


def one_sale(result):
    (sale,) = [s for s in result.sales]
    return sale


def lot(result, lot_id):
    (x,) = [x for x in result.lots if x.lot_id == lot_id]
    return x


def test_basic_wash_sale_moves_the_loss_into_the_replacement_basis(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 100, 10, "a"),
            T("2024-03-01", "A", "sell", 100, 7.50, "a"),
            T("2024-03-15", "A", "buy", 100, 8, "b"),
        ]
    )
    s = one_sale(r)
    assert (s.proceeds, s.basis, s.gain, s.disallowed, s.permanent) == (75000, 100000, -25000, 25000, 0)
    b = lot(r, "b")
    assert b.basis == 105000  # $800 + $250
    assert b.holding_start == day("2024-03-15", -(day("2024-03-01") - day("2024-01-02")).days)


@pytest.mark.parametrize(("rebuy", "new_basis"), [(90, 11000), (70, 9000)])
def test_per_share_basis_after_a_wash(ledger_backend, rebuy, new_basis):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 1, 100, "a"),
            T("2024-02-01", "A", "sell", 1, 80, "a"),
            T("2024-02-10", "A", "buy", 1, rebuy, "b"),
        ]
    )
    assert lot(r, "b").basis == new_basis
    assert one_sale(r).disallowed == 2000


def test_ira_replacement_loses_the_loss_for_good_and_keeps_its_basis(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 100, 10, "a"),
            T("2024-12-20", "A", "sell", 100, 6, "a"),
            T("2024-12-21", "IRA", "buy", 100, 6.10, "i"),
        ]
    )
    s = one_sale(r)
    assert (s.gain, s.disallowed, s.permanent, s.recognized) == (-40000, 0, 40000, 0)
    assert lot(r, "i").basis == 61000 and lot(r, "i").holding_start == day("2024-12-21")


@pytest.mark.parametrize(("offset", "washed"), [(-31, False), (-30, True), (0, True), (30, True), (31, False)])
def test_window_is_thirty_days_each_side_inclusive(ledger_backend, offset, washed):
    sale = day("2024-06-14")
    trades = [T("2024-01-02", "A", "buy", 10, 50, "a")]
    rebuy = T(day("2024-06-14", offset), "A", "buy", 10, 45, "b")
    sell = T(sale, "A", "sell", 10, 40, "a")
    trades += [rebuy, sell] if offset < 0 else [sell, rebuy]
    r = ledger_backend(trades)
    assert one_sale(r).disallowed == (10000 if washed else 0)
    assert lot(r, "b").basis == 45000 + (10000 if washed else 0)


def test_spouse_rebuy_washes(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 10, 50, "a"),
            T("2024-05-01", "A", "sell", 10, 40, "a"),
            T("2024-05-10", "SPOUSE", "buy", 10, 41, "s"),
        ]
    )
    assert one_sale(r).disallowed == 10000 and lot(r, "s").basis == 41000 + 10000


def test_another_households_rebuy_does_not_wash(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 10, 50, "a"),
            T("2024-05-01", "A", "sell", 10, 40, "a"),
            T("2024-05-10", "OTHER", "buy", 10, 41, "o"),
        ]
    )
    assert one_sale(r).disallowed == 0 and lot(r, "o").basis == 41000


def test_partial_replacement_disallows_only_that_fraction(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 100, 10, "a"),
            T("2024-04-01", "A", "sell", 100, 7, "a"),
            T("2024-04-05", "A", "buy", 40, 7.25, "b"),
        ]
    )
    s = one_sale(r)
    assert s.gain == -30000 and s.disallowed == 12000 and s.recognized == -18000
    assert lot(r, "b").basis == 29000 + 12000


def test_one_bite_two_losses_one_rebuy_washes_the_first_sale_only(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 100, 10, "a"),
            T("2024-01-03", "SPOUSE", "buy", 100, 10, "s"),
            T("2024-04-01", "A", "sell", 100, 8, "a"),
            T("2024-04-02", "SPOUSE", "sell", 100, 8, "s"),
            T("2024-04-10", "A", "buy", 100, 8.5, "b"),
        ]
    )
    first, second = sorted(r.sales, key=lambda s: s.date)
    assert first.disallowed == 20000 and second.disallowed == 0
    assert lot(r, "b").basis == 85000 + 20000


def test_partial_rebuy_splits_the_lot_and_the_rest_washes_the_next_loss(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 60, 10, "a"),
            T("2024-01-02", "SPOUSE", "buy", 50, 10, "s"),
            T("2024-04-01", "A", "sell", 60, 8, "a"),
            T("2024-04-02", "SPOUSE", "sell", 50, 9, "s"),
            T("2024-04-10", "A", "buy", 100, 8.5, "b"),
        ]
    )
    first, second = sorted(r.sales, key=lambda s: s.date)
    assert first.disallowed == 12000 and second.disallowed == 4000  # 60 shares, then the other 40 of 50
    assert lot(r, "b.1").quantity == 60 and lot(r, "b.1").basis == 51000 + 12000
    assert lot(r, "b.2").quantity == 40 and lot(r, "b.2").basis == 34000 + 4000


def test_chain_replacement_sold_at_a_loss_and_rebought(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 10, 100, "a"),
            T("2024-03-01", "A", "sell", 10, 80, "a"),  # loss 200 → b
            T("2024-03-05", "A", "buy", 10, 82, "b"),  # basis 820 + 200 = 1020
            T("2024-05-01", "A", "sell", 10, 75, "b"),  # loss 1020 - 750 = 270 → c
            T("2024-05-02", "A", "buy", 10, 76, "c"),
        ]
    )
    first, second = sorted(r.sales, key=lambda s: s.date)
    assert first.disallowed == 20000 and second.basis == 102000 and second.disallowed == 27000
    c = lot(r, "c")
    assert c.basis == 76000 + 27000
    # tacked twice: b starts 59 days (a's holding) before its purchase, c takes all of b's
    b_start = day("2024-03-05", -(day("2024-03-01") - day("2024-01-02")).days)
    assert c.holding_start == day("2024-05-02", -(day("2024-05-01") - b_start).days)


def test_gains_are_never_washed(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 10, 50, "a"),
            T("2024-02-01", "A", "sell", 10, 60, "a"),
            T("2024-02-02", "A", "buy", 10, 61, "b"),
        ]
    )
    assert one_sale(r).disallowed == 0 and lot(r, "b").basis == 61000


def test_part_of_one_purchase_is_not_washed_by_the_rest_of_it(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 100, 10, "a"),
            T("2024-01-20", "A", "sell", 50, 8, "a"),
        ]
    )
    s = one_sale(r)
    assert s.gain == -10000 and s.disallowed == 0 and lot(r, "a").quantity == 50


@pytest.mark.parametrize(("sold", "term"), [("2021-02-28", "short"), ("2021-03-01", "long")])
def test_long_short_boundary_with_feb_29(ledger_backend, sold, term):
    r = ledger_backend([T("2020-02-29", "A", "buy", 1, 10, "a"), T(sold, "A", "sell", 1, 12, "a")])
    assert one_sale(r).term == term


@pytest.mark.parametrize(("sold", "term"), [("2024-06-15", "short"), ("2024-06-16", "long")])
def test_a_year_spanning_a_leap_day_is_long_only_after_the_anniversary(ledger_backend, sold, term):
    """domain.md §2: held 366 days on 2024-06-15 (Feb 29 in between) is still one year, not more."""
    r = ledger_backend([T("2023-06-15", "A", "buy", 1, 10, "a"), T(sold, "A", "sell", 1, 12, "a")])
    assert one_sale(r).term == term


def test_fifo_sell_without_lot_id_takes_the_oldest_lots_first(ledger_backend):
    r = ledger_backend(
        [
            T("2023-01-03", "A", "buy", 10, 10, "old"),
            T("2023-06-01", "A", "buy", 10, 20, "new"),
            T("2024-07-01", "A", "sell", 15, 15),
        ]
    )
    sold = sorted((s.lot_id, s.quantity, s.gain) for s in r.sales)
    assert sold == [("new", Decimal(5), -2500), ("old", Decimal(10), 5000)]
    assert lot(r, "new").quantity == 5


# --- lot identity, one sale, pieces (issue 9) ---------------------------------------------------


@pytest.mark.parametrize(("sold", "open_shares", "open_basis"), [(15, 15, 17000), (30, 0, 0)])
def test_fifo_sell_over_two_lots_takes_the_sold_shares_out_before_washing(
    ledger_backend, sold, open_shares, open_basis
):
    r = ledger_backend(
        [
            T("2024-01-01", "A", "buy", 10, 10, "L1"),
            T("2024-01-02", "A", "buy", 20, 10, "L2"),
            T("2024-01-05", "A", "sell", sold, 8),
        ]
    )
    assert sum(x.quantity for x in r.lots) == open_shares and sum(x.basis for x in r.lots) == open_basis
    l1 = next(s for s in r.sales if s.lot_id == "L1")
    # L1's $20 loss washes into L2's shares still held (15 of them), never into shares sold with it
    assert l1.disallowed == (2000 if sold == 15 else 0)
    # conservation: cost + deferred loss = basis still open + basis sold
    assert 30000 + sum(s.disallowed for s in r.sales) == open_basis + sum(s.basis for s in r.sales)


@pytest.mark.parametrize("order", [("old", "new"), ("new", "old")])
def test_shares_sold_in_one_sale_never_replace_each_other_whatever_their_order(ledger_backend, order):
    r = ledger_backend(
        [
            T("2023-01-03", "A", "buy", 10, 20, "old"),  # long-term, a loss at 8
            T("2024-03-01", "A", "buy", 10, 9, "new"),  # short-term, a loss at 8
            T("2024-03-10", "A", "sell", 10, 8, order[0]),
            T("2024-03-10", "A", "sell", 10, 8, order[1]),
        ]
    )
    assert {s.lot_id: (s.term, s.disallowed) for s in r.sales} == {"old": ("long", 0), "new": ("short", 0)}
    assert not r.lots


def test_a_closed_lot_id_cannot_name_a_new_purchase(ledger_backend):
    with pytest.raises(LedgerInputError, match="already used"):
        ledger_backend(
            [
                T("2024-01-02", "A", "buy", 10, 50, "X"),
                T("2024-02-01", "A", "sell", 10, 30, "X"),
                T("2024-02-06", "A", "buy", 10, 31, "X"),
            ]
        )


def test_a_rebuy_without_an_id_washes_the_loss_of_a_closed_lot(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 10, 50, "X"),
            T("2024-02-01", "A", "sell", 10, 30, "X"),
            T("2024-02-06", "A", "buy", 10, 31),
        ]
    )
    assert one_sale(r).disallowed == 20000 and r.lots[0].basis == 31000 + 20000 and r.lots[0].lot_id != "X"


@pytest.mark.parametrize("other_id", ["L2", "L2.1"])
def test_an_id_inside_another_lots_namespace_is_refused_across_symbols(ledger_backend, other_id):
    trades = [
        T("2024-01-02", "A", "buy", 10, 10, "L1"),
        T("2024-01-03", "A", "buy", 20, 10, "L2"),
        T("2024-01-05", "A", "sell", 10, 8, "L1"),  # washes into 10 of L2's 20: L2.1 and L2.2
        T("2024-01-06", "A", "buy", 5, 40, other_id, symbol="ABC"),
    ]
    with pytest.raises(LedgerInputError, match="already used"):
        ledger_backend(trades)


def test_a_sell_naming_a_split_lot_sells_its_pieces_in_order(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 10, 10, "L1"),
            T("2024-01-03", "A", "buy", 20, 10, "L2"),
            T("2024-01-05", "A", "sell", 10, 8, "L1"),  # L2 -> L2.1 (10, basis 120), L2.2 (10, basis 100)
            T("2024-06-03", "A", "sell", 15, 12, "L2"),  # the lot as bought: L2.1 first, then 5 of L2.2
        ]
    )
    sold = [(s.lot_id, s.quantity, s.basis) for s in r.sales if s.date == day("2024-06-03")]
    assert sold == [("L2.1", Decimal(10), 12000), ("L2.2", Decimal(5), 5000)]
    assert [(x.lot_id, x.quantity, x.basis) for x in r.lots] == [("L2.2", Decimal(5), 5000)]


def test_a_made_lot_id_skips_one_a_user_already_took(ledger_backend):
    r = ledger_backend(
        [
            T("2024-01-02", "A", "buy", 1, 10, "A-20240103-2"),
            T("2024-01-03", "A", "buy", 1, 10),
        ]
    )
    ids = sorted(x.lot_id for x in r.lots)
    assert len(set(ids)) == 2 and "A-20240103-2" in ids


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ("A-20240103-2", True),  # the very id the ledger made for the second purchase
        ("A-20240103-2.1", True),  # inside its namespace
        ("A-20240104-2", False),  # another day
        ("SPOUSE-20240103-2", False),  # another account of the household
        ("A-20240103-02", False),  # another string
        ("A-20240103-1", False),  # the first purchase was named by the user: this number made nothing
        ("A-20240103-3", False),  # the buy that gives it is the third purchase
    ],
)
def test_a_given_id_is_refused_only_when_the_ledger_made_that_very_id(ledger_backend, given, refused):
    trades = [
        T("2024-01-02", "A", "buy", 1, 10, "first"),
        T("2024-01-03", "A", "buy", 1, 10),  # made: A-20240103-2
        T("2024-01-05", "A", "buy", 1, 10, given, symbol="ABC"),
    ]
    if refused:
        with pytest.raises(LedgerInputError, match="already used"):
            ledger_backend(trades)
    else:
        assert sorted(x.lot_id for x in ledger_backend(trades).lots) == sorted(["first", "A-20240103-2", given])


def test_a_buy_without_id_in_an_account_with_a_dot_gets_an_id_and_ends(ledger_backend):
    dotted = TradeIn(day("2024-01-03"), "L1.x", "H1", "taxable", "XYZ", "buy", Decimal(10), Decimal(100))
    r = ledger_backend([T("2024-01-02", "A", "buy", 10, 100, "L1"), dotted])
    made = next(x for x in r.lots if x.account == "L1.x")
    assert "." not in made.lot_id and len(r.lots) == 2


def test_a_lot_cannot_be_sold_before_it_was_acquired():
    from ledger.washsale import Household

    hh = Household("H1")
    hh.register("A", "taxable")
    hh.open_lot("a", "A", "XYZ", Decimal(10), 10000, day("2024-06-01"))  # an imported opening lot
    for lot_id in ("a", None):
        with pytest.raises(LedgerInputError, match="acquired|holds 0"):
            hh.apply(T("2024-03-01", "A", "sell", 10, 8, lot_id))
    assert hh.lots["a"].quantity == 10 and not hh.sales


def test_a_trade_worth_more_than_the_ledger_keeps_exact_is_refused(ledger_backend):
    with pytest.raises(LedgerInputError, match="10\\^13"):
        ledger_backend([T("2024-01-02", "A", "buy", "10000000000", "10000000", "big")])


def test_quantities_are_kept_in_plain_form(ledger_backend):
    r = ledger_backend(
        [T("2024-01-02", "A", "buy", "5E+2", 10, "a"), T("2024-02-02", "A", "sell", "1.0000000", 11, "a")]
    )
    assert str(r.lots[0].quantity) == "499" and str(r.sales[0].quantity) == "1"


def test_a_long_account_id_makes_lot_ids_that_can_be_sold_by_name(ledger_backend):
    from ledger.keys import made_lot_id

    account = "A" * 64
    buy = TradeIn(day("2024-01-02"), account, "H1", "taxable", "XYZ", "buy", Decimal(10), Decimal(10))
    lot_id = made_lot_id(account, day("2024-01-02"), 1)
    sell = TradeIn(day("2024-02-02"), account, "H1", "taxable", "XYZ", "sell", Decimal(4), Decimal(12), lot_id)
    r = ledger_backend([buy, sell])
    assert len(lot_id) > 64 and [(x.lot_id, x.quantity) for x in r.lots] == [(lot_id, 6)]
