"""The ``Ledger`` protocol's two adapters behave alike: the Redis store (a real redis-server) and
the in-memory ledger the backtest runs on. Every case runs on both; the one-account step
(``cluster.step``) gives the same commit on both."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from cluster.step import rebalance_account
from ledger.api import AccountInfo
from ledger.errors import CommitRejected, LedgerInputError, UnknownAccount
from ledger.memory import MemoryLedger
from ledger.records import OpenLot
from ledger.store import LedgerStore
from solver.problem import ProblemCache
from solver.types import AccountSettings
from taxview.core.records import Lot, Restrictions, Trade

D = dt.date
ACCOUNTS = [
    AccountInfo("A", "H1", "taxable", cash_cents=1_000_000),
    AccountInfo("S", "H1", "taxable"),
    AccountInfo("I", "H1", "ira", cash_cents=500_000),
    AccountInfo("X", "H2", "taxable"),
]
LOTS = [
    ("A", Lot("a1", "XYZ", Decimal(100), 100_000, D(2023, 1, 3))),
    ("A", Lot("a2", "ABC", Decimal(50), 250_000, D(2023, 6, 1))),
    ("X", Lot("x1", "XYZ", Decimal(10), 10_000, D(2023, 1, 3))),
]


def _open(ledger, accounts=ACCOUNTS, lots=LOTS) -> None:
    """Accounts and opening lots, through each adapter's own way in."""
    ledger.add_accounts(accounts)
    if isinstance(ledger, MemoryLedger):
        for account, x in lots:
            ledger.open_lot(account, x)
    else:
        ledger.import_lots(
            [
                OpenLot(x.lot_id, a, x.symbol, x.quantity, x.basis_cents, x.acquired, x.acquired, "", x.quantity, 0)
                for a, x in lots
            ]
        )


@pytest.fixture(params=["memory", "redis", "cluster"])
def ledger(request):
    """Each adapter: in memory, on one redis-server, on a Redis Cluster of three masters."""
    if request.param == "memory":
        led = MemoryLedger()
    elif request.param == "cluster":
        led = LedgerStore(request.getfixturevalue("redis_cluster_client"))
    else:
        led = LedgerStore(request.getfixturevalue("redis_client"))
    _open(led)
    return led


def sell(lot, qty, price, symbol="XYZ"):
    return Trade(symbol, "sell", Decimal(qty), Decimal(price), lot)


def buy(qty, price, symbol="XYZ", lot=None):
    return Trade(symbol, "buy", Decimal(qty), Decimal(price), lot)


def view(ledger) -> dict:
    """Everything a caller can see: lots, sales, cash, restrictions on a few dates."""
    out = {}
    for hh in ("H1", "H2"):
        lots = ledger.household_lots(hh)
        out[hh] = {
            "lots": sorted(
                (x.lot_id, x.account, x.symbol, x.quantity, x.basis_cents, x.holding_from)
                for held in lots.values()
                for x in held
            ),
            "sales": [(s.sale_id, s.lot_id, s.gain_cents, s.disallowed_cents) for s in ledger.sales(hh)],
            "restrictions": [ledger.restrictions(hh, D(2024, 3, d)) for d in (1, 20)],
        }
    out["cash"] = {a.account: ledger.account(a.account).cash_cents for a in ACCOUNTS}
    return out


def test_restrictions_follow_the_household_windows_and_the_ira_rule(ledger):
    ledger.commit("A", D(2024, 3, 1), [sell("a1", 100, "7.50"), buy(10, "40", "ABC")], "k1")
    r = ledger.restrictions("H1", D(2024, 3, 15))
    assert r["S"].no_buy == {"XYZ"} and r["I"].no_buy == {"XYZ"}  # a loss sale blocks the household's buys
    assert r["A"].no_loss_sale == {"ABC"} and r["I"].no_loss_sale == frozenset()  # an IRA's sales recognize nothing
    assert ledger.restrictions("H2", D(2024, 3, 15))["X"] == Restrictions()  # another household
    assert ledger.restrictions("H1", D(2024, 4, 1))["S"].no_buy == frozenset()  # 31 days later


def test_an_imported_lot_counts_as_a_purchase_in_its_window(ledger):
    # a1 was acquired 2023-01-03: loss sales of XYZ are blocked for 30 days after it
    assert ledger.restrictions("H1", D(2023, 2, 2))["A"].no_loss_sale == {"XYZ"}
    assert ledger.restrictions("H1", D(2023, 2, 3))["A"].no_loss_sale == frozenset()


def test_a_commit_books_cash_sales_and_new_lots(ledger):
    r = ledger.commit("A", D(2024, 3, 1), [sell("a1", 40, "7.50"), buy(10, "40", "ABC")], "k1")
    assert not r.replayed
    assert [(s["lot_id"], s["gain_cents"], s["term"]) for s in r.sales] == [("a1", 40 * 750 - 40_000, "long")]
    assert len(r.new_lots) == 1 and [t["side"] for t in r.trades] == ["sell", "buy"]
    assert ledger.account("A").cash_cents == 1_000_000 + 30_000 - 40_000
    assert [(x.lot_id, x.quantity) for x in ledger.lots("A") if x.symbol == "XYZ"] == [("a1", Decimal(60))]


def test_a_replay_returns_the_stored_result_and_a_reused_key_is_refused(ledger):
    r1 = ledger.commit("A", D(2024, 3, 1), [sell("a1", 40, "7.50")], "run1:A", meta={"x": 1})
    before = view(ledger)
    r2 = ledger.commit("A", D(2024, 3, 1), [sell("a1", 40, "7.50")], "run1:A")
    assert r2.replayed and r2.sales == r1.sales and r2.meta == {"x": 1}
    assert ledger.committed("A", "run1:A").sales == r1.sales and ledger.committed("A", "other") is None
    with pytest.raises(CommitRejected, match="KEY_REUSED"):
        ledger.commit("A", D(2024, 3, 1), [sell("a1", 41, "7.50")], "run1:A")
    assert view(ledger) == before


@pytest.mark.parametrize(
    ("account", "date", "trades", "error", "match"),
    [
        ("I", D(2024, 3, 5), [buy(10, "7.60")], CommitRejected, "WASH_CONFLICT"),  # IRA rebuy after A's loss
        ("X", D(2024, 3, 5), [sell("x1", 10, "5"), buy(10, "5.10")], CommitRejected, "WASH_CONFLICT"),
        ("S", D(2024, 3, 5), [buy(10**6, "40", "ABC")], CommitRejected, "OVERDRAFT"),
        ("S", D(2024, 2, 28), [buy(1, "7", "ABC")], LedgerInputError, "date"),  # before the last commit
        ("A", D(2024, 3, 5), [sell("a2", 51, "7", "ABC")], LedgerInputError, "quantity"),
        ("A", D(2024, 3, 5), [sell("x1", 1, "7")], LedgerInputError, "lot_id"),  # another account's lot
        ("A", D(2024, 3, 5), [buy(1, "NaN")], LedgerInputError, "price"),
        ("A", D(2024, 3, 5), [buy(-1, "7")], LedgerInputError, "quantity"),
        ("ZZ", D(2024, 3, 5), [buy(1, "7")], UnknownAccount, "unknown account"),
    ],
)
def test_a_refused_commit_changes_nothing(ledger, account, date, trades, error, match):
    ledger.commit("A", D(2024, 3, 1), [sell("a1", 100, "7.50")], "k1")
    before = view(ledger)
    with pytest.raises(error, match=match):
        ledger.commit(account, date, trades, "k2", check_cash=True)
    assert view(ledger) == before
    # the same buy is booked with the adjustment when wash sales are allowed (history replays)
    if match == "WASH_CONFLICT" and account == "I":
        ledger.commit("I", date, trades, "k3", allow_wash=True)
        (sale,) = [s for s in ledger.sales("H1") if s.lot_id == "a1"]
        assert sale.permanent_cents == 2500 and sale.disallowed_cents == 0


def test_the_step_books_the_same_rebalance_on_both_adapters(redis_client, small_snap):
    """One account through ``cluster.step`` on the in-memory ledger and on Redis: the same trades,
    the same sales to the cent, the same cash after."""
    lots = []  # 30 names, every third at a 30% loss, the others at a 30% gain
    for i, s in enumerate(small_snap.symbols[:30]):
        q = Decimal(40 + i)
        basis = int(q * small_snap.price_cents[i] * (Decimal("1.3") if i % 3 == 0 else Decimal("0.7")))
        lots.append(("A", Lot(f"l{i}", s, q, basis, D(2015, 1, 5 + i % 20))))
    results = []
    for led in (MemoryLedger(), LedgerStore(redis_client, prefix="step")):
        _open(led, [AccountInfo("A", "H", "taxable", cash_cents=5_000_000), AccountInfo("I", "H", "ira")], lots)
        out = rebalance_account(led, small_snap, "A", "run:A", AccountSettings(), ProblemCache())
        assert out.ok, out.reason
        again = rebalance_account(led, small_snap, "A", "run:A", AccountSettings(), ProblemCache())
        assert again.committed.replayed and again.committed.sales == out.committed.sales
        results.append((out.committed.trades, out.committed.sales, led.account("A").cash_cents))
    assert results[0] == results[1]
    assert any(s["gain_cents"] < 0 for s in results[0][1])  # it harvested something


def test_mandates_are_versioned_and_the_step_follows_them(ledger, small_snap):
    """Both adapters keep a mandate the same way, and the step pauses or liquidates by it."""
    when = "2024-01-01T00:00:00+00:00"
    info = ledger.set_mandate("A", {"status": "paused", "te_max": 0.01, "st_rate": 0.3}, "ops", when)
    assert (info.mandate, info.st_rate, info.mandate_version) == ({"status": "paused", "te_max": 0.01}, 0.3, 2)
    assert ledger.account("A").mandate == info.mandate and ledger.account("A").mandate_version == 2
    out = rebalance_account(ledger, small_snap, "A", "night:A", AccountSettings(), ProblemCache())
    assert (out.status, out.committed) == ("paused", None) and out.settings.te_max == 0.01
    ledger.set_mandate("A", {"status": "liquidate", "te_max": None}, "ops", when)
    assert ledger.account("A").mandate == {"status": "liquidate"}
    held = ledger.lots("A")
    out = rebalance_account(ledger, small_snap, "A", "night2:A", AccountSettings(), ProblemCache())
    # the toy lots name symbols outside the snapshot: they stay, each with a note
    priced = [x for x in held if x.symbol in small_snap.index]
    assert out.status == "liquidated" and len(out.committed.sales) == len(priced)
    assert {x.lot_id for x in ledger.lots("A")} == {x.lot_id for x in held if x.symbol not in small_snap.index}


def test_the_year_to_date_realized_gain_is_kept_per_account_and_year(ledger):
    """The gain budget's year to date: each commit adds its recognized net gain by term."""
    ledger.commit("A", D(2024, 3, 1), [sell("a1", 40, "7.50"), sell("a2", 10, "60", "ABC")], "k1")
    info = ledger.account("A")
    loss, gain = 40 * 750 - 40_000, 10 * 6_000 - 50_000  # a1 long-term loss, a2 (bought 2023-06-01) short-term gain
    assert info.realized == {"2024:lt": loss, "2024:st": gain} and info.realized_in(2024) == loss + gain
    ledger.commit("A", D(2025, 1, 2), [sell("a1", 10, "20")], "k2")
    assert (
        ledger.account("A").realized_in(2025) == 10 * 2_000 - 10_000
        and ledger.account("A").realized_in(2024) == loss + gain
    )


def test_the_step_keeps_the_years_net_gain_within_the_mandates_gain_budget(small_snap):
    """Eight concentrated winners of $200,000 each (and cash at its target): unbudgeted, the step trims them at a
    large gain; with a $1,000 budget for the year (of which $400 is used) it realizes at most the
    $600 left."""
    from tests.conftest import lot

    year = small_snap.date.year
    realized = {}
    for budget in (None, Decimal("1000.00")):
        led = MemoryLedger()
        shares = [int(200_000_00 / small_snap.price_cents[i]) for i in range(8)]  # $200,000 a name
        value = sum(n * small_snap.price_cents[i] for i, n in enumerate(shares))
        led.add_accounts([AccountInfo("A", "H", "taxable", cash_cents=value // 200)])  # cash at its 0.5% target
        for i, s in enumerate(small_snap.symbols[:8]):
            led.open_lot("A", lot(f"l{i}", s, shares[i], shares[i] * float(small_snap.prices[i]) * 0.5, "2015-02-02"))
        led.set_mandate("A", {"max_weight": 0.2, "te_max": 0.5}, "pm", "2024-01-01T00:00:00+00:00")
        if budget is not None:
            led.set_mandate("A", {"gain_budget": budget}, "pm", "2024-01-01T00:00:00+00:00")
            led._accounts["A"] = replace(led.account("A"), realized={f"{year}:lt": 40_000})  # $400 used this year
        out = rebalance_account(led, small_snap, "A", "night:A", AccountSettings(), ProblemCache())
        assert out.ok, out.reason
        realized[budget] = led.account("A").realized_in(year)
    assert realized[None] > 1_000_000  # more than $10,000 of gains when nothing holds it back
    assert 40_000 < realized[Decimal("1000.00")] <= 100_000  # the year stays within $1,000
