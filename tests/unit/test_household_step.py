"""A household's accounts rebalanced together (``cluster.step.rebalance_household``, issue 13), on
the in-memory ledger: the IRA and the spouse's account trade around the names a taxable account
harvests instead of blocking them, the IRA keeps off the names still held at a loss unless its TE
budget needs them, a liquidation goes first, every commit is wash-safe (the ledger still refuses
a wash sale), and on random households the result is never worse than solving the accounts one by
one, alphabetically or taxable accounts first."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from cluster.step import PROTECT_NOTE, loss_names, rebalance_account, rebalance_household
from ledger.api import AccountInfo
from ledger.errors import CommitRejected
from ledger.memory import MemoryLedger
from solver.problem import ProblemCache
from solver.snapshot import snapshot
from solver.synthetic import synth_lots
from solver.types import AccountSettings
from taxview.core.records import Lot, Trade

CACHE = ProblemCache()
DEFAULTS = AccountSettings()


def _ledger(accounts: dict[str, tuple[str, int, list[Lot]]], mandates: dict | None = None) -> MemoryLedger:
    """account -> (type, cash in cents, opening lots); one household ``H1``."""
    led = MemoryLedger()
    led.add_accounts([AccountInfo(a, "H1", kind, cash_cents=cash) for a, (kind, cash, _) in accounts.items()])
    for a, (_, _, lots) in accounts.items():
        for x in lots:
            led.open_lot(a, x)
    for a, changes in (mandates or {}).items():
        led.set_mandate(a, changes, "test", "2024-01-01T00:00:00Z")
    return led


def _index(snap, value: float, prefix: str, gain: float = 0.10) -> list[Lot]:
    """One lot per name at its benchmark weight of ``value``, each ``gain`` above its basis."""
    out = []
    for i, s in enumerate(snap.symbols):
        shares = int(value * snap.benchmark[i] / snap.prices[i])
        if shares:
            basis = round(shares * snap.price_cents[i] / (1 + gain))
            out.append(Lot(f"{prefix}{s}", s, Decimal(shares), basis, dt.date(2015, 3, 2)))
    return out


def _at_loss(snap, symbol: str, value: float, loss: float, lot_id: str) -> Lot:
    """A lot of ``symbol`` worth ``value`` today, ``loss`` (a fraction of its basis) below its basis."""
    i = snap.index[symbol]
    shares = int(value / snap.prices[i])
    return Lot(lot_id, symbol, Decimal(shares), round(shares * snap.price_cents[i] / (1 - loss)), dt.date(2015, 3, 2))


def _mid(snap) -> str:
    """A name of about 2% of the benchmark (the largest are too large to swap for others)."""
    return snap.symbols[int(np.argmin(np.abs(snap.benchmark - 0.02)))]


def _sequential(led, snap, accounts, run="night"):
    return [rebalance_account(led, snap, a, f"{run}:{a}", DEFAULTS, CACHE) for a in accounts]


def _harvest(out) -> set[str]:
    return {s["symbol"] for s in out.committed.sales if s["gain_cents"] < 0 and s.get("recognized", True)}


def _bought(out) -> set[str]:
    return {t["symbol"] for t in out.committed.trades if t["side"] == "buy"}


def _wash_free(led: MemoryLedger, household: str = "H1") -> bool:
    return all(s.disallowed_cents == 0 and s.permanent_cents == 0 for s in led.sales(household))


def _household(small_snap):
    """An IRA all in cash (it buys the whole index), the spouse's taxable account with cash to
    invest, and a taxable account holding the largest name at a 30% loss."""
    x = _mid(small_snap)
    others = [y for y in _index(small_snap, 1_000_000, "T", 0.10) if y.symbol != x]
    return x, {
        "H1-I": ("ira", 100_000_000, []),
        "H1-S": ("taxable", 40_000_000, _index(small_snap, 600_000, "S", 0.10)),
        "H1-T": ("taxable", 500_000, [*others, _at_loss(small_snap, x, 40_000, 0.30, "T-loss")]),
    }


def test_alphabetically_the_ira_and_the_spouse_block_the_harvest(small_snap):
    """What issue 13 measured: solved one by one in alphabetical order, the IRA (and the spouse)
    buy the name first, and the taxable account may not sell it at a loss for 30 days."""
    x, accounts = _household(small_snap)
    led = _ledger(accounts)
    ira, spouse, taxable = _sequential(led, small_snap, sorted(accounts))
    assert ira.ok and spouse.ok and taxable.ok
    assert x in _bought(ira) and x in _bought(spouse)
    assert x not in _harvest(taxable)
    assert _wash_free(led)


def test_the_household_harvests_what_the_ira_and_the_spouse_would_have_bought(small_snap):
    x, accounts = _household(small_snap)
    led = _ledger(accounts)
    outs = {
        o.account: o for o in rebalance_household(led, small_snap, "H1", sorted(accounts), "night", DEFAULTS, CACHE)
    }
    assert all(o.ok for o in outs.values()), {a: o.reason for a, o in outs.items()}
    assert x in _harvest(outs["H1-T"])
    assert not any(x in _bought(o) for o in outs.values())  # no account buys the harvested name
    assert all(not (_harvest(o) & _bought(p)) for o in outs.values() for p in outs.values())
    assert _wash_free(led)
    assert all(o.result.te_ex_ante <= DEFAULTS.te_max * (1 + 1e-3) for o in outs.values())
    # and the loss is booked, recognized: worth more than the order that blocked it
    alone = _ledger(accounts)
    sequential = sum(o.result.tax_estimate_cents for o in _sequential(alone, small_snap, sorted(accounts)))
    assert sum(o.result.tax_estimate_cents for o in outs.values()) < sequential


def test_the_ledger_still_refuses_a_purchase_that_would_wash_tonights_harvest(small_snap):
    x, accounts = _household(small_snap)
    led = _ledger(accounts)
    rebalance_household(led, small_snap, "H1", sorted(accounts), "night", DEFAULTS, CACHE)
    price = Decimal(small_snap.price_cents[small_snap.index[x]]) / 100
    with pytest.raises(CommitRejected) as refused:
        led.commit("H1-I", small_snap.date, [Trade(x, "buy", Decimal(1), price)], "forced")
    assert refused.value.code == "WASH_CONFLICT"
    assert x in led.restrictions("H1", small_snap.date)["H1-I"].no_buy


def test_the_ira_keeps_off_names_held_at_a_loss_until_its_te_budget_needs_them(small_snap):
    """The taxable account (paused tonight) holds five names of about 2% each at an 8% loss: an
    IRA investing its cash buys none of them within its 2% budget (1.2% of TE without them); on a
    0.5% budget it cannot keep without them, it buys them and says so."""
    five = [small_snap.symbols[i] for i in np.argsort(np.abs(small_snap.benchmark - 0.02))[:5]]
    lots = [y for y in _index(small_snap, 2_000_000, "P", 0.10) if y.symbol not in five]
    lots += [_at_loss(small_snap, s, 40_000, 0.08, f"L{s}") for s in five]
    accounts = {"H1-I": ("ira", 100_000_000, []), "H1-T": ("taxable", 0, lots)}
    assert loss_names(small_snap, lots, 0.05) == set(five)
    paused = {"H1-T": {"status": "paused"}}
    roomy = _ledger(accounts, paused)
    outs = rebalance_household(roomy, small_snap, "H1", sorted(accounts), "n", DEFAULTS, CACHE)
    assert outs[0].ok and not _bought(outs[0]) & set(five) and PROTECT_NOTE not in outs[0].result.notes
    assert outs[0].result.te_ex_ante <= DEFAULTS.te_max
    tight = _ledger(accounts, {**paused, "H1-I": {"te_max": 0.005}})
    outs = rebalance_household(tight, small_snap, "H1", sorted(accounts), "n", DEFAULTS, CACHE)
    assert outs[0].ok and _bought(outs[0]) >= set(five) and PROTECT_NOTE in outs[0].result.notes
    assert outs[0].result.te_ex_ante <= 0.005


def test_a_liquidation_goes_first_so_tonights_purchases_do_not_hold_its_losses_back(small_snap):
    x, accounts = _household(small_snap)
    mandates = {"H1-T": {"status": "liquidate"}}
    led = _ledger(accounts, mandates)
    one_by_one = {o.account: o for o in _sequential(led, small_snap, sorted(accounts))}
    assert x not in _harvest(one_by_one["H1-T"])  # held back: the IRA bought it a moment before
    assert "loss lots held back" in one_by_one["H1-T"].reason
    led = _ledger(accounts, mandates)
    outs = {o.account: o for o in rebalance_household(led, small_snap, "H1", sorted(accounts), "n", DEFAULTS, CACHE)}
    assert outs["H1-T"].status == "liquidated" and x in _harvest(outs["H1-T"])
    assert led.lots("H1-T") == [] and _wash_free(led)


def test_a_rerun_of_the_household_replays_what_was_booked(small_snap):
    _, accounts = _household(small_snap)
    led = _ledger(accounts)
    first = rebalance_household(led, small_snap, "H1", sorted(accounts), "night", DEFAULTS, CACHE)
    lots = led.household_lots("H1")
    again = rebalance_household(led, small_snap, "H1", sorted(accounts), "night", DEFAULTS, CACHE)
    assert [o.committed.replayed for o in again] == [True] * 3
    assert [o.committed.trades for o in again] == [o.committed.trades for o in first]
    assert {a: [x.lot_id for x in v] for a, v in led.household_lots("H1").items()} == {
        a: [x.lot_id for x in v] for a, v in lots.items()
    }


def test_an_account_of_another_household_is_refused_not_solved_without_its_lots(small_snap):
    _, accounts = _household(small_snap)
    led = _ledger(accounts)
    led.add_accounts([AccountInfo("H2-T", "H2", "taxable", cash_cents=100_000)])
    outs = rebalance_household(led, small_snap, "H1", ["H1-T", "H2-T"], "n", DEFAULTS, CACHE)
    assert outs[0].ok and outs[1].status == "error" and "household 'H2'" in outs[1].reason


def _tax_saving(outs) -> int:
    return -sum(o.result.tax_estimate_cents for o in outs if o.ok and o.result is not None)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_on_random_households_never_worse_than_alphabetical_or_taxable_first(small_market, seed):
    """Two taxable accounts and an IRA with the synthetic firm's lots (bought on random days of
    three years, some at a loss, some within the last 30 days): the household step saves about as
    much tax as the better of the two orders or more, every account within its TE budget, no wash."""
    rng = np.random.default_rng(seed)
    t = len(small_market.dates) - 1
    snap = snapshot(small_market, str(small_market.dates[t]), factors=8)
    accounts = {}
    for tag, kind in (("I", "ira"), ("S", "taxable"), ("T", "taxable")):
        value = float(np.exp(rng.uniform(np.log(3e5), np.log(3e6))))
        lots = synth_lots(small_market, t, rng, value=value, history_days=300, prefix=f"{tag}:")
        accounts[f"H1-{tag}"] = (kind, int(rng.uniform(0.001, 0.05) * value * 100), lots)
    names = sorted(accounts)
    saved = {}
    for way in ("alphabetical", "taxable_first", "household"):
        led = _ledger(accounts)
        if way == "household":
            outs = rebalance_household(led, snap, "H1", names, "n", DEFAULTS, CACHE)
        else:
            order = names if way == "alphabetical" else sorted(names, key=lambda a: (a.endswith("-I"), a))
            outs = _sequential(led, snap, order)
        assert all(o.ok for o in outs), [o.reason for o in outs]
        assert all(o.result.te_ex_ante <= DEFAULTS.te_max * (1 + 1e-3) for o in outs)
        assert _wash_free(led)
        saved[way] = _tax_saving(outs)
    # Measured, not guaranteed (issue 13 open): the joint sides are a heuristic on top of each
    # account's own side decision; within 1% of the better order here (0.17% under on seed 1).
    assert saved["household"] >= 0.99 * max(saved["alphabetical"], saved["taxable_first"]), saved


def test_one_taxable_account_alone_is_solved_once(small_snap):
    """Nothing to coordinate: the side decision's solve is the one committed."""
    lots = [
        *_index(small_snap, 800_000, "P", 0.1)[1:],
        _at_loss(small_snap, _mid(small_snap), 50_000, 0.2, "x"),
    ]
    led = _ledger({"H1-T": ("taxable", 100_000, lots)})
    timings: dict = {}
    (out,) = rebalance_household(led, small_snap, "H1", ["H1-T"], "n", DEFAULTS, CACHE, timings=timings)
    alone = rebalance_account(
        _ledger({"H1-T": ("taxable", 100_000, lots)}), small_snap, "H1-T", "n:H1-T", DEFAULTS, CACHE
    )
    assert out.ok and out.committed.trades == alone.committed.trades
    assert timings["household_sides_s"] > 0 and timings["solve_s"] >= timings["household_sides_s"]


def test_a_household_with_only_paused_accounts_trades_nothing(small_snap):
    _, accounts = _household(small_snap)
    led = _ledger(accounts, {a: {"status": "paused"} for a in accounts})
    outs = rebalance_household(led, small_snap, "H1", sorted(accounts), "n", DEFAULTS, CACHE)
    assert [o.status for o in outs] == ["paused"] * 3 and led.sales("H1") == []
