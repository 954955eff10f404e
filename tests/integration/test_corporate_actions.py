"""Corporate actions on both ledgers (the Redis store on a real redis-server, the in-memory ledger):
splits keep basis and dates so a split is never a loss, a loss sale across a split washes the
split-adjusted share count, renames move lots, windows and pending sales; refusals change nothing,
replays change nothing, and the Redis journal rebuilds the state after actions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledger.api import AccountInfo
from ledger.batch import run
from ledger.corporate import rename_action, split_action
from ledger.errors import CommitRejected, LedgerInputError
from ledger.memory import MemoryLedger
from ledger.records import TradeIn
from ledger.store import LedgerStore
from taxview.core.records import Lot, Trade
from tests.integration.test_ledger_adapters import _open

D = dt.date
SPLIT_DAY = D(2024, 6, 10)
ACCOUNTS = [
    AccountInfo("A", "H1", "taxable", cash_cents=100_000_000),
    AccountInfo("S", "H1", "taxable", cash_cents=100_000_000),
    AccountInfo("I", "H1", "ira"),
    AccountInfo("X", "H2", "taxable"),
]
LOTS = [
    ("A", Lot("a1", "XYZ", Decimal(100), 1_000_000, D(2023, 1, 3))),  # $100 a share
    ("A", Lot("a2", "XYZ", Decimal(33), 330_000, D(2023, 2, 1))),  # an odd lot
    ("S", Lot("s1", "ABC", Decimal(10), 50_000, D(2023, 6, 1))),
    ("X", Lot("x1", "XYZ", Decimal(7), 70_000, D(2023, 1, 3))),
    ("X", Lot("x2", "XYZ", Decimal(5), 25_000, D(2024, 6, 12))),  # imported post-split position: left alone
]


@pytest.fixture(params=["memory", "redis"])
def ledger(request):
    led = MemoryLedger() if request.param == "memory" else LedgerStore(request.getfixturevalue("redis_client"))
    _open(led, ACCOUNTS, LOTS)
    return led


def held(ledger, hh: str = "H1") -> dict[str, tuple]:
    """lot id -> (account, symbol, quantity, basis cents, acquired, holding start)."""
    return {
        x.lot_id: (x.account, x.symbol, x.quantity, x.basis_cents, x.acquired, x.holding_start)
        for lots in ledger.household_lots(hh).values()
        for x in lots
    }


def view(ledger) -> dict:
    """All a caller can see (and, in Redis, every stored byte of lots, sales, windows, the
    journal and the versions): equal before and after a refused action."""
    out = {hh: (held(ledger, hh), ledger.sales(hh), ledger.restrictions(hh, D(2024, 6, 12))) for hh in ("H1", "H2")}
    if isinstance(ledger, LedgerStore):
        out["state"] = ledger.state()
        out["journal"] = [len(ledger.journal(hh)) for hh in ("H1", "H2")]
        out["meta"] = [ledger.r.hgetall(ledger.k.meta(hh)) for hh in ("H1", "H2")]
    return out


def sell(lot, qty, price, symbol="XYZ"):
    return Trade(symbol, "sell", Decimal(qty), Decimal(price), lot)


def buy(qty, price, symbol="XYZ", lot=None):
    return Trade(symbol, "buy", Decimal(qty), Decimal(price), lot)


def test_a_2_for_1_split_doubles_shares_keeps_basis_and_dates_so_half_the_price_is_no_loss(ledger):
    report = ledger.apply_action(split_action("XYZ", "2", SPLIT_DAY))
    assert (report.households, report.lots, report.sales, report.failed) == (["H1", "H2"], 3, 0, {})
    assert held(ledger)["a1"] == ("A", "XYZ", Decimal(200), 1_000_000, D(2023, 1, 3), D(2023, 1, 3))
    assert held(ledger)["a2"][2:4] == (Decimal(66), 330_000)
    assert held(ledger, "H2")["x1"][2] == Decimal(14) and held(ledger, "H2")["x2"][2] == Decimal(5)
    # the harm it prevents: 100 shares priced at the post-split $50 would look like a $5,000 loss
    done = ledger.commit("A", D(2024, 6, 11), [sell("a1", 200, "50")], "after-split")
    assert [(s["gain_cents"], s["disallowed_cents"], s["term"]) for s in done.sales] == [(0, 0, "long")]


def test_a_1_for_10_reverse_split_divides_shares_and_keeps_basis(ledger):
    ledger.apply_action(split_action("XYZ", "1:10", SPLIT_DAY))
    assert {k: v[2:4] for k, v in held(ledger).items() if k != "s1"} == {
        "a1": (Decimal(10), 1_000_000),
        "a2": (Decimal("3.3"), 330_000),
    }
    assert held(ledger, "H2")["x1"][2:4] == (Decimal("0.7"), 70_000)


def test_3_for_2_on_odd_lots_keeps_exact_fractional_shares(ledger):
    ledger.apply_action(split_action("XYZ", "3:2", SPLIT_DAY))
    assert held(ledger)["a1"][2] == Decimal(150) and held(ledger)["a2"][2] == Decimal("49.5")
    assert held(ledger, "H2")["x1"][2] == Decimal("10.5")
    done = ledger.commit("A", D(2024, 6, 11), [sell("a2", "49.5", "66.66")], "odd")  # sells the half share
    assert done.sales[0]["quantity"] == "49.5" and held(ledger).keys() == {"a1", "s1"}


def test_a_split_that_would_leave_a_fraction_of_a_millionth_is_refused_and_changes_nothing(ledger):
    before = view(ledger)
    with pytest.raises(LedgerInputError, match=r"lot a1 of account A: 100 × 1:3 .*millionths"):
        ledger.apply_action(split_action("XYZ", "1:3", SPLIT_DAY))
    assert view(ledger) == before  # H2 (7 × 1:3 is not representable either) and H1 alike


def test_a_loss_sale_before_a_split_is_washed_by_the_split_adjusted_share_count(ledger):
    """Sell 100 at $60 (a $4,000 loss), 2-for-1 split, buy 150 new shares at $32 within 30 days:
    150 new shares replace 75 old ones, so 3/4 of the loss is disallowed ($3,000), not all of it
    (as 150 ≥ 100 unadjusted shares would say); the new lot takes the sold shares' 517 days of holding.
    The same as the engine on the split-adjusted history."""
    ledger.commit("A", D(2024, 6, 3), [sell("a1", 100, "60")], "loss")
    report = ledger.apply_action(split_action("XYZ", "2", SPLIT_DAY))
    assert report.sales == 1
    ledger.commit("A", D(2024, 6, 17), [buy(150, "32", lot="r1")], "rebuy", allow_wash=True)
    (sale,) = ledger.sales("H1")
    assert (sale.disallowed_cents, sale.unmatched, sale.loss_left_cents) == (300_000, Decimal(50), 100_000)
    assert held(ledger)["r1"] == ("A", "XYZ", Decimal(150), 480_000 + 300_000, D(2024, 6, 17), D(2023, 1, 17))
    # the engine on the same history restated in post-split shares and prices
    rows = [
        (D(2023, 1, 3), "buy", 200, "50", "a1"),
        (D(2023, 2, 1), "buy", 66, "50", "a2"),
        (D(2024, 6, 3), "sell", 200, "30", "a1"),
        (D(2024, 6, 17), "buy", 150, "32", "r1"),
    ]
    engine = run(
        [TradeIn(d, "A", "H1", "taxable", "XYZ", side, Decimal(q), Decimal(p), lid) for d, side, q, p, lid in rows]
    )
    (e,) = engine.sales
    assert (e.proceeds_cents, e.basis_cents, e.disallowed_cents) == (sale.proceeds_cents, sale.basis_cents, 300_000)
    lots = {x.lot_id: (x.quantity, x.basis_cents, x.acquired, x.holding_start) for x in engine.lots}
    assert lots == {k: v[2:] for k, v in held(ledger).items() if v[0] == "A"}


def test_an_action_dated_on_or_before_a_households_last_trade_is_refused_and_changes_nothing(ledger):
    ledger.commit("S", SPLIT_DAY, [sell("s1", 1, "40", "ABC")], "that-day")
    before = view(ledger)
    with pytest.raises(LedgerInputError, match=r"household H1 traded on 2024-06-10"):
        ledger.apply_action(split_action("XYZ", "2", SPLIT_DAY))
    with pytest.raises(LedgerInputError, match="household H1"):
        ledger.apply_action(rename_action("XYZ", "XYZN", D(2024, 6, 9)))
    assert view(ledger) == before  # H2, which has no trade, is not written either
    ledger.apply_action(split_action("XYZ", "2", D(2024, 6, 11)))
    with pytest.raises(LedgerInputError, match="date"):  # history before the split is closed
        ledger.commit("S", SPLIT_DAY, [sell("s1", 1, "40", "ABC")], "late")


def test_a_replay_changes_nothing_and_a_reused_id_is_refused(ledger):
    first = ledger.apply_action(split_action("XYZ", "2", SPLIT_DAY, "ca-1"))
    after = view(ledger)
    again = ledger.apply_action(split_action("XYZ", "4:2", SPLIT_DAY, "ca-1"))  # the same action
    assert (first.households, again.households, again.replayed, again.lots) == (["H1", "H2"], [], ["H1", "H2"], 0)
    with pytest.raises(LedgerInputError, match="ca-1.*different action"):
        ledger.apply_action(split_action("XYZ", "3", SPLIT_DAY, "ca-1"))
    assert view(ledger) == after


def test_a_rename_moves_lots_windows_and_pending_sales(ledger):
    ledger.commit("A", D(2024, 6, 3), [sell("a1", 100, "60")], "loss")  # XYZ: no buy until 2024-07-03
    report = ledger.apply_action(rename_action("XYZ", "XYZN", SPLIT_DAY))
    assert (report.households, report.lots, report.sales) == (["H1", "H2"], 3, 1)
    assert held(ledger)["a2"] == ("A", "XYZN", Decimal(33), 330_000, D(2023, 2, 1), D(2023, 2, 1))
    assert {x[1] for x in held(ledger, "H2").values()} == {"XYZN"}
    r = ledger.restrictions("H1", D(2024, 6, 12))
    assert r["S"].no_buy == {"XYZN"} and r["I"].no_buy == {"XYZN"}
    assert ledger.restrictions("H2", D(2024, 6, 20))["X"].no_loss_sale == {"XYZN"}  # x2's purchase window
    (sale,) = ledger.sales("H1")
    assert (sale.symbol, sale.lot_id, sale.unmatched) == ("XYZN", "a1", Decimal(100))
    with pytest.raises(CommitRejected, match="WASH_CONFLICT"):
        ledger.commit("S", D(2024, 6, 20), [buy(100, "55", "XYZN")], "rebuy")
    ledger.commit("S", D(2024, 6, 20), [buy(100, "55", "XYZN", "n1")], "rebuy", allow_wash=True)
    assert ledger.sales("H1")[0].disallowed_cents == 400_000  # the renamed shares replace the loss
    assert held(ledger)["n1"][3] == 550_000 + 400_000


@pytest.mark.parametrize("new", ["ABC", "XYZ"])
def test_a_rename_onto_a_symbol_in_use_is_refused_and_changes_nothing(ledger, new):
    before = view(ledger)
    with pytest.raises(LedgerInputError) as exc:
        ledger.apply_action(rename_action("ABC" if new == "XYZ" else "XYZ", new, SPLIT_DAY))
    assert exc.value.field == "new" and "in use" in str(exc.value)
    assert view(ledger) == before


def test_an_action_on_a_symbol_no_household_holds_writes_nothing(ledger):
    before = view(ledger)
    report = ledger.apply_action(split_action("NOPE", "2", SPLIT_DAY))
    assert (report.households, report.replayed, report.lots) == ([], [], 0)
    assert view(ledger) == before


def test_the_journal_rebuilds_the_state_after_actions(store):
    _open(store, ACCOUNTS, LOTS)
    store.commit("A", D(2024, 6, 3), [sell("a1", 100, "60")], "loss")
    versions = [int(store.r.hget(store.k.meta(hh), "version")) for hh in ("H1", "H2")]
    store.apply_action(split_action("XYZ", "3:2", SPLIT_DAY))
    assert [int(store.r.hget(store.k.meta(hh), "version")) for hh in ("H1", "H2")] == [v + 1 for v in versions]
    store.commit("A", D(2024, 6, 17), [buy(30, "40", lot="r1")], "rebuy", allow_wash=True)
    store.apply_action(rename_action("XYZ", "XYZN", D(2024, 6, 18)))
    store.commit("A", D(2024, 6, 19), [sell("a2", "49.5", "41", "XYZN")], "after-rename", allow_wash=True)
    entry = store.journal("H1")[-2]["entry"]["corporate"]
    assert (entry["kind"], entry["symbol"], entry["new"], entry["lots"]) == ("rename", "XYZ", "XYZN", ["a2", "r1"])
    target = LedgerStore(store.r, prefix="rebuilt")
    store.rebuild_from_journal(target)
    assert target.state() == store.state()
    assert target.apply_action(rename_action("XYZ", "XYZN", D(2024, 6, 18))).replayed == ["H1", "H2"]


def test_a_trade_between_the_check_and_the_write_is_planned_again(store, monkeypatch):
    """A commit lands after the action read the household: its version moved, the script answers
    STALE, and the action is planned again on the new state (the new lot is split too)."""
    import ledger.actions

    _open(store, ACCOUNTS, LOTS)
    real = ledger.actions.prepare

    def racing(action, states):
        out = real(action, states)
        store.commit("S", D(2024, 6, 7), [buy(10, "99", lot="late")], "race")
        return out

    monkeypatch.setattr(ledger.actions, "prepare", racing)
    report = store.apply_action(split_action("XYZ", "2", SPLIT_DAY))
    assert report.lots == 4 and held(store)["late"][2] == Decimal(20)


def fail_household(monkeypatch, household: str):
    """Every write of the action in ``household`` fails (as through a Redis outage); returns the undo."""
    from ledger.actions import CorporateActions

    real = CorporateActions._write

    def flaky(self, action, plan, version):
        if plan.household == household:
            raise CommitRejected("BUSY", f"household {household!r} kept changing")
        return real(self, action, plan, version)

    monkeypatch.setattr(CorporateActions, "_write", flaky)
    return lambda: monkeypatch.setattr(CorporateActions, "_write", real)


def test_a_household_whose_write_fails_is_reported_and_a_rerun_finishes_it(store, monkeypatch):
    _open(store, ACCOUNTS, LOTS)
    heal = fail_household(monkeypatch, "H2")
    report = store.apply_action(split_action("XYZ", "2", SPLIT_DAY))
    assert report.households == ["H1"] and list(report.failed) == ["H2"] and "FAILED" in report.summary()
    assert held(store, "H2")["x1"][2] == Decimal(7)
    heal()
    again = store.apply_action(split_action("XYZ", "2", SPLIT_DAY))
    assert (again.households, again.replayed, again.failed) == (["H2"], ["H1"], {})
    assert held(store)["a1"][2] == Decimal(200) and held(store, "H2")["x1"][2] == Decimal(14)
