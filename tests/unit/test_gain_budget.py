"""The annual net realized-gain budget in the per-account solve (solver/budget.py): known answers."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import numpy as np
import pytest

from solver.account import read_account
from solver.budget import within_allowance
from solver.io import read_account_toml
from solver.limits import account_limits
from solver.problem import Layout
from solver.rounding import round_trades
from solver.solve import MAX_SLOTS, solve_account
from solver.synthetic import synth_lots
from solver.types import AccountSettings
from taxview.core.errors import InputError
from taxview.core.records import Restrictions
from tests.conftest import benchmark_lots, lot, twin_snapshot

VALUE = 1_000_000
CASH = 5_000_00
WEIGHTS = {"AAA": 0.40, "TWIN": 0.10, "CCC": 0.125, "DDD": 0.125, "EEE": 0.125, "FFF": 0.125}


def winners():
    """AAA is 40% of a $1M account, bought at half today's $50 (long term: $25 of gain a share);
    the other names sit at no gain. Tracking the index means selling AAA: the winners."""
    snap = twin_snapshot()
    lots = []
    for i, sym in enumerate(snap.symbols):
        sh = int(VALUE * WEIGHTS[sym] / snap.prices[i])
        basis = sh * snap.prices[i] * (0.5 if sym == "AAA" else 1.0)
        lots.append(lot(f"{sym}-1", sym, sh, round(basis, 2), "2021-01-04"))
    return snap, lots


def settings(**kw) -> AccountSettings:
    return AccountSettings(**{"te_max": 0.05, "max_weight": 0.5, "min_trade_dollars": 0, **kw})


def net_of_trades(result) -> int:
    return sum(t.realized_gain_cents for t in result.trades if t.side == "sell")


def sold(result, symbol: str) -> Decimal:
    return sum((t.shares for t in result.trades if t.side == "sell" and t.symbol == symbol), Decimal(0))


@pytest.fixture(scope="module")
def unbudgeted():
    snap, lots = winners()
    return solve_account(snap, lots, CASH, settings())


def test_without_a_budget_the_winners_are_sold_at_a_gain(unbudgeted):
    r = unbudgeted
    assert r.ok and not r.notes
    gain = r.realized.net
    assert gain > 0 and gain == net_of_trades(r) == sold(r, "AAA") * 25_00
    assert r.realized.lt_gain == gain  # all of it long term


def test_an_allowance_below_that_gain_caps_the_net_realized_gain(unbudgeted):
    snap, lots = winners()
    allowance = 20_000_00
    assert allowance < unbudgeted.realized.net
    r = solve_account(snap, lots, CASH, settings(gain_allowance_cents=allowance))
    assert r.ok and not r.notes
    assert r.realized.net == net_of_trades(r) <= allowance
    assert allowance - r.realized.net < 25_00  # the row binds: within one share of AAA
    assert sold(r, "AAA") < sold(unbudgeted, "AAA")
    assert r.te_ex_ante > unbudgeted.te_ex_ante  # what the budget costs


def test_a_zero_allowance_realizes_no_net_gain():
    snap, lots = winners()
    r = solve_account(snap, lots, CASH, settings(gain_allowance_cents=0))
    assert r.ok
    assert r.realized.net == net_of_trades(r) <= 0
    assert sold(r, "AAA") == 0


@pytest.mark.parametrize("allowance", [10**12, 200_000_00])  # $200,000: AAA's whole embedded gain
def test_an_allowance_the_account_cannot_exceed_reproduces_the_unbudgeted_trades(unbudgeted, allowance):
    snap, lots = winners()
    r = solve_account(snap, lots, CASH, settings(gain_allowance_cents=allowance))
    assert r.trades == unbudgeted.trades
    assert r.realized == unbudgeted.realized and r.iterations == unbudgeted.iterations


def test_an_ira_ignores_the_gain_allowance():
    snap, lots = winners()
    free = solve_account(snap, lots, CASH, settings(account_type="ira"))
    capped = solve_account(snap, lots, CASH, settings(account_type="ira", gain_allowance_cents=0))
    assert free.ok and capped.ok and sold(free, "AAA") > 0
    assert capped.trades == free.trades and not capped.notes


# --- rounding: the exact check in cents and its repair ---------------------------------------------


def _one_sale(gain_lot_basis: float, shares_sold: float, allowance: int | None, exclude: str = ""):
    """AAA-1 (4,000 shares at $50) with the given basis a share, the solution selling
    ``shares_sold`` of it and nothing else; the rounded trades."""
    snap = twin_snapshot()
    lots = benchmark_lots(snap, VALUE)
    lots[0] = lot("AAA-1", "AAA", 4000, 4000 * gain_lot_basis, "2021-01-04")
    s = AccountSettings(min_trade_dollars=0, exclude_symbols=frozenset({exclude} - {""}))
    account = read_account(snap, lots, 0, s, 4)
    limits = account_limits(account, Restrictions())
    lay = Layout(n=account.n, L=account.lot_slots.L, K=snap.model.B.shape[1])
    x = np.zeros(lay.nx)
    x[account.lot_slots.slot[0]] = shares_sold * 50.0 / account.value
    return account, limits, round_trades(account, limits, lay, x, allowance)


def test_rounding_up_a_gain_sale_past_the_allowance_takes_a_share_back():
    # $10 of gain a share: 100.5 shares realize $1,005 in the solution, 101 after rounding
    *_, unchecked = _one_sale(40.0, 100.5, None)
    assert unchecked.sells == ((0, Decimal(101)),)
    *_, rounded = _one_sale(40.0, 100.5, 1_005_00)
    assert rounded.sells == ((0, Decimal(100)),) and not rounded.notes  # $1,000


def test_rounding_down_a_loss_sale_past_the_allowance_sells_a_share_more():
    # $10 of loss a share: 99.4 shares realize -$994 in the solution, 99 (-$990) after rounding
    *_, unchecked = _one_sale(60.0, 99.4, None)
    assert unchecked.sells == ((0, Decimal(99)),)
    *_, rounded = _one_sale(60.0, 99.4, -994_00)
    assert rounded.sells == ((0, Decimal(100)),) and not rounded.notes  # -$1,000


def test_a_forced_sale_over_the_allowance_is_noted_never_silent():
    account, limits, rounded = _one_sale(40.0, 4000, None, exclude="AAA")  # excluded: all of it goes
    assert rounded.sells == ((0, Decimal(4000)),)
    sells, notes = within_allowance(account, limits, list(rounded.sells), 0)
    assert sells == [(0, Decimal(4000))]
    assert len(notes) == 1 and "gain budget" in notes[0] and "$40,000.00" in notes[0]


@pytest.mark.parametrize("seed", range(4))
def test_the_net_realized_gain_never_exceeds_the_allowance(small_market, small_snap, seed):
    rng = np.random.default_rng(500 + seed)
    lots = synth_lots(small_market, len(small_market.dates) - 1, rng, value=float(rng.uniform(2e5, 2e6)))
    lots = [dataclasses.replace(x, basis_cents=x.basis_cents * 3 // 5) for x in lots]  # mostly gains
    s = AccountSettings(max_weight=0.2)
    free = solve_account(small_snap, lots, 20_000_00, s)
    assert free.ok
    for allowance in (free.realized.net // 2, 0):
        r = solve_account(small_snap, lots, 20_000_00, dataclasses.replace(s, gain_allowance_cents=allowance))
        if not r.ok:  # other limits (here: caps) force more net gain than the allowance; it says so
            assert r.status == "infeasible" and "gain budget" in r.reason
            continue
        assert r.realized.net == net_of_trades(r) <= allowance
        if allowance < free.realized.net:
            assert r.realized.net < free.realized.net


def eight_winners(snap, shares):
    """Eight long-term lots at half today's price (1 − basis/value = 0.5), cash at 0.5% of the holdings."""
    lots = [
        lot(f"l{i}", sym, sh, sh * float(snap.prices[i]) * 0.5, "2015-02-02")
        for i, (sym, sh) in enumerate(zip(snap.symbols[:8], shares))
    ]
    return lots, sum(sh * snap.price_cents[i] for i, sh in enumerate(shares)) // 200


@pytest.mark.parametrize("allowance", [0, 600_00, 5_000_00, 50_000_00, 500_000_00])
def test_eight_winners_within_their_caps_keep_any_allowance(small_snap, allowance):
    """Eight names at ~12.5% each (cap 20%, TE budget 50%): selling nothing keeps every limit, so
    every allowance ≥ 0 solves, realizing at most the allowance (the unbudgeted solve realizes more)."""
    lots, cash = eight_winners(small_snap, [int(200_000_00 / small_snap.price_cents[i]) for i in range(8)])
    s = AccountSettings(max_weight=0.2, te_max=0.5)
    free = solve_account(small_snap, lots, cash, s)
    assert free.ok and free.realized.net > 500_000_00
    r = solve_account(small_snap, lots, cash, dataclasses.replace(s, gain_allowance_cents=allowance))
    assert r.ok, r.reason
    assert r.realized.net == net_of_trades(r) <= allowance


def test_eight_winners_of_2000_shares_fail_only_below_the_forced_trim(small_snap):
    """2,000 shares of each: not equal weights, S006 is 40.6% of the account, so the 20% cap forces a
    trim realizing ~$160,543 of gain; an allowance below it is infeasible (naming the gain budget),
    one above it solves within it."""
    lots, cash = eight_winners(small_snap, [2000] * 8)
    s = AccountSettings(max_weight=0.2, te_max=0.5)
    account = read_account(small_snap, lots, cash, s, MAX_SLOTS)
    i = small_snap.index["S006"]
    forced = (account.w0[i] - 0.2) * account.value * 0.5 * 100  # cents
    assert 160_000_00 < forced < 161_000_00
    for allowance in (600_00, 50_000_00, 159_000_00):
        r = solve_account(small_snap, lots, cash, dataclasses.replace(s, gain_allowance_cents=allowance))
        assert r.status == "infeasible" and "gain budget" in r.reason and "force sales" in r.reason
    for allowance in (162_000_00, 500_000_00):
        r = solve_account(small_snap, lots, cash, dataclasses.replace(s, gain_allowance_cents=allowance))
        assert r.ok and r.realized.net == net_of_trades(r) <= allowance


# --- a negative allowance: a net loss to realize, a soft target ---------------------------------------


def small_loss():
    """EEE bought at $101, now $100: $1 of loss on each of its 1,666 shares; a harvest that does
    not pay on its own (no substitute, high TE weight)."""
    snap = twin_snapshot()
    lots = benchmark_lots(snap, VALUE)
    i = snap.index["EEE"]
    lots[i] = lot("EEE-1", "EEE", lots[i].quantity, float(lots[i].quantity) * 101.0, "2023-09-01")
    return snap, lots


def test_a_negative_allowance_realizes_at_least_that_net_loss():
    snap, lots = small_loss()
    free = solve_account(snap, lots, 2_000_00, AccountSettings(lambda_te=5000.0))
    assert free.ok and free.realized.net > -500_00
    r = solve_account(snap, lots, 2_000_00, AccountSettings(lambda_te=5000.0, gain_allowance_cents=-500_00))
    assert r.ok and r.realized.net == net_of_trades(r) <= -500_00
    assert not any("gain budget" in note for note in r.notes)
    assert not any(t.side == "buy" and t.symbol == "EEE" for t in r.trades)  # no wash sale


def test_a_net_loss_the_lots_do_not_hold_gives_way_to_no_net_gain_with_a_note():
    snap, lots = small_loss()
    r = solve_account(snap, lots, 2_000_00, AccountSettings(lambda_te=5000.0, gain_allowance_cents=-2_000_00))
    assert r.ok and r.realized.net <= 0
    assert any("gain budget" in note and "-$2,000.00" in note for note in r.notes)


# --- limits that force gains past the allowance: infeasible, naming the gain budget -------------------


def test_an_excluded_winner_over_the_allowance_fails_naming_the_gain_budget():
    snap, lots = winners()
    r = solve_account(snap, lots, CASH, settings(exclude_symbols=frozenset({"AAA"}), gain_allowance_cents=1_000_00))
    assert r.status == "infeasible" and not r.trades
    assert "gain budget" in r.reason and "$1,000.00" in r.reason


def test_a_te_budget_that_needs_the_winners_sold_fails_within_a_zero_allowance():
    snap, lots = winners()
    r = solve_account(snap, lots, CASH, settings(te_max=0.02, gain_allowance_cents=0))
    assert r.status == "infeasible"
    assert "TE budget 2.00%" in r.reason and "gain allowance $0.00" in r.reason


# --- input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [10.5, True, "100"])
def test_the_allowance_must_be_integer_cents(bad):
    snap, lots = winners()
    with pytest.raises(InputError, match="gain_allowance_cents"):
        solve_account(snap, lots, CASH, settings(gain_allowance_cents=bad))


def test_the_account_file_takes_the_allowance_in_dollars_to_the_cent(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text("[tax]\ngain_allowance = -1234.56\n")
    assert read_account_toml(path)[0].gain_allowance_cents == -123456
    path.write_text("[tax]\ngain_allowance = 1.005\n")
    with pytest.raises(InputError, match="tax.gain_allowance"):
        read_account_toml(path)
