"""The solver's named stages: status map, holding-period pricing, slots, retries (no Redis, no Ray)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import clarabel
import numpy as np
import pytest

from solver.account import read_account
from solver.problem import ProblemCache
from solver.slots import assign_slots
from solver.solve import solve_account
from solver.status import CLARABEL_STATUS, SolveStatus, from_clarabel
from solver.synthetic import synth_lots
from solver.types import AccountSettings
from taxview.core.records import Restrictions
from tests.conftest import benchmark_lots, lot, twin_snapshot

# --- status map ---------------------------------------------------------------------------------


def test_every_clarabel_status_is_mapped():
    names = [x for x in dir(clarabel.SolverStatus) if not x.startswith("_")]
    assert names  # the installed CLARABEL lists its statuses
    for name in names:
        assert str(getattr(clarabel.SolverStatus, name)).split(".")[-1] in CLARABEL_STATUS, name


@pytest.mark.parametrize(
    ("clarabel_name", "public"),
    [
        ("Solved", "optimal"),
        ("AlmostSolved", "optimal"),
        ("PrimalInfeasible", "infeasible"),
        ("AlmostPrimalInfeasible", "infeasible"),
        ("DualInfeasible", "infeasible"),  # as the substring test "Infeasible" in status had it
        ("AlmostDualInfeasible", "infeasible"),
        ("MaxIterations", "error"),
        ("MaxTime", "error"),
        ("CallbackTerminated", "error"),
        ("NumericalError", "error"),
        ("InsufficientProgress", "error"),
        ("Unsolved", "error"),
    ],
)
def test_clarabel_status_maps_to_the_public_status(clarabel_name, public):
    assert from_clarabel(clarabel_name).public.value == public


def test_unknown_clarabel_status_is_an_error_with_a_warning():
    with pytest.warns(RuntimeWarning, match="SolvedByMagic"):
        status = from_clarabel("SolvedByMagic")
    assert status is SolveStatus.ERROR and not status.ok and status.public.value == "error"


def test_public_statuses_keep_their_strings():
    assert {s.public.value for s in SolveStatus} == {"optimal", "infeasible", "error"}


class _Rewrite:
    """A ProblemCache look-alike whose (non-robust) passes report ``status`` instead of CLARABEL's."""

    def __init__(self, status: str, robust_too: bool = False) -> None:
        self.status, self.robust_too, self.inner, self.robust_calls = status, robust_too, ProblemCache(), 0

    def get(self, model, layout, robust=False):
        problem = self.inner.get(model, layout, robust=robust)
        self.robust_calls += robust
        if robust and not self.robust_too:
            return problem
        outer = self

        class Rewritten:
            def solve(self, q, b, g=None):
                _, x, it = problem.solve(q, b, g)
                return outer.status, x, it

        return Rewritten()


def test_unknown_status_from_the_solver_fails_the_account_loudly(small_market, small_snap):
    lots = synth_lots(small_market, len(small_market.dates) - 1, np.random.default_rng(2))
    with pytest.warns(RuntimeWarning, match="Bogus"):
        r = solve_account(small_snap, lots, 1_000_00, cache=_Rewrite("Bogus", robust_too=True))
    assert r.status == "error" and "Bogus" in r.reason and not r.trades


def test_numerical_trouble_is_retried_with_the_careful_solver(small_market, small_snap):
    lots = synth_lots(small_market, len(small_market.dates) - 1, np.random.default_rng(2))
    plain = solve_account(small_snap, lots, 1_000_00, cache=ProblemCache())
    cache = _Rewrite("NumericalError")
    r = solve_account(small_snap, lots, 1_000_00, cache=cache)
    assert r.ok and cache.robust_calls == plain.passes and r.passes == 2 * plain.passes
    assert r.trades == plain.trades  # iterative refinement moves nothing that rounding sees


# --- holding period: tax.term_of is the one rule --------------------------------------------------


def _gain_lot_snapshot(date: str):
    snap = twin_snapshot(dt.date.fromisoformat(date))
    lots = benchmark_lots(snap, 1_000_000)
    lots[0] = lot("AAA-1", "AAA", lots[0].quantity, float(lots[0].quantity) * 25.0, "2023-06-15")  # +100%
    return snap, lots


@pytest.mark.parametrize(("date", "rate"), [("2024-06-15", "st_rate"), ("2024-06-16", "lt_rate")])
def test_lot_bought_2023_06_15_is_priced_short_term_until_2024_06_16(date, rate):
    snap, lots = _gain_lot_snapshot(date)
    s = AccountSettings(term_horizon_days=0)  # the true rate of the day, nothing about the days ahead
    account = read_account(snap, lots, 0, s, max_slots=4)
    assert account.lot_slots.tax[0] == pytest.approx(getattr(s, rate) * 0.5)  # half the value is gain
    r = solve_account(snap, lots, 0, AccountSettings(exclude_symbols=frozenset({"AAA"}), te_max=0.3, max_weight=0.5))
    assert r.ok, r.reason
    (sale,) = [t for t in r.trades if t.lot_id == "AAA-1"]
    gain = int(lots[0].quantity) * 2500
    assert sale.shares == lots[0].quantity and sale.realized_gain_cents == gain
    assert sale.term == ("short" if rate == "st_rate" else "long")
    assert (r.realized.st_gain if rate == "st_rate" else r.realized.lt_gain) == gain


@pytest.mark.parametrize(("date", "long"), [("2021-02-28", False), ("2021-03-01", True)])
def test_lot_bought_on_feb_29_turns_long_term_on_march_1(date, long):
    snap = twin_snapshot(dt.date.fromisoformat(date))
    lots = benchmark_lots(snap, 1_000_000, acquired="2020-02-29")
    s = AccountSettings(term_horizon_days=0)
    tax = read_account(snap, lots, 0, s, max_slots=4).lot_slots.tax
    assert tax == pytest.approx(np.full(6, (s.lt_rate if long else s.st_rate) * (1 - 1 / 1.1)), rel=1e-4)


@pytest.mark.parametrize(
    ("date", "horizon", "rate"),
    [
        ("2024-05-16", 30, "st"),  # 31 days from long-term: outside the horizon
        ("2024-05-17", 30, "soon"),  # 30 days
        ("2024-06-15", 30, "soon"),  # the last short-term day
        ("2024-06-15", 0, "st"),  # no horizon: the day's own rate
        ("2024-06-16", 30, "lt"),
    ],
)
def test_a_lot_about_to_turn_long_term_is_priced_knowing_it(date, horizon, rate):
    """A short-term lot within the horizon is priced at st + (st − lt) per dollar of gain or loss:
    a gain costs more sold now than after the wait, a loss is worth more harvested now."""
    snap, lots = _gain_lot_snapshot(date)
    s = AccountSettings(term_horizon_days=horizon)
    want = {"st": s.st_rate, "lt": s.lt_rate, "soon": 2 * s.st_rate - s.lt_rate}[rate]
    assert read_account(snap, lots, 0, s, max_slots=4).lot_slots.tax[0] == pytest.approx(want * 0.5)


# --- slots and side decision ----------------------------------------------------------------------


def test_losses_and_gains_never_share_a_slot():
    name = np.array([0, 0, 0, 0, 0, 0, 1])
    tax = np.array([-0.3, 0.1, -0.1, 0.2, 0.05, -0.2, 0.1])
    slots = assign_slots(name, np.full(7, 0.1), tax, tax < 0, n=2, max_slots=4)
    assert slots.L == 4 and slots.merged == 2
    for s in np.unique(slots.slot):
        assert len(set((tax < 0)[slots.slot == s])) == 1
    # name 0: losses in slots 0-1 and gains in 2-3, each by tax per dollar; name 1 starts at slot 4
    assert slots.slot.tolist() == [0, 2, 1, 3, 2, 0, 4]


def test_cash_gives_way_when_too_few_names_may_be_bought(small_market, small_snap):
    lots = synth_lots(small_market, len(small_market.dates) - 1, np.random.default_rng(500), value=1e6)
    no_buy = frozenset(small_snap.symbols[:57])
    r = solve_account(
        small_snap, lots, 1_000_000_00, AccountSettings(te_max=0.5), Restrictions(no_buy=no_buy), cache=ProblemCache()
    )
    assert r.ok and r.notes == ("cash above cash_max 1.00%: too few names may be bought",)
    assert r.cash_weight > 0.3 and not ({t.symbol for t in r.trades if t.side == "buy"} & no_buy)
    assert sum(t.shares for t in r.trades if t.side == "buy") > Decimal(0)
