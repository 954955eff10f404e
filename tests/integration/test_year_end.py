"""The year-end roll of a household's loss carry-forward (domain.md §2, §10), on both adapters (a
real redis-server and the memory ledger): one household with short- and long-term gains and
losses in two taxable accounts and an IRA, its numbers worked by hand; idempotent, re-runnable,
journaled and rebuilt; ``taxview ledger close-year``, ``accounts show`` and the nightly's roll."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from decimal import Decimal

import pytest

from ledger.api import AccountInfo
from ledger.errors import CommitRejected, LedgerInputError
from ledger.memory import MemoryLedger
from ledger.records import OpenLot
from ledger.store import LedgerStore
from ledger.yearend import CarryBook, Roll, YearEnd, close_years
from taxview.cli import main
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


def test_close_year_cli_rolls_every_household_and_accounts_show_prints_the_carry(redis_server, redis_client, capsys):
    url = redis_server.url
    store = LedgerStore(redis_client)
    open_firm(store)
    trade_2024(store)
    capsys.readouterr()
    assert main(["ledger", "close-year", "2024", "--redis", url, "--actor", "ops", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"] == {"rolled": 3, "restated": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    h1 = next(r for r in doc["households"] if r["household"] == "H1")
    assert h1["status"] == "rolled" and h1["roll"]["deduction"] == "3000.00"
    assert h1["roll"]["carry_in"] == {"st": "0.00", "lt": "-1500.00", "opening": True}
    assert h1["roll"]["carry_out"] == {"st": "-6400.00", "lt": "0.00"}
    assert main(["ledger", "close-year", "2024", "--redis", url]) == 0
    assert capsys.readouterr().out.strip() == (
        "tax year 2024 closed: 0 rolled, 0 restated, 3 unchanged, 0 skipped (never rolled, nothing realized), 0 failed"
    )
    assert main(["accounts", "show", "S", "--redis", url, "--json"]) == 0
    carry = json.loads(capsys.readouterr().out)["carry_forward"]
    assert carry["first_year"] == 2024 and carry["into"]["2025"] == {"st": "-6400.00", "lt": "0.00"}
    assert carry["rolls"]["2024"]["realized"] == {"st": "-9900.00", "lt": "2000.00"}
    assert main(["accounts", "show", "S", "--redis", url]) == 0
    assert "household H1 carry-forward into 2025: ST -6400.00 LT 0.00 (rolled from 2024" in capsys.readouterr().out
    assert main(["ledger", "close-year", "2999", "--redis", url]) == 2  # not over yet
    assert "not over yet" in capsys.readouterr().err


def test_the_first_night_of_a_year_closes_the_year_before_once(redis_client, capsys):
    from cluster.coordinator import close_last_year

    store = LedgerStore(redis_client)
    open_firm(store)
    trade_2024(store)
    close_last_year(store, D(2025, 1, 2), retry_s=5)
    assert "tax year 2024 closed: 2 rolled" in capsys.readouterr().err  # H3 never traded: left alone
    assert store.year_closed(2024) and store.carry_book("H1").rolls[2024] == H1_2024
    journal = store.journal("H1")
    close_last_year(store, D(2025, 1, 3), retry_s=5)  # the next night reads one key
    assert capsys.readouterr().err == "" and store.journal("H1") == journal
    redis_client.hset("tv:hh:{hh:H1}", "carry_first", "not a year")  # a broken ledger: a warning, not a failed night
    close_last_year(store, D(2026, 1, 2), retry_s=5)
    assert "warning" in capsys.readouterr().err


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


def test_the_nightly_run_on_the_first_night_of_a_year_rolls_the_year_before(
    local_ray, redis_server, redis_client, tmp_path
):
    """A firm rebalanced on Dec 31 (it harvests losses), then on Jan 2: before the shards start
    the night rolls the year before in every household that realized something in it, with the
    numbers of §2's netting; a re-run of the night rolls nothing again."""
    from cluster.coordinator import rebalance
    from cluster.settings import RunSettings
    from ledger.connection import LedgerSettings
    from ledger.importer import import_lots
    from solver.market import synthesize, write_market
    from taxview.core.tax import net_year
    from taxview.demo import synth_firm

    m = synthesize(names=60, days=300, factors=8, seed=11, start="2023-11-15")  # through 2025-01-07
    write_market(m, tmp_path / "market")
    store = LedgerStore(redis_client)
    t = sum(str(d) < "2024-12-01" for d in m.dates) - 1  # the firm's lots as of Nov 29
    infos, lots = synth_firm(m, t, 8, seed=5)
    store.add_accounts(infos)
    import_lots(store, lots)
    for night in ("2024-12-31", "2025-01-02", "2025-01-02"):
        out = tmp_path / night
        settings = RunSettings(night, tmp_path / "market", out, workers=2, quiet=True, shard_size=4, factors=8)
        summary = rebalance(settings, LedgerSettings(redis_server.url))
        assert summary.failed == 0 and "year_end_s" in summary.stages
        if night == "2024-12-31":
            assert store.year_closed(2023) and all(not store.carry_book(a.household).rolls for a in infos)
            journals = None
        elif journals is None:  # the first January night
            journals = {a.household: store.journal(a.household) for a in infos}
    assert store.year_closed(2024)
    traded = 0
    for hh in sorted({a.household for a in infos}):
        realized = [store.account(a.account).realized for a in infos if a.household == hh]
        st = sum(r.get("2024:st", 0) for r in realized)
        lt = sum(r.get("2024:lt", 0) for r in realized)
        book = store.carry_book(hh)
        if st == lt == 0:
            assert book == CarryBook()  # never traded: its opening carry waits
            continue
        traded += 1
        n = net_year(st, lt)
        want = Roll(2024, st, lt, 0, 0, True, n.st_cents, n.lt_cents, n.deduction_cents, n.carry_st_cents,
                    n.carry_lt_cents, 3_000_00)  # fmt: skip
        assert book.rolls == {2024: want} and book.latest() == (2025, n.carry_st_cents, n.carry_lt_cents)
        assert store.journal(hh) == journals[hh]  # the re-run of the night rolled nothing again
    assert traded > 0
