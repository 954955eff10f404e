"""The year-end roll of a household's loss carry-forward (domain.md §2, §10), on both adapters (a
real redis-server and the memory ledger): one household with short- and long-term gains and
losses in two taxable accounts and an IRA, its numbers worked by hand; idempotent, re-runnable,
journaled and rebuilt."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from decimal import Decimal

import pytest

from ledger.api import AccountInfo
from ledger.errors import CommitRejected, LedgerInputError
from ledger.memory import MemoryLedger
from ledger.records import OpenLot
from ledger.store import LedgerStore
from ledger.yearend import CarryBook, Roll, YearEnd, close_years
from taxview.core.records import Lot, Trade

D = dt.date
AT = "2025-01-02T06:00:00+00:00"
ACCOUNTS = [
    AccountInfo("A", "H1", "taxable"),
    AccountInfo("S", "H1", "taxable"),
    AccountInfo("I", "H1", "ira"),
    AccountInfo("X", "H2", "taxable"),
    AccountInfo("Z", "H3", "taxable"),  # trades nothing
]
LOTS = [
    ("A", Lot("a1", "XYZ", Decimal(100), 1_000_00, D(2023, 1, 3))),  # $10 a share
    ("A", Lot("a2", "ABC", Decimal(50), 2_500_00, D(2023, 6, 1))),  # $50
    ("S", Lot("s1", "DEF", Decimal(200), 20_000_00, D(2024, 2, 1))),  # $100
    ("S", Lot("s2", "GHI", Decimal(100), 1_000_00, D(2020, 1, 2))),  # $10
    ("I", Lot("i1", "XYZ", Decimal(100), 500_00, D(2022, 1, 3))),  # $5
    ("X", Lot("x1", "XYZ", Decimal(10), 100_00, D(2023, 1, 3))),  # $10
]


def sell(lot: str, qty: int, price: str, symbol: str) -> Trade:
    return Trade(symbol, "sell", Decimal(qty), Decimal(price), lot)


def open_firm(ledger) -> None:
    """The accounts and opening lots, through each adapter's own way in; A states the household's
    opening carry: $1,500 of long-term loss brought over."""
    ledger.add_accounts(ACCOUNTS)
    if isinstance(ledger, MemoryLedger):
        for account, x in LOTS:
            ledger.open_lot(account, x)
    else:
        ledger.import_lots(
            [
                OpenLot(x.lot_id, a, x.symbol, x.quantity, x.basis_cents, x.acquired, x.acquired, "", x.quantity, 0)
                for a, x in LOTS
            ]
        )
    ledger.set_mandate("A", {"carry_lt": Decimal("-1500.00")}, "ops", AT)


def trade_2024(ledger) -> None:
    """H1 in 2024. A: a1 40 × $7.50, long-term loss −$100; a2 10 × $60, short-term gain +$100.
    S: s1 200 × $50, short-term loss −$10,000; s2 100 × $31, long-term gain +$2,100. I (an IRA):
    i1 100 × $50, a gain of $4,500 never recognized. H2: x1 10 × $30, long-term gain +$200."""
    ledger.commit("A", D(2024, 3, 1), [sell("a1", 40, "7.50", "XYZ"), sell("a2", 10, "60", "ABC")], "k1")
    ledger.commit("S", D(2024, 4, 1), [sell("s1", 200, "50", "DEF"), sell("s2", 100, "31", "GHI")], "k2")
    ledger.commit("I", D(2024, 5, 1), [sell("i1", 100, "50", "XYZ")], "k3")
    ledger.commit("X", D(2024, 6, 3), [sell("x1", 10, "30", "XYZ")], "k4")


def trade_2025(ledger) -> None:
    """A: a1's other 60 × $20 (basis $600), long-term gain +$600."""
    ledger.commit("A", D(2025, 2, 3), [sell("a1", 60, "20", "XYZ")], "k5")


# H1's 2024 by hand: ST +$100 − $10,000 = −$9,900; LT −$100 + $2,100 = +$2,000 (the IRA adds
# nothing). With the $1,500 LT carried in, LT is +$500, which the ST loss offsets: net ST −$9,400.
# $3,000 of it offsets ordinary income; −$6,400 of short-term loss carries into 2025.
H1_2024 = Roll(
    year=2024,
    st_cents=-9_900_00,
    lt_cents=2_000_00,
    carry_in_st=0,
    carry_in_lt=-1_500_00,
    opening=True,
    net_st=-9_400_00,
    net_lt=0,
    deduction_cents=3_000_00,
    carry_st=-6_400_00,
    carry_lt=0,
    cap_cents=3_000_00,
)
# 2025: −$6,400 ST carried in against a $600 LT gain: net ST −$5,800; $3,000 deducted; −$2,800 on.
H1_2025 = Roll(2025, 0, 600_00, -6_400_00, 0, False, -5_800_00, 0, 3_000_00, -2_800_00, 0, 3_000_00)
H2_2024 = Roll(2024, 0, 200_00, 0, 0, True, 0, 200_00, 0, 0, 0, 3_000_00)  # a gain: nothing to carry


@pytest.fixture(params=["memory", "redis"])
def ledger(request):
    led = MemoryLedger() if request.param == "memory" else LedgerStore(request.getfixturevalue("redis_client"))
    open_firm(led)
    trade_2024(led)
    return led


def entries(ledger, hh: str) -> list[dict]:
    """The household's year-end journal entries (the memory ledger keeps no journal)."""
    if isinstance(ledger, MemoryLedger):
        return []
    return [e["entry"]["year_end"] for e in ledger.journal(hh) if "year_end" in e["entry"]]


def test_the_roll_nets_the_households_taxable_accounts_with_its_opening_carry(ledger):
    assert ledger.account("I").realized == {}  # the IRA's sale is not recognized
    assert ledger.close_year("H1", 2024, "ops", AT) == [YearEnd("H1", 2024, "rolled", H1_2024)]
    assert ledger.carry_book("H1") == CarryBook(2024, {2024: (0, -1_500_00), 2025: (-6_400_00, 0)}, {2024: H1_2024})
    assert ledger.close_year("H2", 2024, "ops", AT) == [YearEnd("H2", 2024, "rolled", H2_2024)]
    assert ledger.carry_book("H2").latest() == (2025, 0, 0)
    trade_2025(ledger)
    assert ledger.close_year("H1", 2025, "ops", AT) == [YearEnd("H1", 2025, "rolled", H1_2025)]
    assert ledger.carry_book("H1").latest() == (2026, -2_800_00, 0)


def test_rolling_a_year_again_changes_nothing_and_journals_nothing(ledger):
    ledger.close_year("H1", 2024, "ops", AT)
    book, journaled = ledger.carry_book("H1"), entries(ledger, "H1")
    for _ in range(2):
        assert ledger.close_year("H1", 2024, "someone else", "2025-03-01T00:00:00+00:00") == [
            YearEnd("H1", 2024, "unchanged", H1_2024)
        ]
    assert ledger.carry_book("H1") == book and entries(ledger, "H1") == journaled
    if isinstance(ledger, LedgerStore):
        assert journaled == [{"year": 2024, "at": AT, "actor": "ops", "old": None, "new": asdict(H1_2024)}]


def test_a_corrected_opening_carry_restates_the_first_year_and_the_years_rolled_after_it(ledger):
    ledger.close_year("H1", 2024, "ops", AT)
    trade_2025(ledger)
    ledger.close_year("H1", 2025, "ops", AT)
    ledger.set_mandate("A", {"carry_lt": Decimal("-2500.00")}, "ops", AT)  # the operator's correction
    done = ledger.close_year("H1", 2024, "ops", AT)
    # 2024: ST −$9,900, LT +$2,000 − $2,500 = −$500: both losses, $10,400 in all; $3,000 deducted,
    # from the short-term loss first: −$6,900 ST and −$500 LT carried. 2025: ST −$6,900; LT +$600 −
    # $500 = +$100, offset: net ST −$6,800; $3,000 deducted; −$3,800 ST on into 2026.
    new_2024 = Roll(
        2024, -9_900_00, 2_000_00, 0, -2_500_00, True, -9_900_00, -500_00, 3_000_00, -6_900_00, -500_00, 3_000_00
    )
    new_2025 = Roll(2025, 0, 600_00, -6_900_00, -500_00, False, -6_800_00, 0, 3_000_00, -3_800_00, 0, 3_000_00)
    assert done == [
        YearEnd("H1", 2024, "restated", new_2024, H1_2024),
        YearEnd("H1", 2025, "restated", new_2025, H1_2025),
    ]
    assert ledger.carry_book("H1").latest() == (2026, -3_800_00, 0)
    assert ledger.close_year("H1", 2025, "ops", AT) == [YearEnd("H1", 2025, "unchanged", new_2025)]
    if isinstance(ledger, LedgerStore):
        assert [(e["year"], e["old"] is not None) for e in entries(ledger, "H1")] == [
            (2024, False),
            (2025, False),
            (2024, True),
            (2025, True),
        ]


def test_years_roll_in_order_from_the_households_first(ledger):
    ledger.close_year("H1", 2024, "ops", AT)
    with pytest.raises(CommitRejected, match="GAP: household H1: roll 2025 first"):
        ledger.close_year("H1", 2026, "ops", AT)
    with pytest.raises(CommitRejected, match="BEFORE_FIRST: household H1: its carry-forward starts in 2024"):
        ledger.close_year("H1", 2023, "ops", AT)
    with pytest.raises(LedgerInputError, match="year"):
        ledger.close_year("H1", "2024", "ops", AT)
    with pytest.raises(LedgerInputError, match="unknown household 'H9'"):
        ledger.close_year("H9", 2024, "ops", AT)


def test_a_household_that_never_traded_starts_its_carry_only_when_asked(ledger):
    """The nightly's roll (``start_idle`` off) leaves a household never rolled that realized
    nothing alone: its opening carry is for the year it starts trading in. The operator's
    ``close-year`` starts it: a quiet year still spends $3,000 of the carry."""
    ledger.set_mandate("Z", {"carry_st": Decimal("-5000.00")}, "ops", AT)
    assert ledger.close_year("H3", 2024, "nightly", AT, start_idle=False) == [YearEnd("H3", 2024, "skipped", None)]
    assert ledger.carry_book("H3") == CarryBook() and entries(ledger, "H3") == []
    quiet = Roll(2024, 0, 0, -5_000_00, 0, True, -5_000_00, 0, 3_000_00, -2_000_00, 0, 3_000_00)
    assert ledger.close_year("H3", 2024, "ops", AT) == [YearEnd("H3", 2024, "rolled", quiet)]
    assert ledger.close_year("H3", 2025, "nightly", AT, start_idle=False)[0].roll.deduction_cents == 2_000_00


def test_the_opening_carry_is_one_number_of_the_household(ledger):
    ledger.add_accounts([AccountInfo("Z2", "H3", "taxable")])
    ledger.set_mandate("Z", {"carry_st": Decimal("-5000.00")}, "ops", AT)
    ledger.set_mandate("Z2", {"carry_st": Decimal("-5000.00")}, "ops", AT)  # the same again: one number
    assert ledger.close_year("H3", 2024, "ops", AT)[0].roll.carry_in_st == -5_000_00
    ledger.set_mandate("Z2", {"carry_st": Decimal("-4000.00")}, "ops", AT)
    with pytest.raises(
        LedgerInputError, match=r"household H3: its accounts state different carry_st \(Z -5000.00, Z2 -4000.00\)"
    ):
        ledger.close_year("H3", 2024, "ops", AT)
    assert ledger.carry_book("H3").rolls[2024].carry_in_st == -5_000_00  # nothing written


def test_closing_a_year_everywhere_reports_each_household_and_marks_the_year(ledger):
    ledger.set_mandate("Z", {"carry_st": Decimal("-5000.00")}, "ops", AT)
    report = close_years(ledger, 2024, "nightly", AT, start_idle=False)
    assert report.counts() == {"rolled": 2, "restated": 0, "unchanged": 0, "skipped": 1, "failed": 0}
    assert [(r.household, r.status) for r in report.results] == [("H1", "rolled"), ("H2", "rolled"), ("H3", "skipped")]
    assert ledger.year_closed(2024) and not ledger.year_closed(2025)
    ledger.add_accounts([AccountInfo("Z2", "H3", "taxable")])
    ledger.set_mandate("Z2", {"carry_st": Decimal("-1.00")}, "ops", AT)
    report = close_years(ledger, 2025, "ops", AT)
    assert list(report.failed) == ["H3"] and "different carry_st" in report.failed["H3"]
    assert report.counts()["rolled"] == 2 and not ledger.year_closed(2025)  # H3 failed: not closed


def test_the_journal_rebuild_reproduces_the_rolls(redis_client):
    store = LedgerStore(redis_client)
    open_firm(store)
    trade_2024(store)
    close_years(store, 2024, "ops", AT)
    trade_2025(store)
    store.close_year("H1", 2025, "ops", AT)
    store.set_mandate("A", {"carry_lt": Decimal("-2500.00")}, "ops", AT)
    store.close_year("H1", 2024, "ops", AT)  # restates 2024 and 2025
    target = LedgerStore(redis_client, prefix="rebuilt")
    assert store.rebuild_from_journal(target) == 5
    for hh in ("H1", "H2", "H3"):
        assert target.carry_book(hh) == store.carry_book(hh)
    assert target.state() == store.state() and store.state()["H1"]["carry"]["carry:2026"] == "-380000|0"
    assert [e["entry"] for e in target.journal("H1")] == [e["entry"] for e in store.journal("H1")]


def test_a_trade_booked_while_the_roll_was_planned_is_in_the_roll(redis_client, monkeypatch):
    """The roll's write checks what it read (lua/yearend.lua): a commit into the year in between
    answers STALE and the roll is planned again with it."""
    import ledger.yearend as yearend

    store = LedgerStore(redis_client)
    open_firm(store)
    trade_2024(store)
    plan, calls = yearend.plan_roll, []

    def plan_then_trade(*args, **kwargs):
        calls.append(1)
        planned = plan(*args, **kwargs)
        if len(calls) == 1:  # a2 10 × $40 on Dec 30: a long-term loss of $100 after the read
            store.commit("A", D(2024, 12, 30), [sell("a2", 10, "40", "ABC")], "late")
        return planned

    monkeypatch.setattr(yearend, "plan_roll", plan_then_trade)
    (done,) = store.close_year("H1", 2024, "ops", AT)
    assert len(calls) == 2 and done.roll.lt_cents == H1_2024.lt_cents - 100_00
    assert done.roll.carry_st == H1_2024.carry_st - 100_00 and len(entries(store, "H1")) == 1
