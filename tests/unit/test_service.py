"""The service layer (``cluster.service.core``, issue 14) on the in-memory ledger: wash-checks give
the ledger engine's own answers (known amounts, and the same numbers as committing the trades),
a proposal writes nothing and is bound to the household's version, a commit is idempotent by
proposal id and refused (CHANGED) once the household moved, and bad input names its field."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal

import pytest

from cluster.service.core import NotFound, Overrides, Service
from ledger.api import AccountInfo
from ledger.errors import CommitRejected, LedgerInputError
from ledger.memory import MemoryLedger
from solver.problem import ProblemCache
from taxview.core.errors import InputError
from taxview.core.records import Lot, Trade

CACHE = ProblemCache()


def _ledger(snap, loss_symbol: str) -> MemoryLedger:
    """Household H1: a taxable account T holding the index at a 10% gain plus a lot of
    ``loss_symbol`` 30% under its basis, a spouse's S holding the index, an IRA I with cash."""
    led = MemoryLedger()
    led.add_accounts(
        [
            AccountInfo("H1-T", "H1", "taxable", cash_cents=2_000_000),
            AccountInfo("H1-S", "H1", "taxable", cash_cents=1_000_000),
            AccountInfo("H1-I", "H1", "ira", cash_cents=50_000_000),
            AccountInfo("H2-T", "H2", "taxable", cash_cents=100_000),
        ]
    )
    for account, value in (("H1-T", 1_000_000), ("H1-S", 500_000)):
        for i, s in enumerate(snap.symbols):
            shares = int(value * snap.benchmark[i] / snap.prices[i])
            if shares:
                basis = round(shares * snap.price_cents[i] / 1.1)
                led.open_lot(account, Lot(f"{account}-{s}", s, Decimal(shares), basis, dt.date(2014, 3, 3)))
    i = snap.index[loss_symbol]
    led.open_lot(
        "H1-T", Lot("T-loss", loss_symbol, Decimal(500), round(500 * snap.price_cents[i] / 0.7), dt.date(2014, 5, 6))
    )
    return led


@pytest.fixture
def setup(small_snap):
    loss = small_snap.symbols[3]
    led = _ledger(small_snap, loss)
    return Service(led, small_snap, cache=CACHE), led, loss


def _lots(led, account):
    return [(x.lot_id, x.quantity, x.basis_cents) for x in led.lots(account)]


# --- wash-check ----------------------------------------------------------------------------------


def _known(snap):
    """The domain's example: 100 shares bought for $1,000, sold for $750 (a $250 loss), 100 bought
    again within 30 days for $800."""
    led = MemoryLedger()
    led.add_accounts([AccountInfo("A", "H", "taxable"), AccountInfo("B", "H", "taxable"), AccountInfo("R", "H", "ira")])
    led.open_lot("A", Lot("a1", "XYZ", Decimal(100), 100_000, dt.date(2014, 1, 3)))
    return Service(led, snap, cache=CACHE), led


def test_sale_then_spouse_rebuy_disallows_the_loss_as_the_domain_example(small_snap):
    svc, _ = _known(small_snap)
    d = small_snap.date
    out = svc.wash_check(
        "H",
        [
            {"account": "A", "symbol": "XYZ", "side": "sell", "quantity": "100", "price": "7.50", "date": str(d)},
            {
                "account": "B",
                "symbol": "XYZ",
                "side": "buy",
                "quantity": "100",
                "price": "8.00",
                "date": str(d + dt.timedelta(days=5)),
            },
        ],
    )["trades"]
    sell, buy = out
    assert sell["washes"] is False and sell["sales"][0]["gain"] == "-250.00"
    assert sell["blocked"] == {"what": "no_buy", "until": str(d + dt.timedelta(days=30))}
    assert buy["washes"] is True and buy["disallowed"] == "250.00" and buy["permanently_disallowed"] == "0.00"
    assert buy["washed_sales"][0]["account"] == "A" and buy["washed_sales"][0]["shares"] == "100"
    assert buy["blocked"] == {"what": "no_loss_sale", "until": str(d + dt.timedelta(days=35))}


def test_ira_rebuy_loses_the_loss_for_good_and_partial_rebuy_washes_a_fraction(small_snap):
    svc, _ = _known(small_snap)
    d = str(small_snap.date)
    sell = {"account": "A", "symbol": "XYZ", "side": "sell", "quantity": "100", "price": "6.00", "date": d}
    ira = svc.wash_check("H", [sell, {**sell, "account": "R", "side": "buy", "price": "6.10"}])["trades"][1]
    assert ira["washes"] and ira["permanently_disallowed"] == "400.00" and ira["disallowed"] == "0.00"
    part = svc.wash_check("H", [sell, {**sell, "account": "B", "side": "buy", "quantity": "40"}])["trades"][1]
    assert part["disallowed"] == "160.00"  # 40 of 100 shares: 40% of the $400 loss


def test_buy_before_the_sale_washes_the_sale_itself(small_snap):
    svc, _ = _known(small_snap)
    d = small_snap.date
    out = svc.wash_check(
        "H",
        [
            {"account": "B", "symbol": "XYZ", "side": "buy", "quantity": "30", "price": "8", "date": str(d)},
            {
                "account": "A",
                "symbol": "XYZ",
                "side": "sell",
                "quantity": "100",
                "price": "7",
                "date": str(d + dt.timedelta(days=3)),
            },
        ],
    )["trades"]
    assert out[0]["washes"] is False
    assert out[1]["washes"] is True and out[1]["disallowed"] == "90.00"  # 30/100 of $300
    assert out[1]["sales"][0]["replacements"][0]["account"] == "B"


def test_wash_check_answers_what_committing_the_same_trades_books(setup, small_snap):
    """The same trades through the ledger's commit (allow_wash) on a twin ledger: the same amounts."""
    svc, led, loss = setup
    d = small_snap.date
    led.commit(
        "H1-T", d - dt.timedelta(days=10), [Trade(loss, "sell", Decimal(200), Decimal("1.00"), "T-loss")], "k1", True
    )
    price = Decimal(small_snap.price_cents[small_snap.index[loss]]) / 100
    intended = [
        {"account": "H1-I", "symbol": loss, "side": "buy", "quantity": "50", "date": str(d)},
        {"account": "H1-S", "symbol": loss, "side": "buy", "quantity": "70", "date": str(d)},
        {"account": "H1-T", "symbol": loss, "side": "sell", "quantity": "100", "lot_id": "T-loss", "date": str(d)},
    ]
    answer = svc.wash_check("H1", intended)["trades"]
    twin = _ledger(small_snap, loss)
    twin.commit(
        "H1-T", d - dt.timedelta(days=10), [Trade(loss, "sell", Decimal(200), Decimal("1.00"), "T-loss")], "k1", True
    )
    before = {s.sale_id: (s.disallowed_cents, s.permanent_cents) for s in twin.sales("H1")}
    booked = []
    for n, row in enumerate(intended):
        twin.commit(
            row["account"],
            d,
            [Trade(loss, row["side"], Decimal(row["quantity"]), price, row.get("lot_id"))],
            f"w{n}",
            True,
        )
        after = {s.sale_id: (s.disallowed_cents, s.permanent_cents) for s in twin.sales("H1")}
        moved = [
            (a[0] - before.get(k, (0, 0))[0], a[1] - before.get(k, (0, 0))[1])
            for k, a in after.items()
            if a != before.get(k, (0, 0))
        ]
        booked.append((sum(m[0] for m in moved), sum(m[1] for m in moved)))
        before = after
    got = [(round(Decimal(a["disallowed"]) * 100), round(Decimal(a["permanently_disallowed"]) * 100)) for a in answer]
    assert got == booked
    assert booked[0][1] > 0 and booked[1][0] > 0  # the IRA's is lost for good, the spouse's deferred
    assert led.household_version("H1") == svc.ledger.household_version("H1")


def test_wash_check_writes_nothing_and_restrictions_show_the_window(setup, small_snap):
    svc, led, loss = setup
    d = small_snap.date
    led.commit(
        "H1-T", d - dt.timedelta(days=10), [Trade(loss, "sell", Decimal(200), Decimal("1.00"), "T-loss")], "k1", True
    )
    version, lots = led.household_version("H1"), _lots(led, "H1-T")
    svc.wash_check("H1", [{"account": "H1-S", "symbol": loss, "side": "buy", "quantity": "10"}])
    assert led.household_version("H1") == version and _lots(led, "H1-T") == lots
    r = svc.restrictions("H1", d)
    assert loss in r["accounts"]["H1-I"]["no_buy"] and loss in r["accounts"]["H1-S"]["no_buy"]
    assert {"symbol": loss, "what": "no_buy", "until": str(d + dt.timedelta(days=20))} in r["blocked"]
    assert svc.restrictions("H1", d + dt.timedelta(days=21))["blocked"] == []


def test_wash_check_bad_input_names_the_field(setup):
    svc, _, loss = setup
    with pytest.raises(NotFound):
        svc.wash_check("H9", [{"account": "H1-T", "symbol": loss, "side": "buy", "quantity": "1"}])
    for row, field in (
        ({"account": "H2-T", "symbol": loss, "side": "buy", "quantity": "1"}, "account"),
        ({"account": "H1-T", "symbol": "A|B", "side": "buy", "quantity": "1"}, "symbol"),
        ({"account": "H1-T", "symbol": loss, "side": "hold", "quantity": "1"}, "side"),
        ({"account": "H1-T", "symbol": loss, "side": "buy", "quantity": "-1"}, "quantity"),
        ({"account": "H1-T", "symbol": loss, "side": "buy", "quantity": "1", "date": "2024-13-01"}, "date"),
        ({"account": "H1-T", "symbol": loss, "side": "sell", "quantity": "1e6"}, "quantity"),
    ):
        with pytest.raises(InputError) as err:
            svc.wash_check("H1", [row])
        assert err.value.field == field, row
    with pytest.raises(LedgerInputError):
        svc.restrictions("H{1}")


# --- proposals and commits -----------------------------------------------------------------------


def test_proposal_writes_nothing_and_its_commit_books_it_once(setup, small_snap):
    svc, led, loss = setup
    version, lots, cash = led.household_version("H1"), _lots(led, "H1-T"), led.account("H1-T").cash_cents
    p = svc.propose("H1-T")
    assert p["status"] == "optimal" and p["proposal_id"] and p["ledger_version"] == version
    assert led.household_version("H1") == version and _lots(led, "H1-T") == lots
    assert led.account("H1-T").cash_cents == cash
    sells = [o for o in p["orders"] if o["side"] == "sell"]
    assert any(o["symbol"] == loss for o in sells)  # the 30% loss is harvested
    assert Decimal(p["harvested_loss"]) > 0 and Decimal(p["tax_estimate"]) < 0
    json.dumps(p)  # JSON as it is; money as strings
    assert all(isinstance(o["value"], str) and isinstance(o["tax_effect"], str) for o in p["orders"])
    done = svc.commit(p["proposal_id"])
    assert done["replayed"] is False and led.household_version("H1") == version + 1
    assert done["cash"] == p["cash_after"]
    assert loss not in {x.symbol for x in led.lots("H1-T") if x.lot_id == "T-loss"}
    again = svc.commit(p["proposal_id"])
    assert again["replayed"] is True and again["sales"] == done["sales"]
    assert led.household_version("H1") == version + 1


def test_commit_after_the_household_changed_is_refused_and_changes_nothing(setup):
    svc, led, _ = setup
    first, second = svc.propose("H1-T"), svc.propose("H1-S")
    assert first["ledger_version"] == second["ledger_version"]
    svc.commit(first["proposal_id"])
    version, lots = led.household_version("H1"), _lots(led, "H1-S")
    with pytest.raises(CommitRejected) as err:
        svc.commit(second["proposal_id"])
    assert err.value.code == "CHANGED"
    assert led.household_version("H1") == version and _lots(led, "H1-S") == lots
    fresh = svc.propose("H1-S")
    assert svc.commit(fresh["proposal_id"])["replayed"] is False


def test_overrides_raise_cash_and_respect_exclusions_and_te_budget(setup, small_snap):
    svc, _, loss = setup
    p = svc.propose("H1-S", Overrides(cash_to_raise=Decimal("50000.00")))
    assert Decimal(p["cash_after"]) >= Decimal("50000.00") > Decimal(p["cash_before"])
    keep = small_snap.symbols[0]
    p = svc.propose("H1-T", Overrides(exclude=(keep,), te_max=0.05))
    assert p["te_budget"] == 0.05 and p["te_ex_ante"] <= 0.05 * 1.001
    assert not any(o["symbol"] == keep and o["side"] == "buy" for o in p["orders"])
    sold = sum(Decimal(o["shares"]) for o in p["orders"] if o["symbol"] == keep and o["side"] == "sell")
    assert sold == sum(x.quantity for x in svc.ledger.lots("H1-T") if x.symbol == keep)


def test_proposal_bad_input_and_unknown_names(setup):
    svc, _, _ = setup
    with pytest.raises(NotFound):
        svc.propose("H7-T")
    with pytest.raises(InputError) as err:
        svc.propose("H1{x}:T")
    assert err.value.field == "account"
    for o, field in (
        (Overrides(te_max=-0.1), "te_max"),
        (Overrides(cash_to_raise=Decimal("1.001")), "cash_to_raise"),
        (Overrides(cash_to_raise=Decimal("-5")), "cash_to_raise"),
        (Overrides(exclude=("NOPE",)), "exclude"),
    ):
        with pytest.raises(InputError) as err:
            svc.propose("H1-T", o)
        assert err.value.field == field
    with pytest.raises(NotFound):
        svc.commit("p-0123456789abcdef01234567")
    with pytest.raises(InputError):
        svc.commit("p:{x}")


def test_account_view_prices_lots_and_terms(setup, small_snap):
    svc, led, loss = setup
    v = svc.account("H1-T")
    lot = next(x for x in v["lots"] if x["lot_id"] == "T-loss")
    i = small_snap.index[loss]
    worth = 500 * small_snap.price_cents[i]
    assert lot["value"] == f"{Decimal(worth) / 100:.2f}" and Decimal(lot["unrealized"]) < 0
    assert lot["term"] == "long" and lot["long_term_from"] == "2015-05-07"
    assert v["cash"] == "20000.00" and v["realized_ytd"]["net"] == "0.00"
    assert abs(sum(h["weight"] for h in v["holdings"]) + 20000 / float(v["value"]) - 1) < 1e-9
    assert 0 < v["te_now"] < 0.2
    with pytest.raises(NotFound):
        svc.account("nobody")


def test_warm_compiles_the_problems_a_proposal_then_finds_in_its_cache(small_snap):
    led = _ledger(small_snap, small_snap.symbols[3])
    svc = Service(led, small_snap, cache=ProblemCache())
    assert svc.warm() >= 2 and svc.cache.misses >= 2
    misses = svc.cache.misses
    p = svc.propose("H1-S")  # one lot per name: a layout warm() compiled
    assert p["status"] == "optimal" and svc.cache.misses == misses and svc.cache.hits > 0


# --- style exposures (issue 14's risk panel, issue 15's tilts) ----------------------------------


def test_account_view_reports_each_style_exposure_against_its_tilt_target(small_snap):
    import numpy as np

    from solver.styles import Styles

    n = len(small_snap.symbols)
    value = np.linspace(-1.5, 1.5, n)
    momentum = np.cos(np.arange(n))
    snap = replace(small_snap, styles=Styles(("value", "momentum"), np.column_stack([value, momentum])))
    led = _ledger(snap, snap.symbols[3])
    led.set_mandate("H1-T", {"tilts": {"value": 0.5}}, "test", "2024-01-01T00:00:00Z")
    svc = Service(led, snap, cache=CACHE)
    view = svc.account("H1-T")
    w = np.zeros(n)
    for h in view["holdings"]:
        w[snap.index[h["symbol"]]] = h["weight"]
    got = {r["style"]: r for r in view["style_exposures"]}
    assert set(got) == {"value", "momentum"}
    for j, style in enumerate(("value", "momentum")):  # sᵀ(w − w_b) in standard deviations of s
        s = snap.styles.scores[:, j]
        assert got[style]["exposure"] == pytest.approx(float(s @ (w - snap.benchmark)) / float(np.std(s)), abs=1e-12)
    assert got["value"]["target"] == 0.5 and got["momentum"]["target"] is None
    # the holdings sit near the benchmark: far from a +0.5 sd lean, so the tilt is short today
    assert abs(got["value"]["exposure"]) < 0.5 and got["value"]["short"] is True
    assert got["momentum"]["short"] is False
    assert (
        Service(_ledger(small_snap, small_snap.symbols[3]), small_snap, cache=CACHE).account("H1-T")["style_exposures"]
        == []
    )  # a market without styles.parquet: nothing to show
    from cluster.service.console import _account

    page = _account(svc, "H1-T")  # the console's risk panel shows them
    assert "Active style exposures" in page and "≥ +0.50" in page and "short" in page
